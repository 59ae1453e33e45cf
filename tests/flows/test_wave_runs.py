"""What operators see of a wave in the Prefect UI, read back through the session's real Prefect API:
run and task run names, tags, artifacts (funnel, per channel, headline, send progress), the
confirmation of a real send. Each test uses its own wave key, so its runs are found by name."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from flows.run import SendDeclined, SendPlan, run_cycle
from orchestrator.ledger import contacts as ledger
from orchestrator.settings import Settings
from tests.support.wave import RULES, wave_ledger, wave_settings_for


@pytest.fixture
def wave_settings(settings, smtp, customers, prefect_api_url) -> Settings:
    """The test database and SMTP server; chunks of 150 contacts, so a send has several chunk tasks."""
    base = wave_settings_for(settings, smtp.port)
    return base.model_copy(update={"execution": base.execution.model_copy(update={"chunk_size": 150})})


def _post(api: str, path: str, body: dict) -> list[dict]:
    return httpx.post(f"{api}/{path}", json=body, timeout=30).raise_for_status().json()


def flow_run(api: str, name: str) -> dict:
    """The newest flow run called ``name``."""
    body = {"flow_runs": {"name": {"any_": [name]}}, "sort": "EXPECTED_START_TIME_DESC", "limit": 1}
    runs = _post(api, "flow_runs/filter", body)
    assert runs, f"no flow run named {name!r}"
    return runs[0]


def task_run_names(api: str, run_id: str) -> list[str]:
    body = {"task_runs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}
    return [t["name"] for t in _post(api, "task_runs/filter", body)]


def run_artifacts(api: str, run_id: str) -> dict[str, dict]:
    """The flow run's artifacts by key (the newest of each key)."""
    body = {"artifacts": {"flow_run_id": {"any_": [run_id]}}, "sort": "CREATED_DESC", "limit": 200}
    found: dict[str, dict] = {}
    for artifact in _post(api, "artifacts/filter", body):
        found.setdefault(artifact["key"], artifact)
    return found


def test_real_wave_is_named_tagged_and_explained(wave_settings, smtp, customers, prefect_api_url):
    api = prefect_api_url
    [summary] = run_cycle(wave_settings, [RULES], wave="2026-12-09", dry_run=False)
    assert summary["sent_this_run"] == len(smtp.received) > 150

    run = flow_run(api, "winback-email 2026-12-09")
    assert run["state_type"] == "COMPLETED"
    assert "campaign:winback-email" in run["tags"] and "dry-run" not in run["tags"]

    names = task_run_names(api, run["id"])
    chunks = -(-summary["treated"] // 150)
    assert {"load winback-email", "select winback-email", "record winback-email"} <= set(names)
    assert {f"send email {i}/{chunks}" for i in range(1, chunks + 1)} <= set(names), names

    found = run_artifacts(api, run["id"])
    assert {"wave-winback-email", "funnel-winback-email", "channels-winback-email", "result-winback-email"} <= set(
        found
    )
    funnel = found["funnel-winback-email"]
    assert funnel["type"] == "table"
    rows = _table(funnel)
    assert rows[0]["Step"] == "All customers" and rows[0]["Customers left"] == "3,000"
    assert any(r["Step"] == "Control group" for r in rows)
    channels = _table(found["channels-winback-email"])
    assert channels == [
        {
            "Channel": "E-mail",
            "Treated customers": f"{summary['treated']:,}",
            "Sent": f"{summary['ledger_sent']:,}",
            "Failed (permanent)": "0",
            "Skipped (not sendable)": f"{summary['ledger_skipped']:,}",
            "Still pending": "0",
        }
    ]
    wave = _table(found["wave-winback-email"])
    assert all(isinstance(r["Value"], str) and not r["Value"].startswith("{") for r in wave)
    assert {"Measure": "Sent in this run", "Value": f"{summary['sent_this_run']:,}"} in wave
    result = found["result-winback-email"]
    assert result["type"] == "markdown" and f"{summary['ledger_sent']:,} of {summary['treated']:,}" in result["data"]
    assert "campaign report winback-email" in result["data"]
    progress = found["send-winback-email"]
    assert progress["type"] == "progress" and float(progress["data"]) == 100.0


def test_dry_run_is_marked_and_has_its_own_artifacts(wave_settings, smtp, customers, prefect_api_url):
    api = prefect_api_url
    [summary] = run_cycle(wave_settings, [RULES], wave="2026-12-10", dry_run=True)
    run = flow_run(api, "winback-email 2026-12-10, dry run")
    assert {"campaign:winback-email", "dry-run"} <= set(run["tags"])
    found = run_artifacts(api, run["id"])
    assert {"dry-run-wave-winback-email", "dry-run-funnel-winback-email", "dry-run-result-winback-email"} <= set(found)
    assert not {"wave-winback-email", "result-winback-email"} & set(found)
    assert "Nothing was recorded or sent" in found["dry-run-result-winback-email"]["data"]
    assert f"{summary['rendered']:,} messages rendered" in found["dry-run-result-winback-email"]["data"]
    assert smtp.received == []


def test_declined_send_records_and_sends_nothing(wave_settings, smtp, customers, prefect_api_url):
    asked: list[SendPlan] = []

    def decline(plan: SendPlan) -> bool:
        asked.append(plan)
        return False

    with pytest.raises(SendDeclined, match="nothing was recorded or sent"):
        run_cycle(wave_settings, [RULES], wave="2026-12-11", dry_run=False, confirm=decline)
    [plan] = asked
    assert plan.campaigns == ("winback-email",) and plan.channels["email"] > 150
    assert plan.question() == f"send {plan.contacts:,} contacts through 1 channel?"
    assert smtp.received == [] and wave_ledger(customers) == []
    assert flow_run(prefect_api_url, "winback-email 2026-12-11")["state_type"] == "CANCELLED"

    [summary] = run_cycle(wave_settings, [RULES], wave="2026-12-11", dry_run=False, confirm=lambda _plan: True)
    assert summary["treated"] == plan.contacts and summary["sent_this_run"] == len(smtp.received)
    with customers.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger.waves)).scalar_one() == 1


def _table(artifact: dict) -> list[dict]:
    import json

    data = artifact["data"]
    return json.loads(data) if isinstance(data, str) else data


def test_a_deployment_run_is_renamed_and_tagged_as_it_starts(wave_settings, smtp, customers, prefect_api_url):
    """A run created from the wave deployment (as the UI's Custom run does, with ``dry_run`` true), executed
    the way ``campaign serve`` executes it (the flow engine with that flow run): named and tagged by the flow."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.campaign_wave import campaign_wave
    from flows.deployments import apply_deployments
    from orchestrator.settings import use_settings

    apply_deployments(wave_settings)  # the repo's rules: winback-email has a schedule
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("campaign_wave/winback-email: wave")
        created = client.create_flow_run_from_deployment(
            deployment.id, parameters={"wave_key": "2026-12-16", "dry_run": True}
        )
    assert created.name != "winback-email 2026-12-16, dry run" and "dry-run" not in created.tags
    with use_settings(wave_settings):
        state = run_flow(campaign_wave, flow_run=created, parameters=created.parameters, return_type="state")
    assert state.is_completed(), state.message
    run = flow_run(prefect_api_url, "winback-email 2026-12-16, dry run")
    assert run["id"] == str(created.id)
    assert {"campaign", "campaign:winback-email", "dry-run"} <= set(run["tags"])
    assert "dry-run-funnel-winback-email" in run_artifacts(prefect_api_url, run["id"])
    assert smtp.received == [] and wave_ledger(customers) == []
