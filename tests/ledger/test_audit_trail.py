"""The audit trail beyond erasures: suppression imports and validations recorded without personal data,
the facts an event may hold, and reading it back by campaign, action and time (``campaign audit``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.db import audit
from orchestrator.targeting.policy import import_suppressions
from tests.support import REPO


def test_a_suppression_import_is_audited_with_counts_and_no_ids(engine, tmp_path):
    ids = [f"C{i:07d}" for i in range(5)]
    file = tmp_path / "unsubscribed.csv"
    file.write_text("customer_id\n" + "\n".join(ids + ids[:2]) + "\n")
    report = import_suppressions(engine, file, "unsubscribed", actor="crm-sync")
    again = import_suppressions(engine, file, "unsubscribed")
    first, second = audit.events(engine, "suppression-import")
    assert (first.actor, first.counts["rows_read"], first.counts["ids"], first.counts["added"]) == ("crm-sync", 7, 5, 5)
    assert report.added == 5 and again.added == 0 and second.counts["already_present"] == 5
    assert second.actor == audit.current_actor() and first.details == {"reason": "unsubscribed", "channel": "*"}
    assert not any(i in json.dumps(e.as_dict()) for e in (first, second) for i in ids)


def test_the_actor_is_the_os_user_unless_the_process_names_another(monkeypatch):
    monkeypatch.delenv(audit.ACTOR_ENV, raising=False)
    assert audit.current_actor().startswith("os:")
    monkeypatch.setenv(audit.ACTOR_ENV, "api:crm-connector")
    assert audit.current_actor() == "api:crm-connector"


def test_details_are_short_facts_only(engine):
    with pytest.raises(ValueError, match="strings of at most 200 characters"), engine.begin() as conn:
        audit.record(conn, actor="t", action="validate", counts={}, details={"sample": "x" * 201})
    with pytest.raises(ValueError, match="whole numbers or strings"), engine.begin() as conn:
        audit.record(conn, actor="t", action="validate", counts={}, details={"rows": [1, 2]})
    assert audit.events(engine) == []


def test_events_filtered_by_campaign_action_time_and_limit(engine):
    for campaign, action in (("a", "validate"), ("b", "validate"), ("a", "approve"), (None, "suppression-import")):
        audit.record_now(engine, actor="t", action=action, counts={}, campaign=campaign)
    assert [e.action for e in audit.events(engine, campaign="a")] == ["validate", "approve"]
    assert [e.campaign for e in audit.events(engine, "validate")] == ["a", "b"]
    assert [e.action for e in audit.events(engine, limit=2)] == ["approve", "suppression-import"]
    assert len(audit.events(engine, since=datetime.now(UTC) - timedelta(minutes=5))) == 4
    assert audit.events(engine, since=datetime.now(UTC) + timedelta(minutes=5)) == []


def test_campaign_validate_records_the_digests(make_cli, settings, customers):
    from orchestrator.cli import main, validate

    cli = make_cli(main.app, wide=[main, validate])
    rules = REPO / "rules" / "winback-email.yaml"
    assert cli("validate", rules).exit_code == 0
    [event] = audit.events(customers, "validate")
    assert event.campaign == "winback-email" and event.counts["errors"] == 0
    assert event.details["result"] == "ok" and len(event.details["rules_sha256"]) == 64
    assert len(event.details["template email/winback"]) == 64
    listed = cli("audit", "--action", "validate", "--format", "json")
    assert json.loads(listed.output)[0]["details"]["rules_sha256"] == event.details["rules_sha256"]
