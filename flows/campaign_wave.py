"""Prefect flow ``campaign_wave``: one task per stage, never per customer.

The logic lives in ``orchestrator.wave``; this module only wires the stages into Prefect
tasks (so they show in the Prefect UI with their timing), adds retries where a retry is
safe, logs counts (never personal data) and attaches a summary artifact to the flow run.
Settings come from the environment (``CAMPAIGN_*``), never from flow parameters, so no
secret reaches the Prefect API.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from orchestrator import wave as stages
from orchestrator.ledger import WaveRef
from orchestrator.models import WaveStatus
from orchestrator.settings import get_settings


@task(name="load", cache_policy=NO_CACHE)
def load(rules_path: str, wave_key: str | None) -> stages.PreparedWave:
    return stages.prepare(get_settings(), Path(rules_path), wave_key)


@task(name="open-wave", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def open_wave(prepared: stages.PreparedWave) -> WaveRef:
    return stages.open_wave(get_settings(), prepared)


@task(name="select", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def select(prepared: stages.PreparedWave, with_funnel: bool) -> stages.Candidates:
    candidates = stages.select_candidates(get_settings(), prepared, with_funnel=with_funnel)
    get_run_logger().info(
        "selected %d customers (%d held out as global control)", len(candidates.ids), len(candidates.global_control)
    )
    return candidates


@task(name="split", cache_policy=NO_CACHE)
def split(prepared: stages.PreparedWave, candidates: stages.Candidates, with_funnel: bool) -> stages.Selection:
    selection = stages.split_wave(prepared, candidates, with_funnel=with_funnel)
    get_run_logger().info("control group: %d of %d", selection.count("control"), len(candidates.ids))
    return selection


@task(name="render", cache_policy=NO_CACHE)
def render(prepared: stages.PreparedWave, selection: stages.Selection, full: bool) -> stages.RenderCheck:
    check = stages.render_selection(get_settings(), prepared, selection, sample=None if full else stages.RENDER_SAMPLE)
    get_run_logger().info("rendered %d messages, %d render errors", check.rendered, check.errors)
    return check


@task(name="record", cache_policy=NO_CACHE)
def record(wave: WaveRef, selection: stages.Selection) -> tuple[int, int]:
    treated, held_out = stages.record(get_settings(), wave, selection)
    get_run_logger().info("ledger: %d treated and %d held-out contacts recorded", treated, held_out)
    return treated, held_out


@task(name="send", cache_policy=NO_CACHE)
def send(prepared: stages.PreparedWave, wave: WaveRef) -> int:
    sent = stages.send_pending(get_settings(), prepared, wave)
    get_run_logger().info("sent %d messages", sent)
    return sent


def _artifact(summary: stages.WaveSummary) -> None:
    rows = [{"measure": k, "value": v} for k, v in summary.as_dict().items() if v is not None and not isinstance(v, list)]
    key = f"wave-{summary.campaign}".lower().replace("_", "-")[:100]
    create_table_artifact(rows, key=key, description=f"Campaign {summary.campaign}, wave {summary.wave_key}")


@flow(name="campaign_wave", log_prints=False, validate_parameters=True)
def campaign_wave(rules_path: str, wave_key: str | None = None, dry_run: bool = False) -> dict:
    """Run one wave of the campaign in ``rules_path``: select, split, render, record, send."""
    prepared = load(rules_path, wave_key)
    summary = stages.WaveSummary(campaign=prepared.spec.name, wave_key=prepared.wave_key, dry_run=dry_run)
    if dry_run:
        selection = split(prepared, select(prepared, True), True)
        summary.count_selection(selection)
        summary.render = render(prepared, selection, full=True)
        _artifact(summary)
        return summary.as_dict()
    wave = open_wave(prepared)
    summary.wave_id = wave.id
    if wave.status == WaveStatus.SELECTING:
        selection = split(prepared, select(prepared, False), False)
        summary.render = render(prepared, selection, full=False)
        if summary.render.errors:
            raise stages.ValidationFailed(summary.render.problems)
        record(wave, selection)
    else:
        summary.already_recorded = True
        logger = get_run_logger()
        logger.info("wave %s was recorded before (%s): sending what is still pending", wave.key, wave.status)
        if wave.rules_sha256 != prepared.spec.sha256:
            logger.warning("the rules file changed since wave %s was recorded; its recorded contacts are kept", wave.key)
    try:
        summary.sent_now = send(prepared, wave)
    finally:
        stages.finish_summary(get_settings(), summary)
        _artifact(summary)
    return summary.as_dict()
