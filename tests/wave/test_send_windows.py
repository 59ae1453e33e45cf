"""Send windows in a whole wave: contacts outside their window wait in the ledger, a later run sends them.

The clock is the settings' ``execution.now`` (``CAMPAIGN_EXECUTION_NOW``), so the two runs are
two moments of one Tuesday; the SMTP server, the Prefect API and the databases are real.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from orchestrator.ledger import contacts as ledger
from orchestrator.settings import Settings
from tests.support.wave import RULES, wave_settings_for

WINDOWED = """
policy:
  timezone: Europe/Berlin
  send_windows:
    email: {window: "08:00-20:00", days: mon-fri}
"""


def _at(settings: Settings, moment: datetime) -> Settings:
    return settings.model_copy(update={"execution": settings.execution.model_copy(update={"now": moment})})


def _run(settings: Settings, rules):
    from flows.run import run_campaign

    return run_campaign(settings, rules, wave="2026-11-24", dry_run=False)


@pytest.mark.slow
def test_contacts_outside_their_window_wait_and_a_later_run_sends_them(
    settings, smtp, customers, prefect_api_url, tmp_path
):
    rules = tmp_path / "winback-windowed.yaml"
    rules.write_text(RULES.read_text() + WINDOWED)
    with customers.begin() as conn:  # a third of the customers live in Tokyo, the rest have no zone (Berlin)
        conn.execute(sa.text("ALTER TABLE customers ADD COLUMN timezone VARCHAR(64)"))
        ids = conn.execute(sa.text("SELECT customer_id FROM customers ORDER BY customer_id")).scalars().all()
        tokyo = set(ids[::3])
        conn.execute(
            sa.text("UPDATE customers SET timezone = 'Asia/Tokyo' WHERE customer_id = :id"), [{"id": i} for i in tokyo]
        )
        emails = dict(conn.execute(sa.text("SELECT email, customer_id FROM customers")).all())
    base = wave_settings_for(settings, smtp.port)

    # Tuesday 06:00 UTC: 07:00 in Berlin (closed), 15:00 in Tokyo (open)
    first = _run(_at(base, datetime(2026, 11, 24, 6, 0, tzinfo=UTC)), rules)
    sent_first = [emails[address] for address in smtp.recipients]
    assert sent_first and set(sent_first) <= tokyo
    assert first["status"] == "waiting" and first["sent_this_run"] == len(sent_first)
    with customers.connect() as conn:
        rows = conn.execute(
            sa.select(
                ledger.contacts.c.customer_id,
                ledger.contacts.c.status,
                ledger.contacts.c.send_after,
                ledger.contacts.c.detail,
            ).where(ledger.contacts.c.arm == "treatment")
        ).all()
    waiting = [r for r in rows if r.status == "pending"]
    assert waiting and all(r.customer_id not in tokyo for r in waiting)
    assert {r.send_after.replace(tzinfo=None) for r in waiting} == {datetime(2026, 11, 24, 7, 0)}  # 08:00 Berlin
    assert all(r.detail == "waiting for the email window 08:00-20:00 mon,tue,wed,thu,fri" for r in waiting)
    assert first["waiting_for_window"] == len(waiting) == first["ledger_pending"]
    assert first["next_send_slot"] == "2026-11-24T07:00:00+00:00"
    assert not [r for r in rows if r.status == "pending" and r.customer_id in tokyo]

    # the same moment again: nothing more goes out, nobody is dropped
    again = _run(_at(base, datetime(2026, 11, 24, 6, 30, tzinfo=UTC)), rules)
    assert again["sent_this_run"] == 0 and again["status"] == "waiting" and len(smtp.recipients) == len(sent_first)

    # 07:30 UTC: 08:30 in Berlin, the window is open: the waiting contacts are sent, each once
    later = _run(_at(base, datetime(2026, 11, 24, 7, 30, tzinfo=UTC)), rules)
    assert later["status"] == "completed" and later["ledger_pending"] == 0 and later["waiting_for_window"] == 0
    assert later["sent_this_run"] == len(smtp.recipients) - len(sent_first) > 0
    assert Counter(smtp.recipients).most_common(1)[0][1] == 1
    sent_later = {emails[address] for address in smtp.recipients[len(sent_first) :]}
    assert sent_later == {r.customer_id for r in waiting} - skipped_ids(customers)


def skipped_ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(ledger.contacts.c.customer_id).where(ledger.contacts.c.status == "skipped")
            ).scalars()
        )


@pytest.mark.slow
def test_task_channels_wait_for_working_days_in_the_campaigns_zone(run_settings, cycle_customers, receivers, smtp):
    """Call center 09:00-18:00 on weekdays and no visits at weekends: a Saturday run sends the e-mails only;
    the tasks wait, and Monday's run delivers each once."""
    from tests.support.wave import run_cycle

    calls, visits = receivers
    policy = run_settings.paths.rules_dir / "policy.yaml"
    policy.write_text(
        policy.read_text()
        + "\ntimezone: Europe/Berlin\nsend_windows:\n"
        + '  call_center: {window: "09:00-18:00", days: mon-fri}\n'
        + "  field_force: {days: mon-fri}\n"
    )
    [saturday] = run_cycle(_at(run_settings, datetime(2026, 11, 28, 11, 0, tzinfo=UTC)), "retention-multichannel")
    assert saturday["status"] == "waiting"
    assert calls.tasks_per_customer() == {} and visits.tasks_per_customer() == {}
    by_channel = saturday["by_channel"]
    assert by_channel["email"].get("pending", 0) == 0 and smtp.received  # e-mail has no window here
    waiting = by_channel["call_center"]["pending"] + by_channel["field_force"]["pending"]
    assert saturday["waiting_for_window"] == waiting > 0
    assert saturday["next_send_slot"] == "2026-11-29T23:00:00+00:00"  # visits: Monday 00:00 in Berlin
    with cycle_customers.connect() as conn:
        details = set(
            conn.execute(
                sa.select(ledger.contacts.c.detail).where(
                    ledger.contacts.c.status == "pending", ledger.contacts.c.arm == "treatment"
                )
            ).scalars()
        )
    assert details == {
        "waiting for the call_center window 09:00-18:00 mon,tue,wed,thu,fri",
        "waiting for the field_force window mon,tue,wed,thu,fri",
    }

    [monday] = run_cycle(_at(run_settings, datetime(2026, 11, 30, 8, 30, tzinfo=UTC)), "retention-multichannel")
    assert monday["status"] == "completed" and monday["waiting_for_window"] == 0
    assert sum(calls.tasks_per_customer().values()) == by_channel["call_center"]["pending"]
    assert max(calls.tasks_per_customer().values()) == 1 and max(visits.tasks_per_customer().values()) == 1
    assert sum(visits.tasks_per_customer().values()) == by_channel["field_force"]["pending"]


