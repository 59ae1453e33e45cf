"""Prefect flow ``campaign_wave``: one task per stage or per chunk of customers, never per customer.

The logic lives in ``orchestrator.wave.stages``; this module only wires the stages into Prefect
tasks (so they show in the Prefect UI with their timing), adds retries where a retry is
safe, logs counts (never personal data) and attaches a summary artifact to the flow run.
Scoring, full rendering (dry runs) and sending run as chunk tasks (``flows.chunk_runner``)
on the flow's task runner: threads in this process, or a Dask cluster
(``CAMPAIGN_EXECUTION_TASK_RUNNER=dask``, or ``campaign run --task-runner dask``).
The flow reads its ``Settings`` once, at its start (``get_settings()``: the object an
in-process caller gave with ``flows.run.run_cycle(settings, ...)``, else the ``CAMPAIGN_*``
environment of the process), and passes it to every task as an argument. Settings are never
flow parameters (those are stored in the Prefect API and shown in the UI), so no secret reaches
the API.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, pause_flow_run, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.input import RunInput
from pydantic import Field

from flows.chunk_runner import prefect_mapper, task_runner
from flows.run import flow_started
from orchestrator.db import audit
from orchestrator.db.engine import connect
from orchestrator.db.tables import WaveStatus
from orchestrator.ledger.approvals import ApprovalError
from orchestrator.ledger.contacts import WaveRef
from orchestrator.settings import ExecutionSettings, Settings, get_settings
from orchestrator.wave import approval, stages

APPROVAL_TIMEOUT = 3600
"""Seconds a flow run paused for approval waits before it fails (the wave stays awaiting approval)."""
APPROVAL_POLL_SECONDS = 5
"""How often a paused flow run asks the Prefect API whether it was resumed."""


class WaveApprovalInput(RunInput):
    """The form the Prefect UI shows on a flow run paused for a wave's approval."""

    approve: bool = Field(False, description="Approve the frozen plan shown in the description and send the wave.")
    approver: str = Field(
        "", max_length=100, description="Your name or user id, for the audit trail (no customer data)."
    )


@task(name="load", cache_policy=NO_CACHE)
def load(settings: Settings, rules_path: str, wave_key: str | None) -> stages.PreparedWave:
    return stages.prepare(settings, Path(rules_path), wave_key)


