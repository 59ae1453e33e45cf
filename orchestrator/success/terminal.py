"""The success report on the terminal: ``print_report(report, console)``.

Prints, on a rich ``Console``: a panel per sample-ratio mismatch (first and loudly), a headline
panel coloured by the verdict with the details and the subtitle, the reading line while a success
window is open, the notes, then for each dimension (overall, wave, channel, variant, score decile,
``--by`` columns) the table of ``table_cells.cells`` (without the intervals of incremental
successes and revenue; one table on a terminal of ``WIDE`` columns or more, else two: success,
then revenue and cost) and a third table of ``EXTRA_COLUMNS`` (corrected, adjusted, early looks).
Text from data is printed as ``Text`` objects, never markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from orchestrator.success.formatting import details, headline, reading_line, subtitle, verdict, warnings
from orchestrator.success.table_cells import EXTRA_COLUMNS, LIFT_CELLS, NUMERIC, by_dimension, cells, extra_cells

if TYPE_CHECKING:
    from orchestrator.success.report_types import SuccessReport

__all__ = ["print_report"]


TERMINAL_COLUMNS = [
    "Segment",
    "Treated",
    "Control",
    "Rate T",
    "Rate C",
    "Lift, points [95% CI]",
    "Rel. lift",
    "p (test)",
    "Incr. succ.",
    "Rev./cust. T / C",
    "Incr. revenue",
    "Cost",
    "ROI",
    "Flags",
]
WIDE = 180  # columns a terminal needs for the full table
NARROW_SUCCESS = (0, 1, 2, 3, 4, 5, 7, 13)  # segment, counts, rates, lift, p, flags
NARROW_MONEY = (0, 8, 9, 10, 11, 12)  # segment, incremental successes, revenue, cost, ROI
_STYLE = {"worked": "bold green", "harmed": "bold red", "not significant": "", "unmeasured": "yellow"}


def print_report(report: SuccessReport, console: Console) -> None:
    """Headline panel, notes, then one table per dimension."""
    kind = verdict(report.overall())
    body = Text()
    body.append(headline(report), style=_STYLE[kind] or "bold")
    for line in details(report):
        body.append("\n" + line)
    title = Text(f"Success of {report.campaign}", style="bold")
    border = {"worked": "green", "harmed": "red", "not significant": "blue", "unmeasured": "yellow"}[kind]
    for warning in warnings(report):
        console.print(Panel(Text(warning, style="bold red"), title=Text("Sample ratio mismatch", style="bold red")))
    console.print(Panel(body, title=title, subtitle=Text(subtitle(report)), border_style=border))
    reading = reading_line(report)
    if reading is not None:
        console.print(Text(reading, style="bold yellow" if report.overall().reading == "too early" else "bold"))
    if report.notes:
        notes = [Text("Notes", style="bold yellow")] + [Text(f"• {n}", style="yellow") for n in report.notes]
        console.print(Group(*notes))
    # a wide terminal gets one table per dimension; a narrow one two: success and money
    groups = [range(len(TERMINAL_COLUMNS))] if console.width >= WIDE else [NARROW_SUCCESS, NARROW_MONEY]
    for _dimension, heading, segments in by_dimension(report):
        rows = []
        for s in segments:
            row = [Text(c) for c in cells(s, intervals=False)]
            style = _STYLE[verdict(s)] if s.significant else ""
            for i in LIFT_CELLS:
                row[i].stylize(style)
            row[-1].stylize("yellow")
            rows.append(row)
        for k, columns in enumerate(groups):
            caption = heading if k == 0 else f"{heading}: revenue and cost"
            table = Table(title=Text(caption, style="bold"), title_justify="left")
            for i in columns:
                table.add_column(TERMINAL_COLUMNS[i], justify="right" if i in NUMERIC else "left", overflow="fold")
            for row in rows:
                table.add_row(*(row[i] for i in columns))
            console.print(table)
        extra = Table(title=Text(f"{heading}: corrected, adjusted, early looks", style="bold"), title_justify="left")
        for i, column in enumerate(EXTRA_COLUMNS):
            extra.add_column(column, justify="left" if i in (0, 5) else "right", overflow="fold")
        for s in segments:
            extra.add_row(*(Text(c) for c in extra_cells(s)))
        console.print(extra)
