"""The success report as Prefect artifacts: what ``create_markdown_artifact`` and ``create_table_artifact`` take.

- ``markdown_report(report)``: the title, the subtitle, any sample-ratio mismatch, the headline and
  its details, the reading line while a success window is open, the notes, one table per dimension
  with every column of ``COLUMNS`` and ``EXTRA_COLUMNS`` (a significant lift in bold), then the
  methods. Text from data goes through ``md``: backslashes and HTML entities, so it is never read as
  markup, a link or HTML.
- ``table_rows(report)``: one JSON-safe dict per segment; numbers stay numbers (rounded), unknown is
  None.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

from orchestrator.success.formatting import details, finite, headline, reading_line, subtitle, verdict, warnings
from orchestrator.success.table_cells import COLUMNS, EXTRA_COLUMNS, NUMERIC, by_dimension, cells, extra_cells

if TYPE_CHECKING:
    from orchestrator.success.report_types import SuccessReport

__all__ = ["markdown_report", "table_rows"]


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|~])")


def md(text: object) -> str:
    """Text as literal Markdown (also inside a table cell): no markup, links or HTML."""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def markdown_report(report: SuccessReport) -> str:
    """The report as Markdown: headline, notes, one table per dimension."""
    lines = [
        f"# Success of campaign {md(report.campaign)}",
        "",
        f"*{md(subtitle(report))}*",
        "",
        f"**{md(headline(report))}**",
        "",
    ]
    lines += [f"- {md(line)}" for line in details(report)]
    lines[4:4] = [f"**⚠ {md(w)}**\n" for w in warnings(report)]
    reading = reading_line(report)
    if reading is not None:
        lines += ["", f"**{md(reading)}**"]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- ⚠ {md(n)}" for n in report.notes]
    for _dimension, heading, segments in by_dimension(report):
        lines += ["", f"## {md(heading)}", ""]
        lines.append("| " + " | ".join(COLUMNS + EXTRA_COLUMNS[1:]) + " |")
        width = len(COLUMNS) + len(EXTRA_COLUMNS) - 1
        lines.append("|" + "|".join("---:" if i in NUMERIC else "---" for i in range(width)) + "|")
        for s in segments:
            row = [md(c) for c in cells(s) + extra_cells(s)[1:]]
            if s.significant and verdict(s) in ("worked", "harmed"):
                row[5] = f"**{row[5]}**"
            lines.append("| " + " | ".join(row) + " |")
    methods = getattr(report, "methods", None) or {}
    lines += ["", f"Significant: p < {getattr(report, 'alpha', 0.05):g}; intervals are 95% confidence intervals."]
    lines += [f"- {md(k.replace('_', ' '))}: {md(v)}" for k, v in methods.items()]
    return "\n".join(lines) + "\n"


def _round(x: float | None, digits: int) -> float | None:
    x = finite(x)
    return None if x is None else round(x, digits)


def table_rows(report: SuccessReport) -> list[dict[str, Any]]:
    """One JSON-safe dict per segment (numbers stay numbers; unknown is None)."""
    rows = []
    for _dimension, _heading, segments in by_dimension(report):
        for s in segments:
            rows.append(
                {
                    "dimension": s.dimension,
                    "segment": s.key,
                    "treated": s.treated,
                    "control": s.control,
                    "treated_successes": s.treated_successes,
                    "control_successes": s.control_successes,
                    "treated_rate": _round(s.treated_rate, 5),
                    "control_rate": _round(s.control_rate, 5),
                    "absolute_lift": _round(s.absolute_lift.value, 5),
                    "absolute_lift_low": _round(s.absolute_lift.low, 5),
                    "absolute_lift_high": _round(s.absolute_lift.high, 5),
                    "relative_lift": _round(s.relative_lift.value, 4),
                    "p_value": _round(s.p_value, 5),
                    "test": s.test,
                    "significant": bool(s.significant),
                    "incremental_successes": _round(s.incremental_successes.value, 1),
                    "revenue_per_treated": _round(s.revenue_per_treated.value, 2),
                    "revenue_per_control": _round(s.revenue_per_control.value, 2),
                    "incremental_revenue": _round(s.incremental_revenue.value, 2),
                    "cost": _round(s.cost, 2),
                    "roi": _round(s.roi.value, 4),
                    "flags": ", ".join(s.flags),
                    "p_adjusted": _round(s.p_adjusted, 5),
                    "p_adjustment": s.p_adjustment,
                    "adjusted_lift": _round(s.adjusted_lift.value, 5),
                    "adjusted_lift_low": _round(s.adjusted_lift.low, 5),
                    "adjusted_lift_high": _round(s.adjusted_lift.high, 5),
                    "variance_reduction": _round(s.variance_reduction, 4),
                    "sequence_low": _round(s.sequence.low, 5),
                    "sequence_high": _round(s.sequence.high, 5),
                    "reading": s.reading,
                    "cost_per_incremental": _round(s.cost_per_incremental.value, 2),
                }
            )
    return rows
