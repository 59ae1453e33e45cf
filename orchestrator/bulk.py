"""Bulk loading of rows into a table inside the caller's transaction.

PostgreSQL gets ``COPY ... FROM STDIN`` through psycopg; SQLite gets ``executemany`` on the
raw DB-API cursor. Both take plain tuples, so no ORM object is ever built per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa


def bulk_insert(conn: sa.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``; returns the number of rows."""
    preparer = conn.dialect.identifier_preparer
    quoted_table = preparer.quote(table)
    quoted_columns = ", ".join(preparer.quote(c) for c in columns)
    driver_connection = conn.connection.driver_connection
    count = 0
    if conn.dialect.name == "postgresql":
        with driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {quoted_table} ({quoted_columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        return count
    placeholders = ", ".join("?" for _ in columns)
    cursor = driver_connection.cursor()
    try:
        batch: list[Sequence] = []
        statement = f"INSERT INTO {quoted_table} ({quoted_columns}) VALUES ({placeholders})"
        for row in rows:
            batch.append(row)
            if len(batch) >= 10_000:
                cursor.executemany(statement, batch)
                count += len(batch)
                batch.clear()
        if batch:
            cursor.executemany(statement, batch)
            count += len(batch)
    finally:
        cursor.close()
    return count
