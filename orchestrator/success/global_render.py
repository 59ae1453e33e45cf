"""The global control report rendered: a terminal table and one self-contained HTML page with a chart.

Formats an ``orchestrator.success.global_control.GlobalControlReport``; nothing is recomputed.
Text from data is escaped as in the success report's page: it reuses the number formats of
``orchestrator.success.formatting``, the chart helpers of ``chart_svg`` and the page style of ``html_page``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib as mpl
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.success.chart_svg import CHART_RC, GREEN, GREY, VERMILLION, chart_figure, escape, inline_svg
from orchestrator.success.formatting import count, finite, lift_points, money, p_value, pct, with_ci
from orchestrator.success.html_page import PAGE_CSS

if TYPE_CHECKING:
    from orchestrator.success.global_control import GlobalControlReport, MonthResult

__all__ = ["global_headline", "month_cells", "print_global_report", "render_global_html", "write_global_html"]

COLUMNS = [
    "Month",
    "Reachable",
    "Global control",
    "Converted, reachable",
    "Converted, global control",
    "Lift, points [95% CI]",
    "p (test)",
    "Incremental customers",
    "Revenue per customer, reachable / global",
    "Incremental revenue",
]


def global_headline(report: GlobalControlReport) -> str:
    """The months in one sentence: incremental revenue and converting customers over the months shown."""
    if not report.months:
        return "No months to show: no conversions imported yet."
    known = [m for m in report.months if finite(m.incremental_revenue.value) is not None]
    revenue = sum(m.incremental_revenue.value or 0.0 for m in known)
    customers = sum(m.incremental_customers.value or 0.0 for m in report.months)
    worked = sum(1 for m in report.months if m.significant and (m.lift.value or 0) > 0)
    return (
        f"Marketing as a whole added about {customers:,.0f} converting customers and {revenue:,.0f} in revenue over "
        f"{len(report.months)} month{'s' if len(report.months) != 1 else ''} "
        f"(significant increase in {worked} of them), against a global control group of "
        f"{report.share * 100:g}% of the customers."
    )


def month_cells(m: MonthResult) -> list[str]:
    p = p_value(m.p_value)
    if m.test and p != "–":
        p += f" ({m.test})"
    return [
        m.month,
        f"{m.marketing:,}",
        f"{m.global_control:,}",
        f"{m.marketing_converted:,} ({pct(m.marketing_rate, 2)})",
        f"{m.global_converted:,} ({pct(m.global_rate, 2)})",
        lift_points(m.lift),
        p,
        with_ci(m.incremental_customers, count),
        f"{money(m.revenue_per_marketing, 2)} / {money(m.revenue_per_global, 2)}",
        with_ci(m.incremental_revenue, money),
    ]


def print_global_report(report: GlobalControlReport, console: Console) -> None:
    console.print(Text(global_headline(report), style="bold"))
    for note in report.notes:
        console.print(Text(f"• {note}", style="yellow"))
    table = Table(title=Text("Global control group by month", style="bold"), title_justify="left")
    for i, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
    for m in report.months:
        row = [Text(c) for c in month_cells(m)]
        if m.significant:
            style = "bold green" if (m.lift.value or 0) > 0 else "bold red"
            for i in (5, 6, 7):
                row[i].stylize(style)
        table.add_row(*row)
    console.print(table)


def _chart(report: GlobalControlReport) -> str:
    title = "Incremental revenue per month"
    caption = (
        "Revenue of the customers marketing could reach minus what they would have brought at the global "
        "control group's rate, with 95% confidence intervals. Filled: significant."
    )
    rows = [m for m in report.months if finite(m.incremental_revenue.value) is not None]
    if not rows:
        return chart_figure(title, caption, None, "No chart: no month has a measurable difference yet.")
    values = [m.incremental_revenue.value or 0.0 for m in rows]
    lows = [finite(m.incremental_revenue.low) for m in rows]
    highs = [finite(m.incremental_revenue.high) for m in rows]
    with mpl.rc_context(CHART_RC):
        fig = Figure(figsize=(7.5, 3.6))
        ax = fig.add_subplot()
        ax.axhline(0, color="#222", linewidth=1)
        for x, (m, v, lo, hi) in enumerate(zip(rows, values, lows, highs, strict=True)):
            colour = GREEN if m.significant and v > 0 else VERMILLION if m.significant else GREY
            low = v if lo is None else lo
            high = v if hi is None else hi
            ax.errorbar(
                [x],
                [v],
                yerr=[[v - low], [high - v]],
                fmt="o",
                color=colour,
                capsize=4,
                markerfacecolor=colour if m.significant else "white",
            )
        ax.set_xticks(range(len(rows)), [m.month for m in rows])
        ax.set_ylabel("incremental revenue")
        ax.grid(axis="y", color="#ddd", linewidth=0.6)
    description = "Incremental revenue per month: " + "; ".join(
        f"{m.month} {money(v)}" + ("" if lo is None or hi is None else f" ({money(lo)} to {money(hi)})")
        for m, v, lo, hi in zip(rows, values, lows, highs, strict=True)
    )
    return chart_figure(title, caption, inline_svg(fig, title, description))


def render_global_html(report: GlobalControlReport) -> str:
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(
            f'<th scope="row">{escape(c)}</th>' if i == 0 else f'<td class="num">{escape(c)}</td>'
            for i, c in enumerate(month_cells(m))
        )
        + "</tr>"
        for m in report.months
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    srm = report.sample_ratio
    split = (
        ""
        if srm is None or srm.p_value is None
        else f"<p>Split check: chi-squared p = {escape(f'{srm.p_value:.3g}')}"
        + (" <b>(mismatch)</b>" if srm.mismatch else "")
        + "</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>What marketing adds</title><style>{PAGE_CSS}</style></head>
<body><main>
<h1>What marketing as a whole adds</h1>
<section class="headline"><p class="result">{escape(global_headline(report))}</p>
<p class="sub">{report.customers:,} customers; global control: {escape(f"{report.share * 100:g}%")}
(salt {escape(report.salt)}). {split}</p></section>
<section class="notes" role="note"><h2>Notes</h2><ul>{notes}</ul></section>
{_chart(report)}
<section><div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></section>
</main></body></html>
"""


def write_global_html(report: GlobalControlReport, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_global_html(report), encoding="utf-8")
    return path
