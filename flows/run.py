"""Run campaigns as Prefect flows from plain code (the CLI, the demo, tests).

``run_cycle(settings, rules_files, wave=, dry_run=)`` runs one rules file as the ``campaign_wave``
flow or several as ``campaign_cycle`` with ``settings``, on the task runner of
``settings.execution``, and returns the summaries or raises the stage's exception. The flow
gets the object through ``use_settings`` (a context variable its ``get_settings()`` honours),
never as a flow parameter, so no secret is stored in the Prefect API. ``retrain_model`` and
``success_report`` are called the same way inside ``with use_settings(settings):``.
Other processes (deployments served by ``campaign serve``, Dask workers) read their own
``CAMPAIGN_*`` environment; chunks get the flow's ``Settings`` as their first argument.

Every run is tagged ``campaign:<name>`` for each of its campaigns and ``dry-run`` when it is
one (``run_tags``): here with Prefect's ``tags`` context, so the flow run and all its task runs
carry them from their creation; the flows add any missing tag to their own run, so runs of
deployments carry them too.

``confirm(plan)``: a real send started by hand asks first. The flow calls it after selecting,
planning and checking the rendering, before anything is recorded, with the ``SendPlan`` (contacts
and channels); when it returns false, nothing is recorded or sent, the flow run ends
``Cancelled`` and ``run_cycle`` raises ``SendDeclined``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.settings import Settings, use_settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

__all__ = [
    "DRY_RUN_TAG",
    "SendDeclined",
    "SendPlan",
    "campaign_tag",
    "confirm_send",
    "flow_started",
    "run_campaign",
    "run_cycle",
    "run_tags",
]

DRY_RUN_TAG = "dry-run"

_on_started: ContextVar[Callable[[], None] | None] = ContextVar("campaign_flow_started", default=None)
_confirm: ContextVar[Callable[[SendPlan], bool] | None] = ContextVar("campaign_confirm_send", default=None)
_declined: ContextVar[list[SendPlan] | None] = ContextVar("campaign_send_declined", default=None)


@dataclass(frozen=True)
class SendPlan:
    """What a real run is about to send: contacts per channel, over all campaigns of the cycle."""

    campaigns: tuple[str, ...]
    channels: dict[str, int] = field(default_factory=dict)

    @property
    def contacts(self) -> int:
        return sum(self.channels.values())

    def question(self) -> str:
        """``send 12,400 contacts through 3 channels?``"""
        used = [c for c, n in self.channels.items() if n]
        contacts = f"{self.contacts:,} contact{'' if self.contacts == 1 else 's'}"
        return f"send {contacts} through {len(used)} channel{'' if len(used) == 1 else 's'}?"


class SendDeclined(Exception):
    """A real send was not confirmed: nothing was recorded or sent."""


def campaign_tag(name: str) -> str:
    return f"campaign:{name}"


def run_tags(campaigns: list[str], dry_run: bool) -> list[str]:
    """The tags of a run of ``campaigns``: ``campaign:<name>`` each, and ``dry-run`` for a dry run."""
    return [campaign_tag(n) for n in campaigns] + ([DRY_RUN_TAG] if dry_run else [])


def flow_started() -> None:
    """Called by the wave flows as their body starts: reports how long Prefect took to get there."""
    callback = _on_started.get()
    if callback is not None:
        callback()


def confirm_send(plan: SendPlan) -> bool:
    """Called by the wave flows before recording a real wave: whether to go on (true without a ``confirm``)."""
    callback = _confirm.get()
    if callback is None or not plan.contacts or callback(plan):
        return True
    declined = _declined.get()
    if declined is not None:
        declined.append(plan)
    return False


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
    confirm: Callable[[SendPlan], bool] | None = None,
    wait_for_approval: bool | None = None,
    approval_timeout: int | None = None,
) -> list[dict]:
    """Run one campaign as ``campaign_wave`` or several as the ``campaign_cycle`` flow; returns the summaries.

    The flow runs with ``settings`` and its chunk tasks on the task runner of ``settings.execution``.
    Prefect's API is the configured one or its temporary server, started first with the engine's
    timeout (``flows.prefect_api``; raises ``PrefectUnavailable`` if it does not answer).
    ``on_started(seconds)`` is called when the flow's body starts, with the seconds Prefect took to
    get there from this call (importing it and the flows, starting its API, creating the flow run).
    ``confirm(plan)`` is asked before a real wave is recorded (see the module docstring).
    """
    from flows.prefect_api import ensure_prefect_api

    started = time.perf_counter()
    ensure_prefect_api(settings)
    token = _on_started.set(None if on_started is None else lambda: on_started(time.perf_counter() - started))
    asked = _confirm.set(confirm)
    declined = _declined.set([])
    try:
        return _run_cycle(
            settings,
            rules_files,
            wave=wave,
            dry_run=dry_run,
            wait_for_approval=wait_for_approval,
            approval_timeout=approval_timeout,
        )
    finally:
        _declined.reset(declined)
        _confirm.reset(asked)
        _on_started.reset(token)


def _run_cycle(
    settings: Settings,
    rules_files: list[Path],
    *,
    wave: str | None,
    dry_run: bool,
    wait_for_approval: bool | None = None,
    approval_timeout: int | None = None,
) -> list[dict]:
    from prefect import tags

    from flows.campaign_wave import campaign_cycle, campaign_name, campaign_wave
    from flows.chunk_runner import task_runner

    runner = task_runner(settings.execution)
    approval: dict[str, Any] = {"wait_for_approval": wait_for_approval}
    if approval_timeout is not None:
        approval["approval_timeout"] = approval_timeout
    state: State[Any]
    names = [campaign_name(str(f)) for f in rules_files]
    with use_settings(settings), tags(*run_tags(names, dry_run)):
        if len(rules_files) == 1:
            wave_flow = campaign_wave.with_options(task_runner=runner)
            state = wave_flow(str(rules_files[0]), wave_key=wave, dry_run=dry_run, return_state=True, **approval)
        else:
            cycle_flow = campaign_cycle.with_options(task_runner=runner)
            state = cycle_flow(
                [str(f) for f in rules_files], wave_key=wave, dry_run=dry_run, return_state=True, **approval
            )
    if state.is_cancelled() and _declined.get():  # not confirmed here (a run cancelled otherwise fails below)
        raise SendDeclined(state.message or "not confirmed: nothing was recorded or sent")
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    if isinstance(result, dict):
        return [result]
    if isinstance(result, list):
        return result
    raise TypeError(f"the flow returned {type(result).__name__}, not its summaries")
