"""Migrations that rebuild a table keep its rows and what refers to them, both ways, on both databases."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from orchestrator.db import engine as database

BEFORE_LEDGER_COPY = "0009_19b"  # the revision before contacts lost its foreign key to waves (0011_17)


def _rows(conn: sa.Connection) -> None:
    """A campaign, a wave, two contacts (one in a task list) and a delivery attempt of the first."""
    now = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
    meta = sa.MetaData()
    table = lambda name: sa.Table(name, meta, autoload_with=conn)  # noqa: E731
    conn.execute(table("campaigns").insert(), [{"id": 1, "name": "spring", "created_at": now}])
    conn.execute(
        table("waves").insert(),
        [{"id": 7, "campaign_id": 1, "key": "k", "status": "recorded", "rules_sha256": "0" * 64,
          "selected": 2, "control": 0, "created_at": now}],
    )  # fmt: skip
    common = {"wave_id": 7, "arm": "treatment", "status": "sent", "attempts": 1, "created_at": now, "updated_at": now}
    conn.execute(
        table("contacts").insert(),
        [
            {"id": 11, "customer_id": "C1", "batch_id": None, **common},
            {"id": 12, "customer_id": "C2", "batch_id": 3, **common},
        ],
    )
    conn.execute(
        table("delivery_attempts").insert(),
        [{"id": 5, "contact_id": 11, "channel": "email", "outcome": "sent", "at": now}],
    )


def _wave_keys(engine: sa.Engine) -> list:
    return [k for k in sa.inspect(engine).get_foreign_keys("contacts") if k["referred_table"] == "waves"]


def _batch_index(engine: sa.Engine):  # noqa: ANN202
    return next(ix for ix in sa.inspect(engine).get_indexes("contacts") if ix["name"] == "ix_contacts_batch_id")


def test_ledger_copy_migration_round_trip_keeps_contacts_and_their_attempts(db_url):
    engine = database.create_engine(db_url)
    try:
        database.upgrade(engine, BEFORE_LEDGER_COPY)
        with engine.begin() as conn:
            _rows(conn)
        assert len(_wave_keys(engine)) == 1

        for revision, has_key in (("head", False), (BEFORE_LEDGER_COPY, True), ("head", False)):
            database.upgrade(engine, revision) if revision == "head" else _downgrade(engine, revision)
            assert bool(_wave_keys(engine)) is has_key, revision
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT id, batch_id FROM contacts ORDER BY id").all() == [
                    (11, None),
                    (12, 3),
                ]
                assert conn.exec_driver_sql("SELECT id, contact_id FROM delivery_attempts").all() == [(5, 11)]
            # the attempts still refer to their contacts: an attempt of no contact is refused
            attempts = sa.inspect(engine).get_foreign_keys("delivery_attempts")
            assert [(k["referred_table"], k["referred_columns"]) for k in attempts] == [("contacts", ["id"])]
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO delivery_attempts (contact_id, channel, outcome, at) "
                    "VALUES (999, 'email', 'sent', '2026-12-07 04:00:00')"
                )
            where = _batch_index(engine).get("dialect_options", {})
            partial = any("batch_id IS NOT NULL" in str(v) for k, v in where.items() if k.endswith("_where"))
            assert partial is not has_key, (revision, where)
    finally:
        engine.dispose()


def _downgrade(engine: sa.Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as connection:
        command.downgrade(database._alembic_config(connection), revision)


BEFORE_LEDGER_INDEXES = "0011_17"  # the revision before 0012_17 (no (wave_id, status) index, BRIN on planned_for)
_LEDGER_INDEXES = {
    BEFORE_LEDGER_INDEXES: {"ix_contacts_wave_status", "ix_contacts_planned_channel", "ix_contacts_batch_id"},
    "head": {"ix_contacts_planned_for", "ix_contacts_batch_id"},
}


def test_ledger_index_migration_round_trip_keeps_contacts_and_sets_their_times(db_url):
    engine = database.create_engine(db_url)
    try:
        database.upgrade(engine, BEFORE_LEDGER_COPY)
        with engine.begin() as conn:
            _rows(conn)
        database.upgrade(engine, BEFORE_LEDGER_INDEXES)
        for revision in ("head", BEFORE_LEDGER_INDEXES, "head"):
            database.upgrade(engine, revision) if revision == "head" else _downgrade(engine, revision)
            inspector = sa.inspect(engine)
            # PostgreSQL lists the unique constraint's index too; the constraint (one contact per wave and
            # customer) stays at every revision
            indexes = {ix["name"] for ix in inspector.get_indexes("contacts")} - {"uq_contacts_wave_customer"}
            assert indexes == _LEDGER_INDEXES[revision], revision
            unique = [(u["name"], u["column_names"]) for u in inspector.get_unique_constraints("contacts")]
            assert unique == [("uq_contacts_wave_customer", ["wave_id", "customer_id"])], revision
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT id, batch_id FROM contacts ORDER BY id").all() == [
                    (11, None),
                    (12, 3),
                ]
                assert conn.exec_driver_sql("SELECT id, contact_id FROM delivery_attempts").all() == [(5, 11)]
            attempts = sa.inspect(engine).get_foreign_keys("delivery_attempts")
            assert [(k["referred_table"], k["referred_columns"]) for k in attempts] == [("contacts", ["id"])]
            # a contact written without its times (the ledger's COPY): the database's time at head, refused before
            insert = (
                "INSERT INTO contacts (id, wave_id, customer_id, arm, status, attempts) "
                "VALUES (13, 7, 'C3', 'treatment', 'pending', 0)"
            )
            if revision == "head":
                with engine.begin() as conn:
                    conn.exec_driver_sql(insert)
                    created, updated = conn.exec_driver_sql(
                        "SELECT created_at, updated_at FROM contacts WHERE id = 13"
                    ).one()
                    conn.exec_driver_sql("DELETE FROM contacts WHERE id = 13")
                assert created is not None and created == updated
            else:
                with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                    conn.exec_driver_sql(insert)
    finally:
        engine.dispose()


def test_the_planned_for_index_is_brin_on_postgresql(db_url):
    engine = database.create_engine(db_url)
    try:
        database.upgrade(engine)
        if engine.dialect.name != "postgresql":
            pytest.skip("BRIN indexes are PostgreSQL's")
        with engine.connect() as conn:
            definition = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_contacts_planned_for'"
            ).scalar_one()
        assert "USING brin (planned_for)" in definition and "autosummarize='on'" in definition
    finally:
        engine.dispose()
