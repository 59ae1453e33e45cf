"""Loading customer rows into the customer table: one upsert inside the caller's transaction.

``load_customers(conn, path, table, rows, report, progress=, chunk_rows=)`` writes the Arrow table
``rows`` (``customer_id`` first; columns int64, float64, bool, timestamp, date32, string or null, as
``orchestrator.customers.importer`` shapes them) and fills ``report.columns``, ``inserted``, ``updated`` and
``rows_imported``.

- **Databases**: SQLite and PostgreSQL; any other dialect raises ``ImportFailed``.
- **Table**: created if missing (``customer_id`` text primary key, SQL types from the Arrow types;
  an all-empty column is text); columns new in ``rows`` are added; columns missing in ``rows`` are
  left as they are. A table without ``customer_id``, or a column whose kind clashes with the
  table's (a text column takes anything, a number column takes integers), raises ``ImportFailed``.
- **Staging**: the rows go in ``chunk_rows`` at a time, through ``orchestrator.db.bulk.bulk_insert_arrow``
  (PostgreSQL ``COPY``, SQLite ``executemany``), into the temporary table ``STAGING_TABLE``;
  ``progress`` is called with the number of rows staged so far after each chunk.
- **Upsert**: one ``INSERT ... SELECT ... ON CONFLICT (customer_id) DO UPDATE`` that rewrites only
  rows whose values changed. With ``insert_only`` (generated ids) no existing customer may be in
  ``rows``: if one is, ``ImportFailed`` and nothing is written. Nothing is committed here: a failure
  leaves the table as it was once the caller rolls back.

``numeric_id_ceiling(conn, table)`` is the largest id in the table made only of digits (0 if none):
where generated ids start after.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.customers.report import ImportFailed, ImportReport
from orchestrator.customers.table import ID_COLUMN, kind_of
from orchestrator.db.bulk import bulk_insert_arrow, driver_connection

__all__ = ["STAGING_TABLE", "load_customers", "numeric_id_ceiling"]

STAGING_TABLE = "customer_import_staging"


def load_customers(
    conn: sa.Connection,
    path: Path,
    table: str,
    rows: pa.Table,
    report: ImportReport,
    progress: Callable[[int], None] | None = None,
    *,
    chunk_rows: int = 50_000,
    insert_only: bool = False,
) -> None:
    """Upsert ``rows`` into ``table`` and fill ``report``; see the module docstring for the contract."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        if not driver_connection(conn).in_transaction:  # pysqlite would run the DDL outside any transaction
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect != "postgresql":
        raise ImportFailed(path, f"customer import supports SQLite and PostgreSQL, not {dialect}")

    target = _target_table(conn, path, table, rows)
    staging_columns = []
    selected = []
    for name, kind in zip(rows.column_names, rows.schema.types, strict=True):
        target_type = target.c[name].type
        staging_type = target_type if pa.types.is_null(kind) else _sql_type(kind)
        staging_columns.append(sa.Column(name, staging_type))
        selected.append((name, staging_type, target_type))
        report.columns[name] = kind_of(target_type)

    staging = sa.Table(
        STAGING_TABLE,
        sa.MetaData(),
        *staging_columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    if dialect == "sqlite":  # a temporary table lives as long as the pooled connection
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{STAGING_TABLE}")
    staging.create(conn)
    done = 0
    for offset in range(0, rows.num_rows, chunk_rows):
        done += bulk_insert_arrow(conn, staging.name, rows.slice(offset, chunk_rows))
        if progress is not None:
            progress(done)

    report.updated = conn.execute(
        sa.select(sa.func.count()).select_from(staging.join(target, staging.c[ID_COLUMN] == target.c[ID_COLUMN]))
    ).scalar_one()
    if insert_only and report.updated:
        raise ImportFailed(
            path,
            f"{report.updated:,} generated id(s) are already in table '{table}' (another import ran meanwhile?); "
            "nothing was imported: import again",
        )
    report.inserted = rows.num_rows - report.updated
    report.rows_imported = rows.num_rows

    exprs = [
        staging.c[name]
        if kind_of(staging_type) == kind_of(target_type)
        else sa.cast(staging.c[name], target_type).label(name)
        for name, staging_type, target_type in selected
    ]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(target).from_select(rows.column_names, sa.select(*exprs).where(sa.true()))
    updates = {name: statement.excluded[name] for name in rows.column_names if name != ID_COLUMN}
    if updates:
        # Rows whose values did not change are not rewritten (PostgreSQL would write a new version of each).
        changed = sa.or_(*(target.c[name].is_distinct_from(value) for name, value in updates.items()))
        statement = statement.on_conflict_do_update(index_elements=[ID_COLUMN], set_=updates, where=changed)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[ID_COLUMN])
    conn.execute(statement)
    staging.drop(conn)


