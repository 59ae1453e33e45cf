"""Approval before sending (``approval: required``) and the audit trail: the flow against a real Prefect
API and a real SMTP server, approvals in the terminal (``campaign approve``) and in the Prefect UI (a
paused flow run resumed with approval input), voided by a template change."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from orchestrator.db import audit
from orchestrator.db.engine import connect
from orchestrator.ledger import approvals
from orchestrator.settings import Settings, use_settings
from tests.support.wave import WAVE, wave_settings_for

APPROVE = f"campaign approve winback-email --wave {WAVE}"


@pytest.fixture
def approval_settings(cycle_settings, smtp, customers, prefect_api_url) -> Settings:
    """A workspace (copied rules and templates) whose win-back campaign needs approval."""
    rules = cycle_settings.paths.rules_dir / "winback-email.yaml"
    rules.write_text(rules.read_text() + "\napproval: required\n")
    return wave_settings_for(cycle_settings, smtp.port)


@pytest.fixture
def cli(make_cli, approval_settings):
    from orchestrator.cli import governance, main

    return make_cli(main.app, wide=[main, governance])


def _run(settings: Settings, **options):
    from flows.run import run_campaign, run_cycle

    rules = settings.paths.rules_dir / "winback-email.yaml"
    if options:
        return run_cycle(settings, [rules], wave=WAVE, dry_run=False, **options)[0]
    return run_campaign(settings, rules, wave=WAVE, dry_run=False)


def _emails(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("select email from customers where email is not null")).scalars())


@pytest.mark.slow
def test_nothing_is_sent_until_approved_and_a_template_change_voids_the_approval(
    approval_settings, smtp, customers, cli
):
    first = _run(approval_settings)
    assert first["status"] == "awaiting_approval" and first["sent_this_run"] == 0 and not smtp.received
    assert first["treated"] > 300 and first["ledger_pending"] == first["treated"]
    assert APPROVE in first["approval"] and "nothing was sent" in first["approval"]
    engine = connect(approval_settings)
    frozen = approvals.latest(engine, first["wave_id"])
    assert frozen is not None and frozen.status == "awaiting"
    assert (
        frozen.plan.counts["treatment"] == first["treated"] and frozen.plan.counts["channel email"] == first["treated"]
    )
    assert set(frozen.plan.templates) == {"email/winback"}
    sample = approval_settings.paths.data_dir / "approvals" / "winback-email"
    assert frozen.sample_path is not None and os.stat(frozen.sample_path).st_mode & 0o777 == 0o600
    assert len(json.loads(open(frozen.sample_path).read())) == 3 and len(list(sample.glob("*.html"))) == 1

    again = _run(approval_settings)  # still unapproved: still nothing, same frozen plan
    assert again["status"] == "awaiting_approval" and not smtp.received
    assert approvals.latest(engine, first["wave_id"]).id == frozen.id

    result = cli("approve", "winback-email", "--wave", WAVE, "--by", "ops-lead")
    assert result.exit_code == 0, result.output
    assert frozen.plan_sha256 in result.output and "approved by" in result.output

    # a template edited after the approval: the approval is void, nothing is sent, a new plan waits
    body = approval_settings.paths.templates_dir / "email" / "winback" / "body.txt"
    body.write_text(body.read_text() + "\nP.S. A new line after the approval.\n")
    voided = _run(approval_settings)
    assert voided["status"] == "awaiting_approval" and voided["sent_this_run"] == 0 and not smtp.received
    assert "approval by ops-lead of wave" in voided["approval"] and "is void" in voided["approval"]
    assert "template email/winback changed" in voided["approval"] and APPROVE in voided["approval"]
    refrozen = approvals.latest(engine, first["wave_id"])
    assert refrozen.id != frozen.id and refrozen.plan.templates != frozen.plan.templates

    result = cli("approve", "winback-email", "--wave", WAVE)
    assert result.exit_code == 0, result.output
    sent = _run(approval_settings)
    assert sent["status"] == "completed" and sent["ledger_pending"] == 0
    assert sent["sent_this_run"] == len(smtp.received) == sent["ledger_sent"] > 300
    assert "P.S. A new line after the approval." in smtp.messages[0].get_body(("plain",)).get_content()

    result = cli("approve", "winback-email", "--wave", WAVE)  # nothing left to approve
    assert result.exit_code == 1 and "already approved" in result.output

    # the audit trail: who did what, in order, without personal data
    actions = [e.action for e in audit.events(engine, campaign="winback-email")]
    assert actions.count("approval-requested") == 2 and actions.count("approve") == 2
    assert actions.count("approval-void") == 1 and actions.count("wave-finish") == 1
    assert "validate" in actions and actions.index("approval-void") < actions.index("wave-finish")
    approvers = [e.actor for e in audit.events(engine, "approve")]
    assert approvers[0] == "ops-lead" and approvers[1].startswith("os:")
    [finish] = audit.events(engine, "wave-finish")
    assert finish.counts["sent"] == finish.counts["sent_this_run"] == sent["sent_this_run"]
    result = cli("audit", "--campaign", "winback-email", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [e["action"] for e in listed] == actions
    text = result.output + cli("audit").output
    assert not [email for email in _emails(customers) if email in text]
    assert "approval-void" in cli("audit", "--action", "approval-void", "--since", "1h").output
    assert cli("audit", "--since", "yesterday").exit_code == 1


def _paused_flow_run(timeout: float = 120.0):
    """The id of the campaign_wave flow run paused for input, once the Prefect API shows it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(flow_run_filter=paused)
            if runs:
                return runs[0].id
            time.sleep(0.2)  # polling the API for a state change, not waiting a fixed time
    raise AssertionError(f"no flow run paused within {timeout} s")


