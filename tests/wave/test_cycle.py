"""Cycles of several campaigns on several channels: arbitration, capacity-aware allocation,
ledger-driven webhook dispatch (exactly once, also across faults and SIGKILL) and dead letters.

Real parts: SQLite and PostgreSQL, the Prefect API of the session, an aiosmtpd server and
uvicorn receivers on 127.0.0.1 that verify the Standard Webhooks signatures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
import sqlalchemy as sa

from orchestrator.ledger import batches
from orchestrator.ledger import contacts as ledger
from orchestrator.settings import use_settings
from orchestrator.targeting.arbitration import arbitrate
from orchestrator.wave.stages import WaveIncomplete
from tests.smtp_server import SmtpServer
from tests.support.wave import CALLS_PER_DAY, VISITS_PER_REP, WAVE, cycle_environment, cycle_rules, run_cycle
from tests.webhook_receiver import TestReceiver

# --- arbitration (plain function) -------------------------------------------------------------


def test_priority_then_value_then_order_decide_and_losses_are_counted():
    result = arbitrate(
        ["a", "b", "c"],
        [0, 5, 0],
        [["x", "y", "z"], ["y", "w"], ["x", "z", "v"]],
        [np.array([1.0, 1.0, 3.0]), np.array([0.5, 9.0]), np.array([2.0, 3.0, 1.0])],
    )
    a, b, c = result.won
    assert a.tolist() == [
        False,
        False,
        True,
    ]  # x -> c (value 2 > 1); y -> b (priority); z: tie 3 = 3 -> a (listed first)
    assert b.tolist() == [True, True]
    assert c.tolist() == [True, False, True]
    assert result.losses == {("a", "c"): 1, ("a", "b"): 1, ("c", "a"): 1}
    assert result.lost("a") == {"c": 1, "b": 1}


def test_customers_recorded_earlier_in_the_cycle_stay_with_that_campaign():
    result = arbitrate(["b"], [100], [["x", "y"]], [np.array([9.0, 9.0])], taken={"x": "a"})
    assert result.won[0].tolist() == [False, True]
    assert result.losses == {("b", "a"): 1}


def _contacts(engine, campaign: str | None = None):
    c, w, k = ledger.contacts, ledger.waves, ledger.campaigns
    query = (
        sa.select(
            c.c.customer_id, c.c.arm, c.c.status, c.c.channel, c.c.assignee, k.c.name.label("campaign"), c.c.batch_id
        )
        .join_from(c, w, w.c.id == c.c.wave_id)
        .join(k, k.c.id == w.c.campaign_id)
    )
    if campaign:
        query = query.where(k.c.name == campaign)
    with engine.connect() as conn:
        return conn.execute(query).all()


def _delivered_once(rows, receiver: TestReceiver, channel: str) -> None:
    """Every treated contact of ``channel`` reached the receiver exactly once (counted by customer)."""
    treated = {r.customer_id for r in rows if r.channel == channel and r.arm == "treatment" and r.status == "sent"}
    per_customer = receiver.tasks_per_customer()
    assert set(per_customer) == treated
    assert not per_customer or max(per_customer.values()) == 1


# --- a cycle end to end -----------------------------------------------------------------------


@pytest.mark.slow
def test_cycle_allocates_within_capacity_arbitrates_and_delivers_each_task_once(
    run_settings, cycle_customers, receivers, smtp
):
    calls, visits = receivers
    summaries = run_cycle(run_settings, "retention-multichannel", "winback-email")
    retention, winback = summaries
    rows = _contacts(cycle_customers)
    campaigns_per_customer = Counter(r.customer_id for r in rows if r.arm != "global_control")
    assert max(campaigns_per_customer.values()) == 1, "a customer was recorded by two campaigns of one cycle"
    assert set(winback["lost_to"]) == {"retention-multichannel"} and winback["lost_to"]["retention-multichannel"] > 0
    assert retention["lost_to"] == {}

    treated = [r for r in rows if r.campaign == "retention-multichannel" and r.arm == "treatment"]
    on = Counter(r.channel for r in treated)
    assert on["call_center"] == CALLS_PER_DAY  # the call center is the bottleneck: filled exactly
    assert 0 < on["field_force"] <= 4 * VISITS_PER_REP and on["email"] > 0
    visits_per_rep = Counter(r.assignee for r in treated if r.channel == "field_force")
    assert max(visits_per_rep.values()) <= VISITS_PER_REP and set(visits_per_rep) <= {"R1", "R2", "R3", "R4"}
    control = [r for r in rows if r.campaign == "retention-multichannel" and r.arm == "control"]
    assert Counter(r.channel for r in control)["call_center"] == round(
        CALLS_PER_DAY * 0.1 / 0.9
    )  # mirrors the treated allocation
    assert all(r.status == "control" and r.batch_id is None for r in control)

    _delivered_once(rows, calls, "call_center")
    _delivered_once(rows, visits, "field_force")
    rep_of = {r.customer_id: r.assignee for r in treated if r.channel == "field_force"}
    for batch in visits.batches.values():  # one rep per visit list: the rep the ledger assigned each visit to
        assert {rep_of[v.customer_id] for v in batch.visits} == {batch.rep_id}
    assert retention["status"] == winback["status"] == "completed"
    assert retention["by_channel"]["call_center"] == {"sent": CALLS_PER_DAY}

    # the same cycle again sends nothing; a later cycle the same day gets no call capacity left
    again = run_cycle(run_settings, "retention-multichannel", "winback-email")
    assert [s["sent_this_run"] for s in again] == [0, 0]
    assert sum(calls.tasks_per_customer().values()) == CALLS_PER_DAY


def test_second_campaign_later_the_same_day_gets_what_capacity_is_left(run_settings, cycle_customers, receivers):
    run_cycle(run_settings, "retention-multichannel")
    rules = run_settings.paths.rules_dir
    second = rules / "retention-second.yaml"
    second.write_text(
        (rules / "retention-multichannel.yaml")
        .read_text()
        .replace("name: retention-multichannel", "name: retention-second")
        .replace("salt: retention-2026", "salt: second")
    )
    [summary] = run_cycle(run_settings, "retention-second")
    rows = _contacts(cycle_customers)
    assert Counter(r.channel for r in rows if r.arm == "treatment")["call_center"] == CALLS_PER_DAY
    assert summary["channels"].get("call_center", 0) == 0
    # customers the first campaign recorded under this wave key stay with it
    first = {r.customer_id for r in rows if r.campaign == "retention-multichannel" and r.arm != "global_control"}
    assert not first & {r.customer_id for r in rows if r.campaign == "retention-second" and r.arm != "global_control"}


def test_overflow_wait_keeps_customers_for_a_later_wave(run_settings, cycle_customers):
    rules = run_settings.paths.rules_dir
    path = rules / "retention-multichannel.yaml"
    path.write_text(path.read_text().replace("overflow: fallback", "overflow: wait"))
    [plan_wait] = _plans(run_settings, "retention-multichannel")
    path.write_text(path.read_text().replace("overflow: wait", "overflow: fallback"))
    [plan_fallback] = _plans(run_settings, "retention-multichannel")
    assert plan_wait.waiting > plan_fallback.waiting
    treated = lambda p: int(np.count_nonzero(p.contacts.arm == "treatment"))  # noqa: E731
    assert treated(plan_fallback) - treated(plan_wait) == plan_wait.waiting - plan_fallback.waiting
    # gold customers are worth most as visits; with wait, those the reps can't take wait instead of
    # falling back to a call, so the call center only gets customers whose best channel is a call
    assert plan_wait.channel_counts["field_force"] == plan_fallback.channel_counts["field_force"]
    assert plan_wait.channel_counts["call_center"] < plan_fallback.channel_counts["call_center"] == CALLS_PER_DAY


def _plans(settings, *names):
    from orchestrator.wave import stages

    prepared = [stages.prepare(settings, p, WAVE) for p in cycle_rules(settings, *names)]
    return stages.plan(settings, prepared, [stages.select_candidates(settings, p) for p in prepared])


def test_explain_shows_the_losses_between_campaigns(run_settings):
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    with use_settings(run_settings):
        result = CliRunner().invoke(
            app,
            [
                "explain",
                *map(str, cycle_rules(run_settings, "retention-multichannel", "winback-email")),
                "--wave",
                WAVE,
            ],
        )
    assert result.exit_code == 0, result.output
    assert "Arbitration: customers lost" in result.output and "lost to retention-multichannel" in result.output
    assert "call_center" in result.output and "field_force" in result.output


# --- faults at the receiver -------------------------------------------------------------------


def test_receiver_errors_are_retried_and_an_outage_resumes_without_duplicates(run_settings, cycle_customers, receivers):
    calls, visits = receivers
    calls.fail(2, status=500)
    calls.throttle("0", n=1)
    visits.drop(1)
    calls.slow(3.0, n=1)  # past the 2 s timeout: retried; the receiver still stores the first copy
    [summary] = run_cycle(run_settings, "retention-multichannel")
    assert summary["status"] == "completed"
    rows = _contacts(cycle_customers)
    _delivered_once(rows, calls, "call_center")
    _delivered_once(rows, visits, "field_force")
    assert sum(calls.redeliveries.values()) + sum(visits.redeliveries.values()) >= 1  # the timed-out and dropped ones


def test_outage_leaves_tasks_pending_and_the_next_run_delivers_them_once(run_settings, cycle_customers, receivers):
    calls, visits = receivers
    calls.fail(1000, status=503)
    with pytest.raises(WaveIncomplete, match="still unsent"):
        run_cycle(run_settings, "retention-multichannel")
    rows = _contacts(cycle_customers)
    assert {r.status for r in rows if r.channel == "call_center" and r.arm == "treatment"} == {"pending"}
    assert not calls.batches
    calls.heal()  # the receiver is back
    [summary] = run_cycle(run_settings, "retention-multichannel")
    assert summary["status"] == "completed" and summary["channels"]["call_center"] == CALLS_PER_DAY
    _delivered_once(_contacts(cycle_customers), calls, "call_center")


def test_rejected_task_lists_go_to_the_dead_letter_store_and_retry_delivers_them(
    run_settings, cycle_customers, receivers
):
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    calls, _visits = receivers
    calls.reject(400, '{"error": "unknown campaign"}')
    with pytest.raises(WaveIncomplete, match="dlq"):
        run_cycle(run_settings, "retention-multichannel")
    rows = _contacts(cycle_customers)
    failed = [r for r in rows if r.channel == "call_center" and r.arm == "treatment"]
    assert {r.status for r in failed} == {"failed"}
    runner = CliRunner()
    with use_settings(run_settings):
        listing = runner.invoke(app, ["dlq", "list"])
    assert listing.exit_code == 0 and "unknown" in listing.output and "400" in listing.output
    assert [d.reason for d in batches.dead_letters(cycle_customers)][0] == '{"error": "unknown campaign"}'
    assert not calls.batches

    calls.heal()  # the call center fixed its side
    with use_settings(run_settings):
        retried = runner.invoke(app, ["dlq", "retry", "--all"])
    assert retried.exit_code == 0, retried.output
    _delivered_once(_contacts(cycle_customers), calls, "call_center")
    with use_settings(run_settings):
        assert runner.invoke(app, ["dlq", "list"]).output.strip() == "no dead letters"
    assert batches.dead_letters(cycle_customers) == []


# --- SIGKILL during dispatch ------------------------------------------------------------------


@pytest.mark.slow
def test_killed_during_dispatch_delivers_every_task_exactly_once(
    cycle_settings, cycle_customers, prefect_api_url, tmp_path
):
    """Kill the sending process several times at random points while task lists are in flight
    (some accepted by the receiver before the ledger knew); every task arrives exactly once."""
    with TestReceiver(path="/call_center") as calls, TestReceiver(path="/field_force") as visits, SmtpServer() as smtp:
        env = {
            **os.environ,
            **cycle_environment(cycle_settings, smtp.port, calls, visits),
            "PREFECT_API_URL": prefect_api_url,
        }
        env["CAMPAIGN_WEBHOOKS_BATCH_SIZE"] = "2"
        env["CAMPAIGN_WEBHOOKS_CONCURRENCY"] = "2"
        command = [
            sys.executable,
            "-c",
            "from orchestrator.cli.main import app; app()",
            "run",
            str(cycle_rules(cycle_settings, "retention-multichannel")[0]),
            "--wave",
            WAVE,
            "--yes",
        ]
        calls.slow(0.25, n=10_000)  # every list takes a while: kills land mid-flight
        kills = 0
        for target in (3, 9, 16):
            process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 180
            while len(calls.batches) < target and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait(30)
        assert kills >= 2, "the run finished before it could be killed; slow the receiver down"
        calls.heal()
        final = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
        rows = _contacts(cycle_customers)
        _delivered_once(rows, calls, "call_center")
        _delivered_once(rows, visits, "field_force")
        assert not [r for r in rows if r.status == "pending"]
        per_customer = Counter(smtp.recipients)
        assert not per_customer or per_customer.most_common(1)[0][1] == 1
