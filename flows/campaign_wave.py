"""Prefect flow ``campaign_wave``: one task per stage, never per customer.

The logic lives in ``orchestrator.wave``; this module only wires the stages into Prefect
tasks (so they show in the Prefect UI with their timing), adds retries where a retry is
safe, logs counts (never personal data) and attaches a summary artifact to the flow run.
Settings come from the environment (``CAMPAIGN_*``), never from flow parameters, so no
secret reaches the Prefect API.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
def select(prepared: stages.PreparedWave) -> list[str]:
    ids = stages.select_audience(get_settings(), prepared)
    get_run_logger().info("audience: %d customers", len(ids))
    return ids


@task(name="split", cache_policy=NO_CACHE)
def split(prepared: stages.PreparedWave, customer_ids: list[str]) -> np.ndarray:
    mask = stages.split_control(prepared, customer_ids)
    get_run_logger().info("control group: %d of %d", int(mask.sum()), len(customer_ids))
    return mask


@task(name="render", cache_policy=NO_CACHE)
def render(prepared: stages.PreparedWave, full: bool) -> stages.RenderCheck:
    check = stages.render_check(get_settings(), prepared, sample=None if full else stages.RENDER_SAMPLE)
    get_run_logger().info("rendered %d messages, %d render errors", check.rendered, check.errors)
    return check


@task(name="record", cache_policy=NO_CACHE)
def record(wave: WaveRef, customer_ids: list[str], mask: np.ndarray) -> tuple[int, int]:
    treated, control = stages.record(get_settings(), wave, customer_ids, mask)
    get_run_logger().info("ledger: %d treated and %d control contacts recorded", treated, control)
    return treated, control


@task(name="send", cache_policy=NO_CACHE)
def send(prepared: stages.PreparedWave, wave: WaveRef) -> int:
    sent = stages.send_pending(get_settings(), prepared, wave)
    get_run_logger().info("sent %d messages", sent)
    return sent


def _artifact(summary: stages.WaveSummary) -> None:
    rows = [{"measure": k, "value": v} for k, v in summary.as_dict().items() if v is not None]
    key = f"wave-{summary.campaign}".lower().replace("_", "-")[:100]
    create_table_artifact(rows, key=key, description=f"Campaign {summary.campaign}, wave {summary.wave_key}")


@flow(name="campaign_wave", log_prints=False, validate_parameters=True)
def campaign_wave(rules_path: str, wave_key: str | None = None, dry_run: bool = False) -> dict:
    """Run one wave of the campaign in ``rules_path``: select, split, render, record, send."""
    prepared = load(rules_path, wave_key)
    summary = stages.WaveSummary(campaign=prepared.spec.name, wave_key=prepared.wave_key, dry_run=dry_run)
    if dry_run:
        ids = select(prepared)
        mask = split(prepared, ids)
        summary.selected, summary.control = len(ids), int(mask.sum())
        summary.treated = summary.selected - summary.control
        summary.render = render(prepared, full=True)
        _artifact(summary)
        return summary.as_dict()
    wave = open_wave(prepared)
    summary.wave_id = wave.id
    if wave.status == WaveStatus.SELECTING:
        ids = select(prepared)
        mask = split(prepared, ids)
        summary.render = render(prepared, full=False)
        if summary.render.errors:
            raise stages.ValidationFailed(summary.render.problems)
        record(wave, ids, mask)
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