@task(name="open-wave", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def open_wave(settings: Settings, prepared: stages.PreparedWave) -> WaveRef:
    return stages.open_wave(settings, prepared)


@task(name="select", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def select(settings: Settings, prepared: stages.PreparedWave, with_funnel: bool) -> stages.Candidates:
    candidates = stages.filter_candidates(settings, prepared, with_funnel=with_funnel)
    get_run_logger().info(
        "selected %d customers (%d held out as global control)", len(candidates.ids), len(candidates.global_control)
    )
    return candidates


def select_and_score(settings: Settings, prepared: stages.PreparedWave, with_funnel: bool) -> stages.Candidates:
    """The SQL selection as one task, then the scores as one task per chunk."""
    candidates = select(settings, prepared, with_funnel)
    if prepared.spec.scores is None:
        return candidates
    candidates = stages.score_candidates(settings, prepared, candidates, mapper=prefect_mapper)
    get_run_logger().info("%d customers kept by their scores", len(candidates.ids))
    return candidates


@task(name="plan", cache_policy=NO_CACHE)
def plan(
    settings: Settings, prepared: list[stages.PreparedWave], candidates: list[stages.Candidates], with_funnel: bool
) -> list:
    plans = stages.plan(settings, prepared, candidates, with_funnel=with_funnel)
    logger = get_run_logger()
    for p in plans:
        lost = ", ".join(f"{n} to {w}" for w, n in p.lost_to.items()) or "none"
        logger.info(
            "%s: treated per channel %s; lost %s; waiting for capacity %d",
            p.spec.name,
            p.channel_counts,
            lost,
            p.waiting,
        )
    return plans


@task(name="render-sample", cache_policy=NO_CACHE)
def render_sample(settings: Settings, prepared: stages.PreparedWave, selection) -> stages.RenderCheck:
    check = stages.render_selection(settings, prepared, selection, sample=stages.RENDER_SAMPLE)
    get_run_logger().info("rendered %d sample messages, %d render errors", check.rendered, check.errors)
    return check


def render_all(settings: Settings, prepared: stages.PreparedWave, selection) -> stages.RenderCheck:
    """Every treated message, one task per chunk (dry runs)."""
    check = stages.render_selection(settings, prepared, selection, sample=None, mapper=prefect_mapper)
    get_run_logger().info("rendered %d messages, %d render errors", check.rendered, check.errors)
    return check


@task(name="approval", cache_policy=NO_CACHE)
def approval_gate(settings: Settings, prepared: stages.PreparedWave, wave: WaveRef) -> approval.Gate:
    gate = approval.gate(settings, prepared, wave)
    get_run_logger().info(
        "%s, wave %s: %s", prepared.spec.name, wave.key, gate.message if not gate.approved else "approved"
    )
    return gate


def _pause_here(wait_for_approval: bool | None) -> bool:
    """Pause for approval input in this flow run? Asked explicitly, or (None) when the run was started from a
    deployment by hand (the Prefect UI, ``prefect deployment run``), not by its schedule."""
    if wait_for_approval is not None:
        return wait_for_approval
    context = FlowRunContext.get()
    run = None if context is None else context.flow_run
    return run is not None and run.deployment_id is not None and not run.auto_scheduled


def wait_for_approval_input(
    settings: Settings, prepared: stages.PreparedWave, wave: WaveRef, gate: approval.Gate, timeout: int
) -> approval.Gate:
    """Pause the flow run until someone answers the approval form in the Prefect UI; approve if they say so."""
    logger = get_run_logger()
    description = (
        f"Approve wave {wave.key} of campaign {prepared.spec.name}: plan {gate.plan_sha256[:12]}. "
        f"Sample messages: {gate.sample_path}. Or approve in a terminal: "
        f"`campaign approve {prepared.spec.name} --wave {wave.key}`."
    )
    answer = pause_flow_run(
        wait_for_input=WaveApprovalInput.with_initial_data(description=description),
        timeout=timeout,
        poll_interval=APPROVAL_POLL_SECONDS,
        key=f"approval-{prepared.spec.name}-{wave.key}",
    )
    if not answer.approve:
        logger.info("%s, wave %s: not approved in the Prefect UI; nothing sent", prepared.spec.name, wave.key)
        return gate
    who = f"prefect-ui:{answer.approver.strip() or 'unnamed'}"
    try:
        approval.approve(settings, prepared.spec.name, wave.key, actor=who)
    except ApprovalError as exc:  # approved in a terminal meanwhile, or voided
        logger.info("%s", exc)
    return approval.gate(settings, prepared, wave)


@task(name="record", cache_policy=NO_CACHE)
def record(settings: Settings, wave: WaveRef, selection, as_of) -> tuple[int, int]:
    treated, held_out = stages.record(settings, wave, selection, as_of, snapshot_in_background=True)
    get_run_logger().info("ledger: %d treated and %d held-out contacts recorded", treated, held_out)
    return treated, held_out


def send(settings: Settings, prepared: stages.PreparedWave, wave: WaveRef) -> int:
    """Every pending contact of the wave, one task per chunk (see ``orchestrator.delivery.sending``)."""
    sent = stages.send_pending(settings, prepared, wave, mapper=prefect_mapper)
    get_run_logger().info("sent %d messages and tasks", sent)
    return sent


def _approve_and_send(
    settings: Settings,
    p: stages.PreparedWave,
    w: WaveRef,
    summary: stages.WaveSummary,
    wait_for_approval: bool | None,
    approval_timeout: int,
) -> stages.WaveIncomplete | None:
    """Send the wave's pending contacts unless it waits for approval; audited (wave-start, wave-finish)."""
    engine = connect(settings)
    actor = audit.current_actor()
    audit.record_now(
        engine,
        actor=actor,
        action="wave-start",
        campaign=p.spec.name,
        subject=f"wave {w.key}",
        counts={},
        details={"wave": w.key, "rules_sha256": p.spec.sha256, "resumed": int(summary.already_recorded)},
    )
    if approval.needs_approval(p):
        gate = approval_gate(settings, p, w)
        if not gate.approved and _pause_here(wait_for_approval):
            gate = wait_for_approval_input(settings, p, w, gate, approval_timeout)
        summary.approval = gate.message
        if not gate.approved:  # recorded, nothing sent: the summary says why and how to approve
            stages.finish_summary(settings, summary)
            _artifact(summary)
            return None
    failure = None
    try:
        summary.sent_now = send(settings, p, w)
    except stages.WaveIncomplete as exc:
        failure = exc
        summary.error = str(exc)
    finally:
        stages.finish_summary(settings, summary)
        _artifact(summary)
        audit.record_now(
            engine,
            actor=actor,
            action="wave-finish",
            campaign=p.spec.name,
            subject=f"wave {w.key}",
            counts={"sent_this_run": summary.sent_now, **summary.counts},
            details={"wave": w.key, "status": summary.status or "", "rules_sha256": p.spec.sha256},
        )
    return failure


def _artifact(summary: stages.WaveSummary) -> None:
    rows = []
    for k, v in summary.as_dict().items():
        if isinstance(v, dict):  # channels, lost_to, by_channel: one row per entry
            rows += [{"measure": f"{k}: {name}", "value": str(n)} for name, n in sorted(v.items())]
        elif v is not None and not isinstance(v, list):
            rows.append({"measure": k, "value": v})
    key = f"wave-{summary.campaign}".lower().replace("_", "-")[:100]
    create_table_artifact(rows, key=key, description=f"Campaign {summary.campaign}, wave {summary.wave_key}")


@flow(name="campaign_wave", log_prints=False, validate_parameters=True, task_runner=task_runner(ExecutionSettings()))
def campaign_wave(
    rules_path: str,
    wave_key: str | None = None,
    dry_run: bool = False,
    wait_for_approval: bool | None = None,
    approval_timeout: int = APPROVAL_TIMEOUT,
) -> dict:
    """Run one wave of the campaign in ``rules_path``: select, plan, render, record, (approve,) send.

    With ``approval: required`` in the rules file and ``wait_for_approval`` (None: when started from a
    deployment by hand, not by its schedule) the run pauses for an approval form in the Prefect UI."""
    return run_cycle(get_settings(), [rules_path], wave_key, dry_run, wait_for_approval, approval_timeout)[0]


@flow(name="campaign_cycle", log_prints=False, validate_parameters=True, task_runner=task_runner(ExecutionSettings()))
def campaign_cycle(
    rules_paths: list[str],
    wave_key: str | None = None,
    dry_run: bool = False,
    wait_for_approval: bool | None = None,
    approval_timeout: int = APPROVAL_TIMEOUT,
) -> list[dict]:
    """Run several campaigns as one cycle: each customer goes to at most one of them, channel capacity is shared."""
    return run_cycle(get_settings(), rules_paths, wave_key, dry_run, wait_for_approval, approval_timeout)


def run_cycle(
    settings: Settings,
    rules_paths: list[str],
    wave_key: str | None,
    dry_run: bool,
    wait_for_approval: bool | None = None,
    approval_timeout: int = APPROVAL_TIMEOUT,
) -> list[dict]:
    """The stages of a cycle as tasks (inside a flow). Every file is validated before anything is recorded."""
    flow_started()
    prepared = [load(settings, path, wave_key) for path in rules_paths]
    if len({p.spec.name for p in prepared}) < len(prepared):
        raise ValueError("a campaign is listed twice in the cycle")
    wave_key = prepared[0].wave_key
    summaries = [stages.WaveSummary(campaign=p.spec.name, wave_key=wave_key, dry_run=dry_run) for p in prepared]
    if dry_run:
        candidates = [select_and_score(settings, p, True) for p in prepared]
        plans = plan(settings, prepared, candidates, True)
        for p, cycle_plan, summary in zip(prepared, plans, summaries, strict=True):
            summary.count_plan(cycle_plan)
            summary.render = render_all(settings, p, cycle_plan)
            _artifact(summary)
        return [s.as_dict() for s in summaries]
    waves = [open_wave(settings, p) for p in prepared]
    fresh = [i for i, w in enumerate(waves) if w.status == WaveStatus.SELECTING]
    logger = get_run_logger()
    for i, (p, w) in enumerate(zip(prepared, waves, strict=True)):
        summaries[i].wave_id = w.id
        if i not in fresh:
            summaries[i].already_recorded = True
            logger.info(
                "wave %s of %s was recorded before (%s): sending what is still pending", w.key, p.spec.name, w.status
            )
            if w.rules_sha256 != p.spec.sha256:
                logger.warning(
                    "the rules file of %s changed since wave %s was recorded; its recorded contacts are kept",
                    p.spec.name,
                    w.key,
                )
    if fresh:
        candidates = [select_and_score(settings, prepared[i], False) for i in fresh]
        plans = plan(settings, [prepared[i] for i in fresh], candidates, False)
        for i, cycle_plan in zip(fresh, plans, strict=True):
            summaries[i].render = render_sample(settings, prepared[i], cycle_plan)
            summaries[i].count_plan(cycle_plan)
        problems = [problem for i in fresh for problem in summaries[i].render.problems]
        if any(summaries[i].render.errors for i in fresh):
            raise stages.ValidationFailed(problems)
        for i, cycle_plan in zip(fresh, plans, strict=True):
            record(settings, waves[i], cycle_plan, prepared[i].as_of)
    failures: list[BaseException] = []
    for p, w, summary in zip(prepared, waves, summaries, strict=True):
        failure = _approve_and_send(settings, p, w, summary, wait_for_approval, approval_timeout)
        if failure is not None:  # the other campaigns still send; the cycle reports it at the end
            failures.append(failure)
    if failures:
        raise failures[0] if len(failures) == 1 else stages.WaveIncomplete("; ".join(str(f) for f in failures))
    return [s.as_dict() for s in summaries]
