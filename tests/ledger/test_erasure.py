"""Problem 5 of issue 15: nothing erased a customer, snapshots held whole customer rows, files were 0644.

``campaign erase`` end to end on SQLite and PostgreSQL: import, a real wave over SMTP, responses
(events with free text, an unsubscribe, conversions), the report, erase, the report unchanged,
nothing of the person left but a ``do_not_contact`` entry, a re-import blocked, the snapshot free
of contact data, one audit event.
"""

from __future__ import annotations

import json
import shutil
import stat
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml

from orchestrator.cli import main as cli_main
from orchestrator.customers.importer import import_customers
from orchestrator.db import audit
from orchestrator.db.tables import Arm
from orchestrator.demo.synthetic import write_csv
from orchestrator.ledger.snapshots import snapshot_path
from orchestrator.responses.conversions import import_conversions
from orchestrator.responses.ingest import EventIn, ingest, unsubscribe
from orchestrator.rules.outcomes import load_outcomes
from orchestrator.settings import DatabaseSettings, PathSettings, Settings
from orchestrator.templates.links import LinkTokens
from tests.support import REPO
from tests.support.targeting import POLICY, ledger_rows, run_wave, write_rules

PERSONAL = "called back, spoke to Erika Mustermann at +49 30 1234567"


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "policy.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    return Settings(
        paths=PathSettings(rules_dir=rules, templates_dir=tmp_path / "templates", data_dir=tmp_path / "var"),
        database=DatabaseSettings(url=db_url),
    )


def _text_cells(engine: sa.Engine) -> dict[str, set[str]]:
    """Every text value of every table in the database, by table."""
    found: dict[str, set[str]] = {}
    with engine.connect() as conn:
        metadata = sa.MetaData()
        metadata.reflect(conn)
        for table in metadata.sorted_tables:
            columns = [c for c in table.c if isinstance(c.type, (sa.String, sa.Text, sa.JSON))]
            values: set[str] = set()
            for row in conn.execute(sa.select(*columns)) if columns else []:
                values.update(json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in row if v is not None)
            found[table.name] = values
    return found


