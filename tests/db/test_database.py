import sqlalchemy as sa

from orchestrator.db import engine as database


def test_connect_migrates_to_head(engine):
    assert database.current_revision(engine) == database.head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert {"campaigns", "waves", "contacts", "delivery_attempts"} <= tables


def test_contact_ledger_is_unique_per_wave_and_customer(engine):
    uniques = sa.inspect(engine).get_unique_constraints("contacts")
    assert any(set(u["column_names"]) == {"wave_id", "customer_id"} for u in uniques)


def test_upgrade_is_idempotent(engine):
    assert database.upgrade(engine) == database.head_revision()