@pytest.mark.slow
def test_a_deployment_run_whose_contacts_wait_schedules_its_follow_up_at_the_next_slot(
    settings, smtp, customers, prefect_api_url, tmp_path
):
    """Run from a deployment (as a worker runs it), the wave waits for Berlin's 08:00: a run of the same
    deployment and wave is scheduled at 07:00 UTC and, executed then, sends every waiting contact once."""
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.deployments.runner import EntrypointType
    from prefect.flow_engine import run_flow

    from flows.campaign_wave import campaign_wave
    from flows.deployments import _synchronous
    from orchestrator.settings import use_settings

    rules = tmp_path / "winback-windowed.yaml"
    rules.write_text(RULES.read_text() + WINDOWED)
    base = wave_settings_for(settings, smtp.port)
    deployment = _synchronous(
        campaign_wave.to_deployment(
            name=f"windowed-{uuid.uuid4().hex[:8]}",
            parameters={"rules_path": str(rules), "wave_key": "2026-11-24", "wait_for_approval": False},
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    )
    deployment_id = _synchronous(deployment.apply())
    with get_client(sync_client=True) as client:
        first_run = client.create_flow_run_from_deployment(deployment_id)
    with use_settings(_at(base, datetime(2026, 11, 24, 6, 0, tzinfo=UTC))):  # 07:00 in Berlin: closed
        state = run_flow(campaign_wave, flow_run=first_run, parameters=first_run.parameters, return_type="state")
    first = state.result()
    assert first["status"] == "waiting" and first["waiting_for_window"] > 0 and first["follow_up_run"]
    assert len(smtp.recipients) == 0  # nobody in this table has a zone of their own: all wait for Berlin

    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs() if r.deployment_id == deployment_id and r.id != first_run.id]
    [follow_up] = runs
    assert follow_up.state.is_scheduled()
    assert follow_up.expected_start_time == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert follow_up.parameters["wave_key"] == "2026-11-24" and follow_up.parameters["wait_for_approval"] is False
    assert first["follow_up_run"].startswith(follow_up.name)

    with use_settings(_at(base, datetime(2026, 11, 24, 7, 0, tzinfo=UTC))):  # the slot: what a worker would run
        later = run_flow(
            campaign_wave, flow_run=follow_up, parameters=follow_up.parameters, return_type="state"
        ).result()
    assert later["status"] == "completed" and later["ledger_pending"] == 0 and later["waiting_for_window"] == 0
    assert len(smtp.recipients) == len(set(smtp.recipients)) == later["sent_this_run"] > 0
