"""contacts: no foreign key to waves, the batch_id index only over rows in a batch

Revision ID: 0011_17
Revises: 0009_19b
Create Date: 2026-12-07 04:40:00

What a wave's COPY into the ledger paid for (``bench/ledger_copy_bench.py``): PostgreSQL checks a
foreign key once per inserted row (a trigger and an index probe of ``waves``), and every row went
into the ``batch_id`` index although ``batch_id`` is NULL until the contact is put in a task list.
The wave is guaranteed by the one writer of the ledger instead: ``record_contacts`` reads and
locks the wave row in the transaction that copies its contacts (no row for a missing wave), and
no code deletes a wave. ``delivery_attempts`` keeps its foreign key to ``contacts``.

SQLite rebuilds ``contacts`` to drop a constraint. With foreign keys enforced, dropping the old
table would orphan the ``delivery_attempts`` rows, so the rows are kept aside, the table emptied
with the checks deferred (``PRAGMA defer_foreign_keys``), rebuilt empty, and the rows put back:
at the commit every attempt has its contact again.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0011_17"
down_revision = "0009_19b"
branch_labels = None
depends_on = None

_FK_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}  # names SQLite's unnamed keys
_NOT_NULL = sa.text("batch_id IS NOT NULL")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with _rows_kept_aside(bind):
            with op.batch_alter_table("contacts", recreate="always", naming_convention=_FK_NAMES) as batch_op:
                batch_op.drop_constraint("fk_contacts_wave_id_waves", type_="foreignkey")
    else:
        for key in sa.inspect(bind).get_foreign_keys("contacts"):
            if key["referred_table"] == "waves" and key["name"]:  # PostgreSQL names every constraint
                op.drop_constraint(key["name"], "contacts", type_="foreignkey")
    op.drop_index("ix_contacts_batch_id", table_name="contacts")
    op.create_index(
        "ix_contacts_batch_id", "contacts", ["batch_id"], postgresql_where=_NOT_NULL, sqlite_where=_NOT_NULL
    )


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ix_contacts_batch_id", table_name="contacts")
    op.create_index("ix_contacts_batch_id", "contacts", ["batch_id"])
    if bind.dialect.name == "sqlite":
        with _rows_kept_aside(bind):
            with op.batch_alter_table("contacts", recreate="always") as batch_op:
                batch_op.create_foreign_key("fk_contacts_wave_id_waves", "waves", ["wave_id"], ["id"])
    else:
        op.create_foreign_key("contacts_wave_id_fkey", "contacts", "waves", ["wave_id"], ["id"])


@contextmanager
def _rows_kept_aside(bind: sa.Connection) -> Iterator[None]:
    """SQLite: ``contacts`` empty while the block rebuilds it, its rows (same ids) back afterwards.

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
