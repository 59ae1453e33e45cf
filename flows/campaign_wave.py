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

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.chunk_runner import prefect_mapper, task_runner
from flows.run import flow_started
from orchestrator.db.tables import WaveStatus
from orchestrator.ledger.contacts import WaveRef
from orchestrator.settings import ExecutionSettings, Settings, get_settings
from orchestrator.wave import stages


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
def campaign_wave(rules_path: str, wave_key: str | None = None, dry_run: bool = False) -> dict:
    """Run one wave of the campaign in ``rules_path``: select, plan, render, record, send."""
    return run_cycle(get_settings(), [rules_path], wave_key, dry_run)[0]


@flow(name="campaign_cycle", log_prints=False, validate_parameters=True, task_runner=task_runner(ExecutionSettings()))
def campaign_cycle(rules_paths: list[str], wave_key: str | None = None, dry_run: bool = False) -> list[dict]:
    """Run several campaigns as one cycle: each customer goes to at most one of them, channel capacity is shared."""
    return run_cycle(get_settings(), rules_paths, wave_key, dry_run)


def _select_and_record(
    settings: Settings, prepared: list[stages.PreparedWave], waves: list[WaveRef], fresh: list[int], summaries: list
) -> None:
    candidates = [select_and_score(settings, p, False) for p in prepared]
    plans = plan(settings, prepared, candidates, False)
    for i, cycle_plan, p in zip(fresh, plans, prepared, strict=True):
        summaries[i].render = render_sample(settings, p, cycle_plan)
        summaries[i].count_plan(cycle_plan)
    problems = [problem for i in fresh for problem in summaries[i].render.problems]
    if any(summaries[i].render.errors for i in fresh):
        raise stages.ValidationFailed(problems)
    for wave, cycle_plan, p in zip(waves, plans, prepared, strict=True):
        record(settings, wave, cycle_plan, p.as_of)


def run_cycle(settings: Settings, rules_paths: list[str], wave_key: str | None, dry_run: bool) -> list[dict]:
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
    fresh = [i for i, w in enumerate(waves) if w.status in (WaveStatus.SELECTING, WaveStatus.FAILED)]
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
        try:
            _select_and_record(settings, [prepared[i] for i in fresh], [waves[i] for i in fresh], fresh, summaries)
        except BaseException as exc:
            failure = stages.unrecorded_failure(settings, [prepared[i] for i in fresh], [waves[i] for i in fresh], exc)
            if failure is exc:
                raise
            raise failure from exc
    failures: list[BaseException] = []
    for p, w, summary in zip(prepared, waves, summaries, strict=True):
        try:
            summary.sent_now = send(settings, p, w)
        except stages.WaveIncomplete as exc:  # the other campaigns still send; the cycle reports it at the end
            failures.append(exc)
            summary.error = str(exc)
        finally:
            stages.finish_summary(settings, summary)
            _artifact(summary)
    if failures:
        raise failures[0] if len(failures) == 1 else stages.WaveIncomplete("; ".join(str(f) for f in failures))
    return [s.as_dict() for s in summaries]
