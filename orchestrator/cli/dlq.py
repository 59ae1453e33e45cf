"""``campaign dlq ...``: task lists a channel system rejected for good (the dead-letter store).

* ``dlq list [--campaign NAME]``: every dead batch: id, campaign, wave, channel, endpoint,
  rep, tasks, HTTP status and the receiver's reason (no personal data).
* ``dlq retry [BATCH ...] [--all] [--rules FILE]``: put the batches back to open (their
  contacts back to pending) and deliver them again under their original ``webhook-id``;
  the campaign's rules file is found by name in the rules folder unless ``--rules`` says.

Registered in ``cli.py`` as ``dlq_app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import console, fail, get_settings

__all__ = ["dlq_app"]

dlq_app = typer.Typer(no_args_is_help=True, help="Task lists rejected by a channel system (dead letters).")


@dlq_app.command("list")
def list_dead(campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None) -> None:
    """List the dead-lettered task lists."""
    from orchestrator.db.engine import connect
    from orchestrator.ledger.batches import dead_letters

    letters = dead_letters(connect(get_settings()), campaign=campaign)
    if not letters:
        console.print("no dead letters")
        return
    table = Table(title="Dead letters")
    table.add_column("batch", justify="right")
    table.add_column("campaign / wave", overflow="fold")
    table.add_column("channel", overflow="fold")
    table.add_column("tasks", justify="right")
    table.add_column("HTTP", justify="right")
    table.add_column("reason", overflow="fold")
    table.add_column("at", overflow="fold")
    for d in letters:
        channel = (
            d.channel
            + (f" ({d.endpoint})" if d.endpoint != d.channel else "")
            + (f", rep {d.assignee}" if d.assignee else "")
        )
        table.add_row(
            str(d.batch_id),
            escape(f"{d.campaign} / {d.wave}"),
            escape(channel),
            str(d.size),
            str(d.http_status or ""),
            escape(d.reason or ""),
            str(d.at)[:19],
        )
    console.print(table)


@dlq_app.command("retry")
def retry(
    batch_ids: Annotated[list[int] | None, typer.Argument(help="Batch ids from `campaign dlq list`.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every dead letter.", metavar="")] = False,
    rules: Annotated[Path | None, typer.Option(help="Rules file of the campaign (default: found by name).")] = None,
) -> None:
    """Deliver dead-lettered task lists again, under their original webhook-id."""
    from orchestrator.db.engine import connect
    from orchestrator.ledger import contacts as ledger
    from orchestrator.ledger.batches import dead_letters, reopen
    from orchestrator.ledger.contacts import find_wave
    from orchestrator.rules.loader import find_campaign_file
    from orchestrator.wave import stages

    settings = get_settings()
    engine = connect(settings)
    letters = dead_letters(engine)
    if not all_ and not batch_ids:
        raise fail("name the batches to retry (see `campaign dlq list`) or pass --all")
    chosen = letters if all_ else [d for d in letters if d.batch_id in set(batch_ids or [])]
    unknown = sorted(set(batch_ids or []) - {d.batch_id for d in letters})
    if unknown:
        raise fail(f"no dead letter with id {', '.join(map(str, unknown))}; see `campaign dlq list`")
    if not chosen:
        console.print("no dead letters")
        return
    by_wave: dict[tuple[str, str], list[int]] = {}
    for d in chosen:
        by_wave.setdefault((d.campaign, d.wave), []).append(d.batch_id)
    failed = False
    for (campaign, wave_key), ids in by_wave.items():
        path = rules or find_campaign_file(settings.paths.rules_dir, campaign)
        if path is None:
            raise fail(f"no rules file for campaign '{campaign}' in {settings.paths.rules_dir}; pass --rules FILE")
        prepared = stages.prepare(settings, path, wave_key)
        wave = find_wave(engine, ledger.ensure_campaign(engine, campaign, prepared.spec.description), wave_key)
        if wave is None:
            raise fail(f"campaign '{campaign}' has no wave '{wave_key}'")
        reopen(engine, ids)
        try:
            sent = stages.send_pending(settings, prepared, wave)
            console.print(f"{campaign} wave {wave_key}: {len(ids):,} task list(s) retried, {sent:,} task(s) delivered")
        except stages.WaveIncomplete as exc:
            failed = True
            console.print(f"[red]{escape(campaign)} wave {escape(wave_key)}: {escape(str(exc))}[/]", highlight=False)
    if failed:
        raise typer.Exit(1)
