"""Bulk loading of rows into a table inside the caller's transaction.

PostgreSQL gets ``COPY ... FROM STDIN`` through psycopg; SQLite gets ``executemany`` on the
raw DB-API cursor in batches of ``BATCH_ROWS``. No ORM object is ever built per row.

- ``bulk_insert(conn, table, columns, rows)`` takes plain tuples (the ledger).
- ``bulk_insert_arrow(conn, table, rows)`` takes an Arrow table whose columns are int64, float64,
  bool, timestamp, date32, string or null (the customer import). PostgreSQL gets it as
  ``COPY ... (FORMAT csv)`` written by pyarrow, where an unquoted empty field is NULL and strings
  are quoted; SQLite gets plain tuples, with dates and times as the text SQLAlchemy stores.

Both return the number of rows inserted and leave committing to the caller.

- ``insert_new(conn, table, columns, rows, key=..., returning=...)`` loads rows that may already
  be in ``table`` (a re-imported file, a redelivered event): ``bulk_insert`` into a temporary
  staging table, then ONE ``INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING``; returns the
  ``returning`` column of the rows that were new.
- ``dialect_insert(conn, table)``: the dialect's INSERT (PostgreSQL or SQLite), which has
  ``on_conflict_do_nothing``.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["bulk_insert", "bulk_insert_arrow", "dialect_insert", "insert_new", "raw_timestamp"]

BATCH_ROWS = 10_000
COPY_ROWS = 16_384  # rows per part of a COPY from Arrow


def driver_connection(conn: sa.Connection) -> Any:
    """The DB-API connection under ``conn`` (psycopg's or sqlite3's); SQLAlchemy types it as optional."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no DB-API connection (it was invalidated or closed)")
    return driver


def bulk_insert(conn: sa.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``; returns the number of rows."""
    if conn.dialect.name == "postgresql":
        count = 0
        with driver_connection(conn).cursor() as cursor:
            with cursor.copy(f"COPY {_quoted(conn, table, columns)} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        return count
    return _executemany(conn, table, columns, rows)


def raw_timestamp(conn: sa.Connection, value: datetime):  # noqa: ANN201
    """``value`` as a raw DB-API insert must pass it: SQLite's stored text (UTC), a datetime elsewhere.

    ``bulk_insert`` bypasses SQLAlchemy's type processing, so SQLite needs the storage format.
    """
    if conn.dialect.name == "sqlite":
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def dialect_insert(conn: sa.Connection, table: sa.Table):  # noqa: ANN201 - a dialect Insert
    """The INSERT of the connection's dialect for ``table`` (it has ``on_conflict_do_nothing``)."""
    from sqlalchemy.dialects import postgresql, sqlite

    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_new(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Iterable[Sequence],
    *,
    key: Sequence[str],
    returning: str,
) -> list:
    """Insert the ``rows`` whose ``key`` is not in ``table`` yet; the ``returning`` values of the new ones.

    Rows are bulk-loaded into a temporary staging table with ``table``'s column types, then
    copied over in one statement that skips rows violating the unique ``key``.
    """
    staging = sa.Table(
        f"_stage_{table.name}", sa.MetaData(), *(sa.Column(c, table.c[c].type) for c in columns), prefixes=["TEMPORARY"]
    )
    staging.create(conn)
    try:
        bulk_insert(conn, staging.name, columns, rows)
        select = sa.select(*(staging.c[c] for c in columns)).where(sa.true())  # SQLite: WHERE before ON CONFLICT
        statement = (
            dialect_insert(conn, table)
            .from_select(list(columns), select)
            .on_conflict_do_nothing(index_elements=list(key))
            .returning(table.c[returning])
        )
        return list(conn.execute(statement).scalars())
    finally:
        staging.drop(conn)


def bulk_insert_arrow(conn: sa.Connection, table: str, rows: pa.Table) -> int:
    """Insert the Arrow table ``rows`` into ``table`` (columns by name); returns the number of rows."""
    import pyarrow.csv as pa_csv  # only callers with Arrow data pay for importing pyarrow

    if conn.dialect.name == "postgresql":
        options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
        with driver_connection(conn).cursor() as cursor:
            with cursor.copy(f"COPY {_quoted(conn, table, rows.column_names)} FROM STDIN (FORMAT csv)") as copy:
                # in parts: the server parses and indexes one part while pyarrow writes the next
                for part in rows.to_batches(max_chunksize=COPY_ROWS):
                    buffer = io.BytesIO()
                    pa_csv.write_csv(part, buffer, options)
                    copy.write(buffer.getbuffer())
        return rows.num_rows
    return _executemany(conn, table, rows.column_names, zip(*map(_sqlite_values, rows.columns), strict=True))


def _quoted(conn: sa.Connection, table: str, columns: Sequence[str]) -> str:
    """``"table" ("a", "b")`` quoted for the connection's dialect."""
    preparer = conn.dialect.identifier_preparer
    return f"{preparer.quote(table)} ({', '.join(preparer.quote(c) for c in columns)})"


def _executemany(conn: sa.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    placeholders = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {_quoted(conn, table, columns)} VALUES ({placeholders})"
    count = 0
    rows = iter(rows)
    cursor = driver_connection(conn).cursor()
    try:
        while batch := list(itertools.islice(rows, BATCH_ROWS)):
            cursor.executemany(statement, batch)
            count += len(batch)
    finally:
        cursor.close()
    return count


def _sqlite_values(column: pa.ChunkedArray) -> list:
    """The column as Python values SQLite stores as SQLAlchemy would, NULL as ``None``.

    Goes through numpy: several times faster than ``to_pylist``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(column.type):
        column = pc.strftime(column.cast(pa.timestamp("us")), "%Y-%m-%d %H:%M:%S")
    elif pa.types.is_date32(column.type):
        column = column.cast(pa.string())
    if column.null_count == 0 or pa.types.is_string(column.type) or pa.types.is_boolean(column.type):
        return column.to_numpy().tolist()  # strings and booleans come out as objects with None
    if pa.types.is_null(column.type):
        return [None] * len(column)
    values = column.fill_null(0).to_numpy().astype(object)  # numbers: NULL would become NaN
    values[column.is_null().to_numpy()] = None
    return values.tolist()
