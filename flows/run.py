"""Run campaigns as Prefect flows from plain code (the CLI, the demo, tests).

``run_cycle(rules_files, wave=, dry_run=)`` runs one rules file as the ``campaign_wave``
flow or several as ``campaign_cycle`` on the task runner the execution settings choose, and
returns the summaries or raises the stage's exception.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.settings import get_settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

__all__ = ["run_campaign", "run_cycle"]


def run_campaign(rules_file: Path, *, wave: str | None, dry_run: bool) -> dict:
    """Run the ``campaign_wave`` flow; returns its summary or raises the stage's exception."""
    return run_cycle([rules_file], wave=wave, dry_run=dry_run)[0]


def run_cycle(rules_files: list[Path], *, wave: str | None, dry_run: bool) -> list[dict]:
    """Run one campaign as ``campaign_wave`` or several as the ``campaign_cycle`` flow; returns the summaries.

    The flow runs its chunk tasks on the task runner of the execution settings (``CAMPAIGN_EXECUTION_*``).
    """
    from flows.campaign_wave import campaign_cycle, campaign_wave
    from flows.chunk_runner import task_runner

    runner = task_runner(get_settings().execution)
    state: State[Any]
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