def _deployment(rules):
    """A ``campaign_wave`` deployment of ``rules`` registered with the test API; its id."""
    from prefect.deployments.runner import EntrypointType

    from flows.campaign_wave import campaign_wave
    from flows.deployments import _synchronous

    deployment = _synchronous(
        campaign_wave.to_deployment(
            name=f"approval-{uuid.uuid4().hex[:8]}",
            parameters={"rules_path": str(rules), "wave_key": WAVE, "approval_timeout": 300},
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    )
    return _synchronous(deployment.apply())


def _run_by_hand_and_answer(settings: Settings, deployment_id, answer: dict) -> dict:
    """Create a flow run of the deployment by hand (as the UI's "Run" does), run it as a worker would, wait
    for the Prefect API to show it paused, answer its form with ``answer``; the run's summary."""
    return _run_by_hand(settings, deployment_id, answer).result()


@pytest.mark.slow
def test_a_run_started_from_a_deployment_pauses_and_the_approval_input_resumes_it(approval_settings, smtp, customers):
    deployment_id = _deployment(approval_settings.paths.rules_dir / "winback-email.yaml")

    declined = _run_by_hand_and_answer(approval_settings, deployment_id, {"approve": False, "approver": "joe"})
    assert declined["status"] == "awaiting_approval" and declined["sent_this_run"] == 0 and not smtp.received
    assert APPROVE in declined["approval"]

    summary = _run_by_hand_and_answer(approval_settings, deployment_id, {"approve": True, "approver": "jane.ops"})
    assert summary["status"] == "completed" and summary["sent_this_run"] == len(smtp.received) > 300
    engine = connect(approval_settings)
    [approved] = audit.events(engine, "approve")
    assert approved.actor == "prefect-ui:jane.ops" and approved.campaign == "winback-email"
    assert approvals.latest(engine, summary["wave_id"]).decided_by == "prefect-ui:jane.ops"


@pytest.fixture
def plain_settings(cycle_settings, smtp, customers, prefect_api_url) -> Settings:
    """A workspace whose win-back campaign needs no approval."""
    return wave_settings_for(cycle_settings, smtp.port)


def _run_by_hand(settings: Settings, deployment_id, answer: dict):
    """A flow run of the deployment created by hand and run as a worker would; once the Prefect API shows it
    paused, its form is answered with ``answer``. The run's final state."""
    from prefect import resume_flow_run
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.campaign_wave import campaign_wave

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id)
    result: dict = {}

    def run() -> None:
        with use_settings(settings):
            result["state"] = run_flow(
                campaign_wave, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
            )

    thread = threading.Thread(target=run)
    thread.start()
    assert _paused_flow_run() == flow_run.id
    resume_flow_run(flow_run.id, run_input=answer)
    thread.join(timeout=300)
    assert not thread.is_alive()
    return result["state"]


@pytest.mark.slow
def test_a_real_wave_started_by_hand_from_a_deployment_asks_before_anything_is_recorded(
    plain_settings, smtp, customers
):
    deployment_id = _deployment(plain_settings.paths.rules_dir / "winback-email.yaml")
    engine = connect(plain_settings)

    declined = _run_by_hand(plain_settings, deployment_id, {"send": False, "confirmed_by": "joe"})
    assert declined.is_cancelled() and "nothing was recorded or sent" in (declined.message or "")
    assert not smtp.received
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from contacts")).scalar_one() == 0
    [no] = audit.events(engine, "send-declined")
    assert no.actor == "prefect-ui:joe" and no.counts["contacts"] > 300

    sent = _run_by_hand(plain_settings, deployment_id, {"send": True, "confirmed_by": "jane.ops"})
    assert sent.is_completed(), sent.message
    summary = sent.result()
    assert summary["status"] == "completed" and summary["treated"] == no.counts["contacts"]
    assert summary["sent_this_run"] == len(smtp.received) > 300
    [yes] = audit.events(engine, "send-confirmed")
    assert yes.actor == "prefect-ui:jane.ops"
