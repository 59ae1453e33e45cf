"""contacts: no (wave_id, status) index, a BRIN index on planned_for, times of a new row by the database

Revision ID: 0012_17
Revises: 0011_17
Create Date: 2026-12-07 08:10:00

What a wave's COPY into the ledger still paid for beyond the hand-written table
(``bench/ledger_copy_bench.py``, backend CPU per COPY of 81,111 rows): each of the two
secondary B-tree indexes 0.15 to 0.2 s, and parsing the two times, the same for every row,
0.17 s.

- ``ix_contacts_wave_status`` goes: every query of a wave's contacts finds them through the
  unique (wave_id, customer_id) index, whose first column is the wave; the pending chunks page
  through the primary key (``bench/ledger_query_bench.py`` times every such query on a
  1,000,000-contact ledger before and after).
- ``ix_contacts_planned_channel`` becomes ``ix_contacts_planned_for``, a BRIN index on PostgreSQL:
  a few bytes per range of 128 pages, since contacts are recorded day after day in id order; it
  summarises each range once it is full (``autosummarize``). SQLite has no BRIN: a B-tree there.
- ``created_at`` and ``updated_at`` default to the time of the transaction (``now()``,
  ``CURRENT_TIMESTAMP`` on SQLite), so the COPY leaves them out.

SQLite rebuilds ``contacts`` to change a default, with the rows kept aside as in 0011_17.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0012_17"
down_revision = "0011_17"
branch_labels = None
depends_on = None

_TIMES = ("created_at", "updated_at")


def upgrade() -> None:
    op.drop_index("ix_contacts_wave_status", table_name="contacts")
    op.drop_index("ix_contacts_planned_channel", table_name="contacts")
    op.create_index(
        "ix_contacts_planned_for",
        "contacts",
        ["planned_for"],
        postgresql_using="brin",
        postgresql_with={"autosummarize": "on"},
    )
    _set_time_defaults(sa.func.now())


def downgrade() -> None:
    _set_time_defaults(None)
    op.drop_index("ix_contacts_planned_for", table_name="contacts")
    op.create_index("ix_contacts_planned_channel", "contacts", ["planned_for", "channel"])
    op.create_index("ix_contacts_wave_status", "contacts", ["wave_id", "status"])


def _set_time_defaults(default: sa.ColumnElement | None) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for column in _TIMES:
            op.alter_column("contacts", column, server_default=default)
        return
    with _rows_kept_aside(bind):
        with op.batch_alter_table("contacts", recreate="always") as batch_op:
            for column in _TIMES:
                batch_op.alter_column(column, server_default=default)


@contextmanager
def _rows_kept_aside(bind: sa.Connection) -> Iterator[None]:
    """SQLite: ``contacts`` empty while the block rebuilds it, its rows (same ids) back afterwards, so that
    the ``delivery_attempts`` that refer to them are never orphaned (as in 0011_17).

    In a savepoint: outside a transaction pysqlite runs DDL in autocommit, and each commit would end
    the deferral."""
    with bind.begin_nested():
        bind.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # until the commit
        columns = ", ".join(f'"{c["name"]}"' for c in sa.inspect(bind).get_columns("contacts"))
        bind.exec_driver_sql(f"CREATE TEMPORARY TABLE _contacts_kept AS SELECT {columns} FROM contacts")
        bind.exec_driver_sql("DELETE FROM contacts")
        yield
        bind.exec_driver_sql(f"INSERT INTO contacts ({columns}) SELECT {columns} FROM _contacts_kept")
        bind.exec_driver_sql("DROP TABLE _contacts_kept")
