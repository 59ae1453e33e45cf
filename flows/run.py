"""Run campaigns as Prefect flows from plain code (the CLI, the demo, tests).

``run_cycle(settings, rules_files, wave=, dry_run=)`` runs one rules file as the ``campaign_wave``
flow or several as ``campaign_cycle`` with ``settings``, on the task runner of
``settings.execution``, and returns the summaries or raises the stage's exception. The flow
gets the object through ``use_settings`` (a context variable its ``get_settings()`` honours),
never as a flow parameter, so no secret is stored in the Prefect API. ``retrain_model`` and
``success_report`` are called the same way inside ``with use_settings(settings):``.
Other processes (deployments served by ``campaign serve``, Dask workers) read their own
``CAMPAIGN_*`` environment; chunks get the flow's ``Settings`` as their first argument.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.settings import Settings, use_settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

__all__ = ["flow_started", "run_campaign", "run_cycle"]

_on_started: ContextVar[Callable[[], None] | None] = ContextVar("campaign_flow_started", default=None)


def flow_started() -> None:
    """Called by the wave flows as their body starts: reports how long Prefect took to get there."""
    callback = _on_started.get()
    if callback is not None:
        callback()


def run_campaign(settings: Settings, rules_file: Path, *, wave: str | None, dry_run: bool) -> dict:
    """Run the ``campaign_wave`` flow; returns its summary or raises the stage's exception."""
    return run_cycle(settings, [rules_file], wave=wave, dry_run=dry_run)[0]


def run_cycle(
    settings: Settings,
    rules_files: list[Path],
    *,
    wave: str | None,
    dry_run: bool,
    on_started: Callable[[float], None] | None = None,
) -> list[dict]:
    """Run one campaign as ``campaign_wave`` or several as the ``campaign_cycle`` flow; returns the summaries.

    The flow runs with ``settings`` and its chunk tasks on the task runner of ``settings.execution``.
    Prefect's API is the configured one or its temporary server, started first with the engine's
    timeout (``flows.prefect_api``; raises ``PrefectUnavailable`` if it does not answer).
    ``on_started(seconds)`` is called when the flow's body starts, with the seconds Prefect took to
    get there from this call (importing it and the flows, starting its API, creating the flow run).
    """
    from flows.prefect_api import ensure_prefect_api

    started = time.perf_counter()
    ensure_prefect_api(settings)
    token = _on_started.set(None if on_started is None else lambda: on_started(time.perf_counter() - started))
    try:
        return _run_cycle(settings, rules_files, wave=wave, dry_run=dry_run)
    finally:
        _on_started.reset(token)


def _run_cycle(settings: Settings, rules_files: list[Path], *, wave: str | None, dry_run: bool) -> list[dict]:
    from flows.campaign_wave import campaign_cycle, campaign_wave
    from flows.chunk_runner import task_runner

    runner = task_runner(settings.execution)
    state: State[Any]
    with use_settings(settings):
        if len(rules_files) == 1:
            wave_flow = campaign_wave.with_options(task_runner=runner)
            state = wave_flow(str(rules_files[0]), wave_key=wave, dry_run=dry_run, return_state=True)
        else:
            cycle_flow = campaign_cycle.with_options(task_runner=runner)
            state = cycle_flow([str(f) for f in rules_files], wave_key=wave, dry_run=dry_run, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result if isinstance(result, list) else [result]
