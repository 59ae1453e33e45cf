"""``campaign approve`` (a wave's frozen plan) and ``campaign audit`` (the audit trail).

``approve CAMPAIGN --wave W [--by WHO]`` approves the newest frozen plan of the wave, prints it
(counts, digests, the sample file) and says how to send; exit 1 when there is nothing to approve.
``audit [--campaign C] [--action A] [--since 2026-12-01|7d|12h] [--limit N] [--format table|json]``
prints audit events, oldest first. Neither prints personal data.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import console, fail, get_settings

_RELATIVE = re.compile(r"^(\d+)([dhm])$")


def parse_since(text: str) -> datetime:
    """``2026-12-01``, ``2026-12-01T09:00`` (UTC unless it says otherwise) or ``7d`` / ``12h`` / ``30m`` ago."""
    match = _RELATIVE.match(text.strip())
    if match:
        n, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
        return datetime.now(UTC) - delta
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(
            f"--since: expected a date (2026-12-01), a date and time (2026-12-01T09:00) or an age (7d, 12h, 30m); "
            f"got {text!r}"
        ) from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def approve_command(
    campaign: Annotated[str, typer.Argument(help="The campaign's name (the rules file's name:).")],
    wave: Annotated[str, typer.Option(help="The wave to approve, e.g. 2026-12-07.")],
    by: Annotated[
        str | None, typer.Option(help="Who approves, for the audit trail (default: the user running the command).")
    ] = None,
) -> None:
    """Approve the frozen plan of a wave that waits for approval (rules files with `approval: required`)."""
    from orchestrator.ledger.approvals import ApprovalError
    from orchestrator.wave.approval import approve

    settings = get_settings()
    try:
        done = approve(settings, campaign, wave, actor=by)
    except ApprovalError as exc:
        raise fail(str(exc)) from exc
    table = Table(title=f"approved: campaign {campaign}, wave {wave}", show_header=False)
    table.add_row("plan sha256", done.plan_sha256)
    table.add_row("rules file sha256", done.plan.rules_sha256)
    for name, digest in sorted(done.plan.templates.items()):
        table.add_row(f"template {escape(name)}", digest)
    for name, n in done.plan.counts.items():
        table.add_row(escape(name), f"{n:,}")
    table.add_row("sample messages", escape(done.sample_path or "-"))
    table.add_row("approved by", escape(done.decided_by or ""))
    console.print(table)
    console.print(
        f"send it with `campaign run RULES_FILE --wave {wave}`; a change to the rules file or a template "
        "before then voids this approval",
        highlight=False,
    )


def audit_command(
    campaign: Annotated[str | None, typer.Option(help="Only events of this campaign.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. approve, wave-finish, erase.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only events at or after this: 2026-12-01, 2026-12-01T09:00, 7d, 12h.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N events.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The audit trail: who validated, approved, ran, erased, imported, promoted or deployed what, and when."""
    from orchestrator.db import audit
    from orchestrator.db.engine import connect

    if output_format not in ("table", "json"):
        raise fail(f"--format: expected table or json, got {output_format!r}")
    try:
        after = None if since is None else parse_since(since)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    found = audit.events(connect(get_settings()), action, campaign=campaign, since=after, limit=limit)
    if output_format == "json":
        console.print_json(json.dumps([event.as_dict() for event in found]))
        return
    table = Table(title=f"audit trail ({len(found)} events)")
    for column in ("id", "when (UTC)", "actor", "action", "campaign", "what", "counts", "details"):
        table.add_column(column)
    for event in found:
        table.add_row(
            str(event.id),
            event.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            if event.occurred_at.tzinfo
            else str(event.occurred_at),
            escape(event.actor),
            escape(event.action),
            escape(event.campaign or ""),
            escape(event.subject or ""),
            escape(", ".join(f"{k} {v}" for k, v in event.counts.items())),
            escape(", ".join(f"{k} {str(v)[:16]}" for k, v in event.details.items())),
        )
    console.print(table)
