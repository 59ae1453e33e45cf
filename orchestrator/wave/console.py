"""The rich tables of a wave for people: summary, selection funnel, channels, arbitration losses.

Used by ``campaign run``/``explain`` and the demo; every function prints to the console it is given.
Numbers carry thousands separators.

"Selected" has one meaning everywhere: the customers the wave took into its ledger, that is
treatment + control (+ the global control held out of every campaign) -- ``SELECTED``. The summary
shows it with its parts, and the funnel's caption ties its last rows to the same number (the
funnel ends with the treated customers, after the control group is held out).
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["SELECTED", "print_channels", "print_funnel", "print_losses", "print_summary"]

SELECTED = "selected (treatment + control + global control)"


def print_summary(console: Console, summary: dict) -> None:
    title = f"Campaign {summary['campaign']}, wave {summary['wave']}" + (" (dry run)" if summary["dry_run"] else "")
    table = Table(title=title, show_header=False)
    rows = [
        (SELECTED if summary.get("global_control") else "selected (treatment + control)", summary["selected"]),
        ("treatment", summary["treated"]),
        ("control (not contacted)", summary["control"]),
    ]
    if summary.get("global_control"):
        rows.append(("global control (held out of every campaign)", summary["global_control"]))
    if summary["dry_run"]:
        rows += [("rendered", summary["rendered"]), ("render errors", summary["render_errors"])]
    else:
        rows += [
            ("sent in this run", summary["sent_this_run"]),
            ("sent in total", summary.get("ledger_sent", 0)),
            ("failed (permanent)", summary.get("ledger_failed", 0)),
            ("skipped (invalid address, render error)", summary.get("ledger_skipped", 0)),
            ("still pending", summary.get("ledger_pending", 0)),
            ("wave status", str(summary["status"] or "").replace("_", " ")),
        ]
    for channel, n in sorted((summary.get("channels") or {}).items()):
        rows.append((f"treated on {channel}", n))
    for winner, n in sorted((summary.get("lost_to") or {}).items()):
        rows.append((f"lost to campaign {winner}", n))
    if summary.get("waiting_for_capacity"):
        rows.append(("waiting for channel capacity", summary["waiting_for_capacity"]))
    if summary.get("waiting_for_window"):
        rows.append(
            (f"waiting for their send window (next slot {summary['next_send_slot']})", summary["waiting_for_window"])
        )
    if summary.get("dead_batches"):
        rows.append(("task lists rejected (campaign dlq list)", summary["dead_batches"]))
    for label, value in rows:
        table.add_row(escape(label), f"{value:,}" if isinstance(value, int) else escape(str(value)))
    if summary.get("funnel"):
        print_funnel(console, summary["funnel"], summary)
    console.print(table)
    if summary.get("approval") and summary.get("status") == "awaiting_approval":
        console.print(f"[yellow]{escape(summary['approval'])}[/]", highlight=False)


def print_funnel(console: Console, funnel: list[dict], summary: dict | None = None) -> None:
    """The selection funnel as a table: customers left after each filter; with the wave's ``summary``,
    a caption saying how its rows make the selected number."""
    caption = None
    if summary is not None and summary.get("selected"):
        caption = (
            f"selected {summary['selected']:,} = treatment {summary.get('treated', 0):,} + control "
            f"{summary.get('control', 0):,}"
            + (f" + global control {summary['global_control']:,}" if summary.get("global_control") else "")
        )
    table = Table(title="Selection funnel", caption=caption)
    table.add_column("stage")
    table.add_column("filter")
    table.add_column("removed", justify="right")
    table.add_column("remaining", justify="right")
    for step in funnel:
        removed = f"-{step['removed']:,}" if step["removed"] else ""
        table.add_row(escape(step["stage"]), escape(step["label"]), removed, f"{step['remaining']:,}")
    console.print(table)


def print_channels(console: Console, plan) -> None:
    """Treated and control customers per allocated channel."""
    import numpy as np

    table = Table(title="Channels (allocation within today's capacity)")
    table.add_column("channel")
    table.add_column("treated", justify="right")
    table.add_column("control", justify="right")
    arms = plan.contacts.arm
    for channel in plan.spec.channels.names():
        on = plan.contacts.channel == channel
        table.add_row(
            channel,
            f"{int(np.count_nonzero(on & (arms == 'treatment'))):,}",
            f"{int(np.count_nonzero(on & (arms == 'control'))):,}",
        )
    if plan.waiting:
        table.add_row("waiting (channel full)", f"{plan.waiting:,}", "")
    console.print(table)


def print_losses(console: Console, plans) -> None:
    """Arbitration: customers each campaign lost to each other one."""
    names = [p.spec.name for p in plans]
    winners = sorted({w for p in plans for w in p.lost_to} | set(names))
    table = Table(title="Arbitration: customers lost (row) to (column)")
    table.add_column("campaign")
    for w in winners:
        table.add_column(escape(w), justify="right")
    for p in plans:
        table.add_row(escape(p.spec.name), *(f"{p.lost_to.get(w, 0):,}" if w != p.spec.name else "-" for w in winners))
    console.print(table)
