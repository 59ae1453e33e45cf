"""Prefect flows ``campaign_wave`` and ``campaign_cycle``: one task per stage or per chunk, never per customer.

The logic lives in ``orchestrator.wave.stages``; this module only wires the stages into Prefect
tasks (so they show in the Prefect UI with their timing), adds retries where a retry is
safe, logs counts (never personal data) and attaches artifacts to the flow run.
Scoring, full rendering (dry runs) and sending run as chunk tasks (``flows.chunk_runner``)
on the flow's task runner: threads in this process, or a Dask cluster
(``CAMPAIGN_EXECUTION_TASK_RUNNER=dask``, or ``campaign run --task-runner dask``).
The flow reads its ``Settings`` once, at its start (``get_settings()``: the object an
in-process caller gave with ``flows.run.run_cycle(settings, ...)``, else the ``CAMPAIGN_*``
environment of the process), and passes it to every task as an argument. Settings are never
flow parameters (those are stored in the Prefect API and shown in the UI), so no secret reaches
the API.

What people see in the Prefect UI:

* run names: ``winback-email 2026-12-11`` (``... 2026-12-11, dry run``; a cycle joins its
  campaigns with `` + ``), task runs ``load winback-email``, ``select winback-email``,
  ``plan winback-email``, ``record winback-email``, chunk tasks ``send email 3/10`` (``flows.chunk_runner``);
* tags ``campaign:<name>`` for each campaign and ``dry-run``, added to the run if its creator
  did not give them (a deployment run with ``dry_run`` true);
* every log line starts with the campaign's name (``campaign_logger``);
* artifacts per campaign (``orchestrator.wave.artifacts``): ``wave-<campaign>`` (the counts),
  ``funnel-<campaign>`` (the selection funnel), ``channels-<campaign>`` (the send summary per
  channel), ``result-<campaign>`` (markdown: the headline and where the success report is), and
  ``send-<campaign>``, a progress artifact updated while the chunks of a channel are sent.
  A dry run writes the same under ``dry-run-<kind>-<campaign>``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger, pause_flow_run, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.input import RunInput
from prefect.states import Cancelled
from pydantic import Field

from flows.chunk_runner import prefect_mapper, progress_mapper, task_runner
from flows.run import DRY_RUN_TAG, SendPlan, campaign_tag, confirm_send, flow_started
from orchestrator.db import audit
from orchestrator.db.engine import connect
from orchestrator.db.tables import WaveStatus
from orchestrator.ledger.approvals import ApprovalError
from orchestrator.ledger.contacts import WaveRef
from orchestrator.settings import ExecutionSettings, Settings, get_settings
from orchestrator.wave import approval, artifacts, stages


class CampaignLogger(logging.LoggerAdapter):
    """The run logger with the campaign's name in front of every message and in ``extra["campaign"]``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return f"{(self.extra or {})['campaign']}: {msg}", kwargs


def campaign_logger(campaign: str) -> CampaignLogger:
    return CampaignLogger(get_run_logger(), {"campaign": campaign})


def campaign_name(rules_path: str) -> str:
    """The ``name:`` of a rules file, read without validating it (the file's stem when it has none)."""
    try:
        with open(rules_path, encoding="utf-8") as f:
            data = yaml.safe_load(f.read(1_000_000))
        name = data.get("name") if isinstance(data, dict) else None
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        name = None
    return str(name) if name else Path(rules_path).stem


def run_name(campaigns: list[str], wave_key: str | None, dry_run: bool) -> str:
    """``winback-email 2026-12-11``; ``a + b 2026-12-11, dry run``."""
    return f"{' + '.join(campaigns)} {wave_key or date.today().isoformat()}" + (", dry run" if dry_run else "")


def _flow_run_name() -> str:
    """The name of a ``campaign_wave``/``campaign_cycle`` run, from its parameters (Prefect calls this as it starts)."""
    context = FlowRunContext.get()
    parameters = dict(context.parameters or {}) if context is not None else {}
    paths = parameters.get("rules_paths") or [parameters.get("rules_path") or "?"]
    return run_name([campaign_name(str(p)) for p in paths], parameters.get("wave_key"), bool(parameters.get("dry_run")))