def numeric_id_ceiling(conn: sa.Connection, table: sa.Table) -> int:
    """The largest ``customer_id`` of ``table`` made of 1 to 18 digits, or 0."""
    column = table.c[ID_COLUMN]
    if conn.dialect.name == "postgresql":
        digits = column.regexp_match("^[0-9]{1,18}$")
    else:
        digits = sa.and_(sa.func.length(column).between(1, 18), column.op("NOT GLOB")("*[^0-9]*"))
    ceiling = conn.execute(sa.select(sa.func.max(sa.cast(column, sa.BigInteger))).where(digits)).scalar_one()
    return int(ceiling or 0)


def _target_table(conn: sa.Connection, path: Path, table: str, rows: pa.Table) -> sa.Table:
    """The customer table, created or extended so that it has every column of ``rows``."""
    if not sa.inspect(conn).has_table(table):
        columns = [
            sa.Column(name, sa.Text() if pa.types.is_null(kind) else _sql_type(kind), primary_key=name == ID_COLUMN)
            for name, kind in zip(rows.column_names, rows.schema.types, strict=True)
        ]
        target = sa.Table(table, sa.MetaData(), *columns)
        target.create(conn)
        return target

    target = sa.Table(table, sa.MetaData(), autoload_with=conn)
    if ID_COLUMN not in target.c:
        raise ImportFailed(path, f"table '{table}' has no '{ID_COLUMN}' column, so it is not a customer table")
    clashes = []
    preparer = conn.dialect.identifier_preparer
    for name, kind in zip(rows.column_names, rows.schema.types, strict=True):
        if pa.types.is_null(kind):
            file_kind = None
        else:
            file_kind = kind_of(_sql_type(kind))
        if name not in target.c:
            sql_type = sa.Text() if file_kind is None else _sql_type(kind)
            conn.exec_driver_sql(
                f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(name)} "
                f"{sql_type.compile(dialect=conn.dialect)}"
            )
            continue
        table_kind = kind_of(target.c[name].type)
        if file_kind is None or file_kind == table_kind or table_kind == "text":
            continue
        if table_kind == "number" and file_kind == "integer":
            continue
        clashes.append(
            f"column '{name}' holds {table_kind} values in table '{table}' but the file has {file_kind} values"
        )
    if clashes:
        raise ImportFailed(path, "; ".join(clashes))
    return sa.Table(table, sa.MetaData(), autoload_with=conn)


def _sql_type(kind: pa.DataType) -> sa.types.TypeEngine:
    """The SQL type that holds the Arrow type ``kind`` (text for anything else)."""
    if kind == pa.int64():
        return sa.BigInteger()
    if kind == pa.float64():
        return sa.Double()
    if pa.types.is_boolean(kind):
        return sa.Boolean()
    if pa.types.is_timestamp(kind):
        return sa.DateTime(timezone=kind.tz is not None)
    if pa.types.is_date32(kind):
        return sa.Date()
    return sa.Text()