def test_erase_end_to_end(settings, engine, smtp, make_cli, tmp_path):
    csv = write_csv(tmp_path / "customers.csv", 3000, seed=11)
    import_customers(engine, csv)
    rules = write_rules(settings, "erasable")
    _prepared, _selection, wave = run_wave(settings, rules, smtp=smtp)
    rows = ledger_rows(engine, wave.id)
    treated = [r for r in rows if r.arm == Arm.TREATMENT.value and r.status == "sent"]
    control = [r for r in rows if r.arm == Arm.CONTROL.value]
    victims = [treated[0], treated[1], control[0]]
    ids = [r.customer_id for r in victims]

    # responses: events with free text, an unsubscribe link, conversions of victims and others
    tokens = LinkTokens(settings.link_secret())
    events = [
        EventIn(
            event_id=f"ev-{r.id}",
            type="click",
            occurred_at=datetime(2026, 11, 25, tzinfo=UTC),
            tracking_token=tokens.make("tracking", wave.id, r.id),
            detail=PERSONAL,
        )
        for r in treated[:40]
    ]
    results = ingest(
        engine,
        "esp",
        events,
        settings=settings,
        outcomes=load_outcomes(settings.paths.rules_dir),
        allowed_channels=("email",),
    )
    assert all(r.status == "accepted" for r in results)
    assert unsubscribe(engine, settings, tokens.make("unsubscribe", wave.id, treated[0].id)).suppressed
    buyers = [r.customer_id for r in treated[:60]] + [r.customer_id for r in control[:10]]
    purchases = tmp_path / "purchases.csv"
    purchases.write_text("customer_id,occurred_at,amount\n" + "".join(f"{c},2026-11-28,80\n" for c in buyers))
    import_conversions(engine, purchases)

    cli = make_cli(cli_main.app, wide=[cli_main])
    before = cli("report", "erasable", "--format", "json")
    assert before.exit_code == 0, before.output
    snapshot = snapshot_path(settings, wave.id)
    assert set(ids) <= set(pq.read_table(snapshot).column("customer_id").to_pylist())

    erased = cli("erase", *ids[:2], "--by", "ticket-4711")
    assert erased.exit_code == 0, erased.output
    id_file = tmp_path / "erase.txt"
    id_file.write_text(f"# privacy requests\n{ids[2]}\n\n")
    assert cli("erase", "--file", id_file).exit_code == 0
    assert "contacts pseudonymised" in erased.output and ids[0] not in erased.output

    # the success report of the wave is the same, number for number
    after = cli("report", "erasable", "--format", "json")
    assert json.loads(after.output)["segments"] == json.loads(before.output)["segments"]

    # nothing of the person is left but one do_not_contact entry per id
    cells = _text_cells(engine)
    for table, values in cells.items():
        left = set(ids) & values
        assert not left or table == "suppressions", (table, left)
    with engine.connect() as conn:
        entries = conn.execute(sa.text("select customer_id, channel, reason, source from suppressions")).all()
        pseudonyms = conn.execute(
            sa.text("select count(*) from contacts where customer_id like 'erased-%'")
        ).scalar_one()
        assert conn.execute(sa.text("select count(*) from contacts")).scalar_one() == len(rows)
        details = conn.execute(
            sa.text("select customer_id like 'erased-%', detail from response_events where source = 'esp'")
        ).all()
    assert sorted(bool(e) for e, _ in details) == [False] * 38 + [True] * 2  # the victims' events stay, counted
    assert all((detail is None) == bool(erased_row) for erased_row, detail in details)  # their free text is gone
    assert sorted(e for e in entries if e.customer_id in ids) == sorted(
        (i, "*", "do_not_contact", "erasure") for i in ids
    )
    assert pseudonyms == 3

    # a re-import does not bring them back
    again = import_customers(engine, csv)
    assert again.erased_skipped == 3
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("select count(*) from customers where customer_id in (:a, :b, :c)"),
                dict(zip("abc", ids, strict=True)),
            ).scalar_one()
            == 0
        )

    # the snapshot holds model features only, and not the erased people
    table = pq.read_table(snapshot)
    assert not set(ids) & set(table.column("customer_id").to_pylist())
    assert {"email", "phone", "first_name", "last_name"}.isdisjoint(table.column_names)
    assert {"age", "region", "segment", "revenue_12m", "recency_days"} <= set(table.column_names)
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600 and stat.S_IMODE(snapshot.parent.stat().st_mode) == 0o700

    # one audit event per erasure: who and how many, no id
    recorded = audit.events(engine, "erase")
    assert [(e.actor, e.subject) for e in recorded] == [
        ("ticket-4711", "2 customers"),
        (recorded[1].actor, "1 customer"),
    ]
    assert recorded[0].counts["contacts_pseudonymised"] == 2 and recorded[0].counts["customer_rows_deleted"] == 2
    assert recorded[0].counts["snapshot_rows_removed"] == 2
    assert not any(i in json.dumps(e.counts) + (e.subject or "") for e in recorded for i in ids)


def test_audit_events_are_append_only(engine):
    with engine.begin() as conn:
        audit.record(conn, actor="test", action="erase", counts={"customers": 1}, subject="1 customer")
    for statement in ("update audit_events set actor = 'someone else'", "delete from audit_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert [e.actor for e in audit.events(engine)] == ["test"]
    with pytest.raises(ValueError, match="whole numbers"), engine.begin() as conn:
        audit.record(conn, actor="test", action="erase", counts={"customer": "C0000001"})


def test_files_the_engine_writes_are_private(tmp_path):
    """Database (SQLite) files and snapshots were created 0644; now 0600 in folders of 0700."""
    from orchestrator.db import engine as database

    settings = Settings(
        paths=PathSettings(rules_dir=REPO / "rules", data_dir=tmp_path / "var"),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'db' / 'campaign.db'}"),
    )
    database.connect(settings)
    try:
        db_file = tmp_path / "db" / "campaign.db"
        assert stat.S_IMODE(db_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(db_file.parent.stat().st_mode) == 0o700
        for wal in db_file.parent.glob("campaign.db-*"):
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600, wal
        settings.link_secret()
        assert stat.S_IMODE((tmp_path / "var" / "link-secret.key").stat().st_mode) == 0o600
    finally:
        database.dispose_all()
