"""A wave's results as the tables and text people read in the Prefect UI (plain data, no Prefect).

``funnel_rows(funnel)``: the selection funnel, one row per filter; ``channel_rows(summary)``: the
send summary per channel; ``summary_rows(summary)``: the wave's counts; ``headline(summary)``:
the result in one sentence; ``wave_markdown(summary, report=)``: that sentence with the counts and
where the success report is. Labels are words, numbers carry thousands separators, every value is
a plain string or number (never a Python dict). ``artifact_key(kind, campaign, dry_run=)``: the
Prefect artifact key (lowercase letters, digits and dashes); dry runs get keys of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CHANNEL_LABELS",
    "artifact_key",
    "channel_label",
    "channel_rows",
    "funnel_rows",
    "headline",
    "summary_rows",
    "wave_markdown",
]

CHANNEL_LABELS = {"email": "E-mail", "call_center": "Call center", "field_force": "Field force visit"}
"""How people name the channels; other channels are shown by their name with spaces."""

_STAGE_LABELS = {
    "customers": "All customers",
    "audience": "Audience",
    "lists": "Include/exclude lists",
    "policy": "Contact policy",
    "global control": "Global control group",
    "score": "Score",
    "control": "Control group",
    "variant": "Variant",
    "arbitration": "Arbitration",
    "capacity": "Channel capacity",
}


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel) or channel.replace("_", " ").capitalize()


def _n(value: int | float | None) -> str:
    return "" if value is None else f"{value:,}"


def artifact_key(kind: str, campaign: str, *, dry_run: bool = False) -> str:
    """``<kind>-<campaign>`` (``dry-run-<kind>-<campaign>`` for a dry run) as a valid Prefect artifact key."""
    raw = f"{'dry-run-' if dry_run else ''}{kind}-{campaign}".lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", raw)).strip("-")[:100]


def funnel_rows(funnel: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The funnel steps (``stage``, ``label``, ``removed``, ``remaining``) as table rows."""
    return [
        {
            "Step": _STAGE_LABELS.get(str(step["stage"]), str(step["stage"]).capitalize()),
            "Filter": str(step["label"]),
            "Removed": f"-{step['removed']:,}" if step["removed"] else "",
            "Customers left": _n(step["remaining"]),
        }
        for step in funnel
    ]


def channel_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """Per channel: treated, and for a real run sent, failed, skipped and pending contacts."""
    rows = []
    by_channel: Mapping[str, Mapping[str, int]] = summary.get("by_channel") or {}
    for channel in sorted(set(summary.get("channels") or {}) | set(by_channel)):
        counts = by_channel.get(channel, {})
        treated = (summary.get("channels") or {}).get(channel, sum(counts.values()))
        row = {"Channel": channel_label(channel), "Treated customers": _n(treated)}
        if not summary.get("dry_run"):
            row |= {
                "Sent": _n(counts.get("sent", 0)),
                "Failed (permanent)": _n(counts.get("failed", 0)),
                "Skipped (not sendable)": _n(counts.get("skipped", 0)),
                "Still pending": _n(counts.get("pending", 0)),
            }
        rows.append(row)
    return rows


def summary_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """The wave's counts as ``Measure``/``Value`` rows with words for labels."""
    rows: list[tuple[str, Any]] = [
        ("Wave", summary["wave"]),
        ("Run", "dry run: nothing recorded or sent" if summary["dry_run"] else "real send"),
        ("Selected (treatment and control)", _n(summary["selected"])),
        ("Treatment", _n(summary["treated"])),
        ("Control group (not contacted)", _n(summary["control"])),
    ]
    if summary.get("global_control"):
        rows.append(("Global control group (held out of every campaign)", _n(summary["global_control"])))
    if summary["dry_run"]:
        rows += [("Messages rendered", _n(summary["rendered"])), ("Render errors", _n(summary["render_errors"]))]
    else:
        rows += [
            ("Sent in this run", _n(summary["sent_this_run"])),
            ("Sent in total", _n(summary.get("ledger_sent", 0))),
            ("Failed (permanent)", _n(summary.get("ledger_failed", 0))),
            ("Skipped (invalid address, render error)", _n(summary.get("ledger_skipped", 0))),
            ("Still pending", _n(summary.get("ledger_pending", 0))),
            ("Wave status", str(summary.get("status") or "")),
        ]
    for winner, n in sorted((summary.get("lost_to") or {}).items()):
        rows.append((f"Lost to campaign {winner}", _n(n)))
    if summary.get("waiting_for_capacity"):
        rows.append(("Waiting for channel capacity", _n(summary["waiting_for_capacity"])))
    if summary.get("dead_batches"):
        rows.append(("Task lists rejected (campaign dlq list)", _n(summary["dead_batches"])))
    if summary.get("error"):
        rows.append(("Error", str(summary["error"])))
    return [{"Measure": label, "Value": str(value)} for label, value in rows]


def headline(summary: Mapping[str, Any]) -> str:
    """The wave's result in one sentence."""
    channels = ", ".join(f"{channel_label(c)} {n:,}" for c, n in sorted((summary.get("channels") or {}).items()) if n)
    on = f" ({channels})" if channels else ""
    if summary["dry_run"]:
        return (
            f"Dry run: {summary['treated']:,} customers would be contacted{on}, {summary['control']:,} held out "
            f"as control; {summary['rendered']:,} messages rendered, {summary['render_errors']:,} render errors. "
            "Nothing was recorded or sent."
        )
    sent = summary.get("ledger_sent", 0)
    text = (
        f"{sent:,} of {summary['treated']:,} treated customers contacted{on}; "
        f"{summary['control']:,} held out as control."
    )
    pending = summary.get("ledger_pending", 0)
    if pending:
        text += f" {pending:,} still pending: run the wave again to send them."
    return text


def wave_markdown(summary: Mapping[str, Any], report: Path | None = None) -> str:
    """The headline with the campaign, wave and where its success report is (``report``, when written)."""
    title = f"# {summary['campaign']}, wave {summary['wave']}" + (" (dry run)" if summary["dry_run"] else "")
    lines = [title, "", f"**{headline(summary)}**", ""]
    if not summary["dry_run"]:
        if report is not None:
            lines.append(f"Success report: [{report.name}]({report.resolve().as_uri()}) (`{report}`)")
        else:
            lines.append(f"Success report: `campaign report {summary['campaign']} --html report.html`")
    return "\n".join(lines) + "\n"
