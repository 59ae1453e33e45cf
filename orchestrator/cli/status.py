"""``campaign status [--format table|json]``: every campaign at a glance.

One row per campaign in the ledger or the rules folder: last wave (and its status), next
scheduled wave, contacts pending / failed / dead-lettered, success windows still open, and the
headline lift with its 95% interval (``orchestrator.wave.overview``). The next wave comes from
the Prefect API (``PREFECT_API_URL``): the next run of the campaign's wave or cycle deployment
(``flows.deployments.scheduled_waves``); a campaign without one is "not scheduled"; without a
reachable API the next wave is "unknown" and the output says why. Nothing is started: no Prefect
server, no flow run.

Registered in ``main.py`` as ``app.command("status")(status_command)``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import console, err, get_settings

__all__ = ["status_command"]

API_TIMEOUT = 5.0  # seconds to wait for the Prefect API's health check


class Format(StrEnum):
    table = "table"
    json = "json"


def _schedules():
    """(campaign -> (next run, deployment), None) from the Prefect API, or (None, why not)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return None, "no Prefect API configured (set PREFECT_API_URL to the server campaign serve registers with)"
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=API_TIMEOUT).raise_for_status()
    except httpx.HTTPError as exc:
        return None, f"the Prefect API at {url} is not reachable ({type(exc).__name__})"
    from flows.deployments import scheduled_waves

    runs = scheduled_waves()
    return {name: (run.next_run, run.deployment) for name, run in runs.items()}, None


def _points(x: float | None) -> str:
    return "" if x is None else f"{x * 100:+.1f}"


def status_command(
    output: Annotated[Format, typer.Option("--format", help="table: for people; json: for scripts.")] = Format.table,
) -> None:
    """Every campaign: last and next wave, pending/failed/dead-lettered contacts, open windows, headline lift."""
    from orchestrator.wave.overview import campaign_overview

    settings = get_settings()
    if output is Format.table:
        err.print("reading the ledger, the success reports and the Prefect schedules ...", highlight=False)
    next_waves, note = _schedules()
    statuses = campaign_overview(settings, next_waves=next_waves, schedule_note=note)
    if output is Format.json:
        console.print_json(json.dumps({"campaigns": [s.as_dict() for s in statuses], "schedule_note": note}))
        return
    table = Table(title="Campaigns")
    for column, justify in (
        ("campaign", "left"),
        ("last wave", "left"),
        ("next wave", "left"),
        ("pending", "right"),
        ("failed", "right"),
        ("dead-lettered", "right"),
        ("open success windows", "left"),
        ("lift (points, 95% CI)", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for s in statuses:
        last = f"{s.last_wave} ({s.last_wave_status})" if s.last_wave else "never run"
        if s.next_wave is not None:
            upcoming = f"{s.next_wave:%a %Y-%m-%d %H:%M %Z}"
        else:
            upcoming = s.next_wave_note.split(":")[0]
        windows = ", ".join(f"{w.wave} until {w.closes}" for w in s.open_windows) or "-"
        if s.lift is None:
            lift = "-"
        elif s.lift.absolute is None:
            lift = s.lift.headline
        else:
            lift = f"{_points(s.lift.absolute)} ({_points(s.lift.low)} to {_points(s.lift.high)})"
            lift += ", significant" if s.lift.significant else ", not significant"
            lift += ", provisional" if s.lift.provisional else ""
        table.add_row(
            escape(s.campaign),
            escape(last),
            escape(upcoming),
            f"{s.pending:,}",
            f"{s.failed:,}",
            f"{s.dead_lettered:,}",
            escape(windows),
            escape(lift),
        )
    console.print(table)
    if note:
        console.print(f"next waves unknown: {escape(note)}", highlight=False)