def _tag_run(campaigns: list[str], dry_run: bool) -> None:
    """Add the run's ``campaign:<name>`` (and ``dry-run``) tags where its creator did not (deployment runs)."""
    from prefect.client.orchestration import get_client

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    wanted = [campaign_tag(n) for n in campaigns] + ([DRY_RUN_TAG] if dry_run else [])
    have = list(context.flow_run.tags or [])
    missing = [t for t in wanted if t not in have]
    if missing:
        with get_client(sync_client=True) as client:
            client.update_flow_run(context.flow_run.id, tags=[*have, *missing])
        context.flow_run.tags = [*have, *missing]


def _named(fn, name: str):
    """The task ``fn`` with the run name ``name`` (a callable, so Prefect does not ``format()`` it)."""
    return fn.with_options(task_run_name=lambda: name)


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


class SendConfirmInput(RunInput):
    """The form the Prefect UI shows on a wave started by hand from a deployment, before anything is recorded."""

    send: bool = Field(False, description="Send these contacts now. Unticked: cancel; nothing is recorded or sent.")
    confirmed_by: str = Field(
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
    campaign_logger(prepared.spec.name).info(
        "%s customers pass the rules and the contact policy (%s held out as global control)",
        f"{len(candidates.ids):,}",
        f"{len(candidates.global_control):,}",
    )
    return candidates


def select_and_score(settings: Settings, prepared: stages.PreparedWave, with_funnel: bool) -> stages.Candidates:
    """The SQL selection as one task, then the scores as one task per chunk."""
    name = prepared.spec.name
    candidates = _named(select, f"select {name}")(settings, prepared, with_funnel)
    if prepared.spec.scores is None:
        return candidates
    candidates = stages.score_candidates(settings, prepared, candidates, mapper=prefect_mapper)
    campaign_logger(name).info("%s customers kept by their scores", f"{len(candidates.ids):,}")
    return candidates


@task(name="plan", cache_policy=NO_CACHE)
def plan(
    settings: Settings, prepared: list[stages.PreparedWave], candidates: list[stages.Candidates], with_funnel: bool
) -> list:
    plans = stages.plan(settings, prepared, candidates, with_funnel=with_funnel)
    for p in plans:
        lost = ", ".join(f"{n:,} to {w}" for w, n in p.lost_to.items()) or "none"
        channels = ", ".join(f"{artifacts.channel_label(c)} {n:,}" for c, n in p.channel_counts.items()) or "none"
        campaign_logger(p.spec.name).info(
            "treated per channel: %s; lost %s; waiting for capacity %s", channels, lost, f"{p.waiting:,}"
        )
    return plans


@task(name="render-sample", cache_policy=NO_CACHE)
def render_sample(settings: Settings, prepared: stages.PreparedWave, selection) -> stages.RenderCheck:
    check = stages.render_selection(settings, prepared, selection, sample=stages.RENDER_SAMPLE)
    campaign_logger(prepared.spec.name).info(
        "rendered %s sample messages, %s render errors", f"{check.rendered:,}", f"{check.errors:,}"
    )
    return check


def render_all(settings: Settings, prepared: stages.PreparedWave, selection) -> stages.RenderCheck:
    """Every treated message, one task per chunk (dry runs)."""
    check = stages.render_selection(settings, prepared, selection, sample=None, mapper=prefect_mapper)
    campaign_logger(prepared.spec.name).info(
        "rendered %s messages, %s render errors", f"{check.rendered:,}", f"{check.errors:,}"
    )
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


def _confirmed_in_ui(
    settings: Settings,
    prepared: list[stages.PreparedWave],
    plan: SendPlan,
    wait_for_approval: bool | None,
    timeout: int,
) -> bool:
    """A real wave started from a deployment by hand (the Prefect UI's Run, ``prefect deployment run``), not by
    its schedule, pauses before anything is recorded until someone answers the send form; True to go on.
    Campaigns that all need approval (``approval: required``) are asked by their approval form instead."""
    if not plan.contacts or not _pause_here(wait_for_approval):
        return True
    if all(approval.needs_approval(p) for p in prepared):
        return True
    names = " + ".join(plan.campaigns)
    answer = pause_flow_run(
        wait_for_input=SendConfirmInput.with_initial_data(
            description=f"{names}: {plan.question()} Nothing is recorded until you answer; unticked cancels the run."
        ),
        timeout=timeout,
        poll_interval=APPROVAL_POLL_SECONDS,
        key=f"confirm-send-{names}"[:100],
    )
    who = f"prefect-ui:{answer.confirmed_by.strip() or 'unnamed'}"
    audit.record_now(
        connect(settings),
        actor=who,
        action="send-confirmed" if answer.send else "send-declined",
        campaign=plan.campaigns[0],
        subject=f"{plan.contacts:,} contacts",
        counts={"contacts": plan.contacts},
        details={"campaigns": names[:200]},
    )
    return bool(answer.send)


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
def record(settings: Settings, wave: WaveRef, selection, as_of, campaign: str) -> tuple[int, int]:
    treated, held_out = stages.record(settings, wave, selection, as_of, snapshot_in_background=True)
    campaign_logger(campaign).info(
        "ledger: %s treated and %s held-out contacts recorded", f"{treated:,}", f"{held_out:,}"
    )
    return treated, held_out


def send(settings: Settings, prepared: stages.PreparedWave, wave: WaveRef) -> int:
    """Every pending contact of the wave, one task per chunk, with a progress artifact per channel."""
    name = prepared.spec.name
    mapper = progress_mapper(artifacts.artifact_key("send", name), f"{name}, wave {wave.key}")
    sent = stages.send_pending(settings, prepared, wave, mapper=mapper)
    campaign_logger(name).info("sent %s messages and tasks", f"{sent:,}")
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
            _artifacts(settings, summary)
            return None
    failure = None
    try:
        summary.sent_now = send(settings, p, w)
    except stages.WaveIncomplete as exc:
        failure = exc
        summary.error = str(exc)
    finally:
        stages.finish_summary(settings, summary)
        _artifacts(settings, summary)
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


def _artifacts(settings: Settings, summary: stages.WaveSummary) -> None:
    """The wave's artifacts (see the module docstring), from the summary."""
    data = summary.as_dict()
    name, dry = summary.campaign, summary.dry_run
    what = f"Campaign {name}, wave {summary.wave_key}" + (" (dry run)" if dry else "")
    create_table_artifact(
        artifacts.summary_rows(data), key=artifacts.artifact_key("wave", name, dry_run=dry), description=what
    )
    if data["funnel"]:
        create_table_artifact(
            artifacts.funnel_rows(data["funnel"]),
            key=artifacts.artifact_key("funnel", name, dry_run=dry),
            description=f"{what}: customers left after each filter",
        )
    if data["channels"] or data["by_channel"]:
        create_table_artifact(
            artifacts.channel_rows(data),
            key=artifacts.artifact_key("channels", name, dry_run=dry),
            description=f"{what}: per channel",
        )
    report = settings.paths.data_dir / "reports" / f"{name}.html"
    create_markdown_artifact(
        artifacts.wave_markdown(data, report if report.exists() else None),
        key=artifacts.artifact_key("result", name, dry_run=dry),
        description=what,
    )


def _send_plan(settings: Settings, prepared, plans_by_index: dict[int, Any], waves: list[WaveRef]) -> SendPlan:
    """Contacts per channel a real run is about to send: the plans of fresh waves, the pending of recorded ones."""
    channels: dict[str, int] = {}
    for i, (_p, w) in enumerate(zip(prepared, waves, strict=True)):
        counts = (
            dict(plans_by_index[i].channel_counts) if i in plans_by_index else stages.pending_by_channel(settings, w.id)
        )
        for channel, n in counts.items():
            channels[channel] = channels.get(channel, 0) + int(n)
    return SendPlan(tuple(p.spec.name for p in prepared), channels)


def _campaign_flow(name: str):
    """The flow decorator of ``campaign_wave`` and ``campaign_cycle``: named runs, validated parameters."""
    return flow(
        name=name,
        flow_run_name=_flow_run_name,
        log_prints=False,
        validate_parameters=True,
        task_runner=task_runner(ExecutionSettings()),
    )


@_campaign_flow("campaign_wave")
def campaign_wave(
    rules_path: str,
    wave_key: str | None = None,
    dry_run: bool = False,
    wait_for_approval: bool | None = None,
    approval_timeout: int = APPROVAL_TIMEOUT,
) -> dict | State:
    """Run one wave of the campaign in ``rules_path``: select, plan, render, record, (approve,) send.

    Args:
        rules_path: The campaign's rules file (YAML), an absolute path or one relative to where the flow runs.
        wave_key: Label of the wave, normally its date (YYYY-MM-DD); the rules and the contact policy are
            evaluated at it. Empty: today. Running a recorded wave again sends only what is still pending.
        dry_run: True: select and render every message, record and send nothing (a rehearsal).
        wait_for_approval: Pause for a form in the Prefect UI: the send form before anything is recorded, or
            with ``approval: required`` the approval form. Empty: when started from a deployment by hand.
        approval_timeout: Seconds a run paused for approval waits before it fails (the wave stays awaiting approval).
    """
    result = run_cycle(get_settings(), [rules_path], wave_key, dry_run, wait_for_approval, approval_timeout)
    return result if not isinstance(result, list) else result[0]


@_campaign_flow("campaign_cycle")
def campaign_cycle(
    rules_paths: list[str],
    wave_key: str | None = None,
    dry_run: bool = False,
    wait_for_approval: bool | None = None,
    approval_timeout: int = APPROVAL_TIMEOUT,
) -> list[dict] | State:
    """Run several campaigns as one cycle: each customer goes to at most one of them, channel capacity is shared.

    Args:
        rules_paths: The rules files (YAML) of the campaigns that run together, one wave each.
        wave_key: Label of the cycle's waves, normally their date (YYYY-MM-DD); the rules and the contact
            policy are evaluated at it. Empty: today. Running a recorded wave again sends only what is still pending.
        dry_run: True: select and render every message, record and send nothing (a rehearsal).
        wait_for_approval: Pause for a form in the Prefect UI: the send form before anything is recorded, or
            with ``approval: required`` the approval form. Empty: when started from a deployment by hand.
        approval_timeout: Seconds a run paused for approval waits before it fails (the wave stays awaiting approval).
    """
    return run_cycle(get_settings(), rules_paths, wave_key, dry_run, wait_for_approval, approval_timeout)


@contextmanager
def _failed_waves_marked(
    settings: Settings, prepared: list[stages.PreparedWave], waves: list[WaveRef], indices: list[int]
) -> Iterator[None]:
    """Selecting, planning or recording fresh waves: on a failure the waves without a ledger are marked
    ``failed`` and the error names them and the command that runs them again (``stages.unrecorded_failure``)."""
    try:
        yield
    except BaseException as exc:
        failure = stages.unrecorded_failure(settings, [prepared[i] for i in indices], [waves[i] for i in indices], exc)
        if failure is exc:
            raise
        raise failure from exc


def _plan_fresh(
    settings: Settings, prepared: list[stages.PreparedWave], fresh: list[int], summaries: list[stages.WaveSummary]
) -> dict[int, Any]:
    """Select, score, plan and render a sample of the fresh waves; their plans by index (nothing recorded)."""
    candidates = [select_and_score(settings, prepared[i], True) for i in fresh]
    plans = _named(plan, f"plan {' + '.join(prepared[i].spec.name for i in fresh)}")(
        settings, [prepared[i] for i in fresh], candidates, True
    )
    plans_by_index: dict[int, Any] = {}
    for i, cycle_plan in zip(fresh, plans, strict=True):
        plans_by_index[i] = cycle_plan
        summaries[i].render = _named(render_sample, f"render sample {prepared[i].spec.name}")(
            settings, prepared[i], cycle_plan
        )
        summaries[i].count_plan(cycle_plan)
    problems = [problem for i in fresh for problem in summaries[i].render.problems]
    if any(summaries[i].render.errors for i in fresh):
        raise stages.ValidationFailed(problems)
    return plans_by_index


def run_cycle(
    settings: Settings,
    rules_paths: list[str],
    wave_key: str | None,
    dry_run: bool,
    wait_for_approval: bool | None = None,
    approval_timeout: int = APPROVAL_TIMEOUT,
) -> Any:
    """The stages of a cycle as tasks (inside a flow). Every file is validated before anything is recorded.

    Returns the summaries, or a ``Cancelled`` state when the send was not confirmed (``flows.run``).
    """
    flow_started()
    _tag_run([campaign_name(p) for p in rules_paths], dry_run)
    prepared = [_named(load, f"load {campaign_name(path)}")(settings, path, wave_key) for path in rules_paths]
    if len({p.spec.name for p in prepared}) < len(prepared):
        raise ValueError("a campaign is listed twice in the cycle")
    wave_key = prepared[0].wave_key
    cycle = " + ".join(p.spec.name for p in prepared)
    summaries = [stages.WaveSummary(campaign=p.spec.name, wave_key=wave_key, dry_run=dry_run) for p in prepared]
    if dry_run:
        candidates = [select_and_score(settings, p, True) for p in prepared]
        plans = _named(plan, f"plan {cycle}")(settings, prepared, candidates, True)
        for p, cycle_plan, summary in zip(prepared, plans, summaries, strict=True):
            summary.count_plan(cycle_plan)
            summary.render = render_all(settings, p, cycle_plan)
            _artifacts(settings, summary)
        return [s.as_dict() for s in summaries]
    waves = [_named(open_wave, f"open wave {p.spec.name}")(settings, p) for p in prepared]
    fresh = [i for i, w in enumerate(waves) if w.status in (WaveStatus.SELECTING, WaveStatus.FAILED)]
    for i, (p, w) in enumerate(zip(prepared, waves, strict=True)):
        summaries[i].wave_id = w.id
        if i not in fresh:
            summaries[i].already_recorded = True
            logger = campaign_logger(p.spec.name)
            logger.info("wave %s was recorded before (%s): sending what is still pending", w.key, w.status)
            if w.rules_sha256 != p.spec.sha256:
                logger.warning(
                    "the rules file changed since wave %s was recorded; its recorded contacts are kept", w.key
                )
    plans_by_index: dict[int, Any] = {}
    if fresh:
        with _failed_waves_marked(settings, prepared, waves, fresh):
            plans_by_index = _plan_fresh(settings, prepared, fresh, summaries)
    send_plan = _send_plan(settings, prepared, plans_by_index, waves)
    if not confirm_send(send_plan) or not _confirmed_in_ui(
        settings, prepared, send_plan, wait_for_approval, approval_timeout
    ):
        message = f"not confirmed ({send_plan.question()} no): nothing was recorded or sent"
        get_run_logger().warning("%s: %s", cycle, message)
        return Cancelled(message=message)
    with _failed_waves_marked(settings, prepared, waves, list(plans_by_index)):
        for i, cycle_plan in plans_by_index.items():
            name = prepared[i].spec.name
            _named(record, f"record {name}")(settings, waves[i], cycle_plan, prepared[i].as_of, name)
    failures: list[BaseException] = []
    for p, w, summary in zip(prepared, waves, summaries, strict=True):
        incomplete = _approve_and_send(settings, p, w, summary, wait_for_approval, approval_timeout)
        if incomplete is not None:  # the other campaigns still send; the cycle reports it at the end
            failures.append(incomplete)
    _schedule_follow_up(summaries)
    if failures:
        raise failures[0] if len(failures) == 1 else stages.WaveIncomplete("; ".join(str(f) for f in failures))
    return [s.as_dict() for s in summaries]


def _schedule_follow_up(summaries: list[stages.WaveSummary]) -> None:
    """Contacts waiting for their send window in a run of a deployment: a run of the same deployment and
    wave is scheduled at the earliest next slot (no form to answer: the wave was confirmed), so they are
    sent without anyone starting it. Runs without a deployment (the CLI) say when to run the wave again."""
    slots = [s.next_slot for s in summaries if s.status == WaveStatus.WAITING and s.next_slot]
    context = FlowRunContext.get()
    run = None if context is None else context.flow_run
    if not slots or run is None or run.deployment_id is None:
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    when = min(datetime.fromisoformat(slot) for slot in slots)
    parameters = {**(run.parameters or {}), "wave_key": summaries[0].wave_key, "wait_for_approval": False}
    with get_client(sync_client=True) as client:
        follow_up = client.create_flow_run_from_deployment(
            run.deployment_id, parameters=parameters, state=Scheduled(scheduled_time=when), tags=list(run.tags or [])
        )
    for summary in summaries:
        if summary.status == WaveStatus.WAITING:
            summary.follow_up = f"{follow_up.name} at {when.isoformat()}"
            campaign_logger(summary.campaign).info(
                "%s contacts wait for their send window: a run of this deployment is scheduled at %s",
                f"{summary.window_waiting:,}",
                when.isoformat(),
            )
