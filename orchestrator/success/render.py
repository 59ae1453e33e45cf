"""The success report rendered: one HTML page with charts, terminal tables, Prefect artifacts.

Takes an ``orchestrator.success.report.SuccessReport`` and only formats it; every number comes from
the report, nothing is recomputed.

- ``headline(report)``: the overall lift in plain words, e.g.
  ``+2.1 points (95% CI 0.8 to 3.4), p = 0.002: the campaign worked.``
- ``write_html(report, path)``: one self-contained page (no scripts, fonts or styles from
  elsewhere, opens offline) with the headline, a "data as of" stamp (``stamp``), the notes and
  flags, four charts as inline SVG and two tables of every segment: results with cost and ROI
  (currency in the headings) and a Status column saying which are provisional (window still
  open), then the details. Charts: (o) lift and incremental value per wave over time, provisional
  waves hollow/hatched; (a) absolute lift with its 95% CI for the overall result, every channel
  and every A/B variant, with a zero line; (b) cumulative success rate by days since contact,
  treated against control; (c) success rate per score decile, treated against control, and the
  cumulative share of the incremental successes. A chart that cannot be drawn (no control group,
  no scores, no outcomes recorded, no dated successes) is replaced by a sentence saying why.
  Phone width: charts are ``CHART_WIDTH`` inches with 12-unit text and scale with the page
  (``width="100%"``, at most their natural size), tables stack into "column: value" cards below
  720 px; text stays >= 10 px at 420 px (``tests/success/test_report_reading.py``).
- Labels follow the report's success: the imported outcome (``--outcome visit``) or the goal;
  rates and lifts below 1% (one point) get one decimal more.
- ``print_report(report, console)``: a headline panel, the notes, then one rich table per
  dimension (overall, wave, channel, variant, score decile).
- ``markdown_report(report)`` and ``table_rows(report)``: what Prefect's
  ``create_markdown_artifact`` and ``create_table_artifact`` take.
- Everywhere: a sample-ratio mismatch is shown first and loudly (``warnings``); while a
  success window is open, a line says whether the result may already be read (``reading_line``);
  every segment also has the cells of ``EXTRA_COLUMNS``: the adjusted p-value and its method,
  the regression-adjusted lift and the variance reduction, the always-valid interval while the
  window is open, the cost per incremental success (the terminal shows them in a third table
  per dimension). Customer-column breakdowns (``--by``) are headed "By <column>".

Rates and absolute lifts in the report are shares (0.021) and are shown as percent and
percentage points; relative lift and ROI are ratios, shown as percent.

Text from data (campaign names, wave keys, variants, notes, flags) is escaped everywhere: HTML
entities in the page, ``Text`` objects (never markup) on the terminal, backslashes and entities
in Markdown, and ``$`` in chart labels so matplotlib never reads one as mathtext. Charts are
drawn on ``matplotlib.figure.Figure`` objects, never pyplot, so no GUI backend or global figure
state is involved (rendering is Agg/SVG only). Each SVG has ``role="img"``, a title and a
description listing the plotted numbers; colours are the Okabe-Ito palette (safe for colour
blindness), and treated and control also differ by line style and hatching.
"""

from __future__ import annotations

import html
import io
import itertools
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from orchestrator.settings import private_dir, private_file

if TYPE_CHECKING:
    from orchestrator.success.report import Estimate, Segment, SuccessReport

__all__ = [
    "headline",
    "markdown_report",
    "print_report",
    "render_html",
    "table_rows",
    "write_html",
]

#: Dimensions in the order they are shown, with their headings.
DIMENSIONS: dict[str, str] = {
    "overall": "Overall",
    "wave": "By wave",
    "channel": "By channel",
    "variant": "By A/B variant",
    "score_decile": "By score decile (1 = best scores)",
}

NO_CONTROL = "no control group"


# ---------------------------------------------------------------------------------------------
# numbers


def _finite_or(x: float | None, fallback: float) -> float:
    """``x`` when it is a finite number, else ``fallback``."""
    known = finite(x)
    return fallback if known is None else known


def finite(x: float | None) -> float | None:
    """``x`` as a finite float, or None (None, NaN and infinities are 'not known')."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def pct(rate: float | None, digits: int = 1) -> str:
    """A share as percent; one decimal more for a rate below 1% (0.4% reads 0.42%)."""
    rate = finite(rate)
    if rate is None:
        return "–"
    if rate != 0 and abs(rate) < 0.01:
        digits += 1
    return f"{rate * 100:.{digits}f}%"


def signed_pct(ratio: float | None) -> str:
    ratio = finite(ratio)
    return "–" if ratio is None else f"{ratio * 100:+.1f}%"


def p_value(p: float | None) -> str:
    p = finite(p)
    if p is None:
        return "–"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def money(x: float | None, digits: int = 0) -> str:
    x = finite(x)
    return "–" if x is None else f"{x:,.{digits}f}"


def with_ci(est: Estimate, fmt, scale: float = 1.0, bound=None) -> str:
    """``value [low, high]``: ``fmt`` (``bound`` for the bounds) applied to each times ``scale``."""
    bound = bound or fmt
    value, low, high = (finite(v) for v in (est.value, est.low, est.high))
    if value is None:
        return "–"
    text = fmt(value * scale)
    if low is not None and high is not None:
        text += f" [{bound(low * scale)}, {bound(high * scale)}]"
    return text


def value_only(est: Estimate, fmt) -> str:
    value = finite(est.value)
    return "–" if value is None else fmt(value)


def points(x: float) -> str:
    return f"{x:+.1f}"


def lift_points(est: Estimate) -> str:
    """Absolute lift in percentage points with its CI, e.g. ``+2.1 [0.8, 3.4]``; one decimal more
    when the lift and its bounds are all below one point (``+0.42 [0.08, 0.76]``)."""
    known = [abs(v) for v in (finite(est.value), finite(est.low), finite(est.high)) if v is not None]
    digits = 2 if known and max(known) < 0.01 else 1
    return with_ci(est, lambda x: f"{x:+.{digits}f}", 100.0, lambda x: f"{x:.{digits}f}")


def count(x: float) -> str:
    return f"{x:,.0f}"


def no_control(segment: Segment) -> bool:
    return segment.control == 0 or NO_CONTROL in segment.flags


def verdict(segment: Segment) -> str:
    """``worked``, ``harmed``, ``not significant`` or ``unmeasured``: for colours and classes."""
    value = finite(segment.absolute_lift.value)
    if no_control(segment) or value is None:
        return "unmeasured"
    if not segment.significant:
        return "not significant"
    return "worked" if value > 0 else "harmed"


# ---------------------------------------------------------------------------------------------
# headline


def no_outcomes(report: SuccessReport) -> bool:
    """Whether no outcome at all has been recorded for the report's waves yet (not: none counted as success)."""
    overall = report.overall()
    return getattr(report, "outcome_events", None) == 0 and overall.treated + overall.control > 0


def headline(report: SuccessReport) -> str:
    """The overall result in one sentence of plain words."""
    overall = report.overall()
    if no_outcomes(report):
        from orchestrator.success.report import no_outcomes_message

        message = no_outcomes_message(report)
        return message[0].upper() + message[1:] + "."
    if no_control(overall):
        return "Lift cannot be measured: the campaign has no control group."
    lift = overall.absolute_lift
    value = finite(lift.value)
    if value is None:
        why = "; ".join(f for f in overall.flags if f != "not significant") or "too little data"
        return f"Lift cannot be measured: {why}."
    text = f"{value * 100:+.1f} points"
    low, high = finite(lift.low), finite(lift.high)
    if low is not None and high is not None:
        text += f" (95% CI {low * 100:.1f} to {high * 100:.1f})"
    if finite(overall.p_value) is not None:
        p = p_value(overall.p_value)
        text += f", p {p}" if p.startswith("<") else f", p = {p}"
    outcome = {
        "worked": "the campaign worked",
        "harmed": "the campaign lowered the success rate",
        "not significant": "not significant, the difference may be chance",
    }[verdict(overall)]
    if "control group too small" in overall.flags and not no_outcomes(report):
        outcome += " (the control group is too small to tell)"
    return f"{text}: {outcome}."


def currency(report: SuccessReport) -> str:
    """The currency code of the report's money ("" when not known)."""
    return getattr(report, "currency", None) or ""


def amount(report: SuccessReport, x: float | None, digits: int = 0) -> str:
    """Money with the report's currency, e.g. ``1,250 EUR``."""
    text = money(x, digits)
    code = currency(report)
    return f"{text} {code}" if code and text != "–" else text


def success_label(report: SuccessReport) -> str:
    """What success is: the imported outcome column, else the goal (``conversion``, ``response``)."""
    outcome = getattr(report, "outcome", None)
    return f"outcome '{outcome}'" if outcome else report.goal


def details(report: SuccessReport) -> list[str]:
    """Lines under the headline: rates, incremental successes and revenue, cost and ROI."""
    o = report.overall()
    lines = [f"Treated {o.treated:,} customers, {o.treated_successes:,} successes ({pct(o.treated_rate)})."]
    if not no_control(o):
        lines.append(f"Control {o.control:,} customers, {o.control_successes:,} successes ({pct(o.control_rate)}).")
        if finite(o.relative_lift.value) is not None:
            lines.append(f"Relative lift {with_ci(o.relative_lift, lambda v: f'{v * 100:+.1f}%')}.")
        if finite(o.incremental_successes.value) is not None:
            lines.append(f"Incremental successes {with_ci(o.incremental_successes, count)}.")
        if finite(o.incremental_revenue.value) is not None:
            lines.append(
                f"Incremental revenue {with_ci(o.incremental_revenue, money)} {currency(report)}".rstrip()
                + f", cost {amount(report, o.cost)}."
            )
        if finite(o.roi.value) is not None:
            lines.append(f"ROI {with_ci(o.roi, lambda v: f'{v * 100:+.0f}%')}.")
    elif finite(o.cost):
        lines.append(f"Cost {amount(report, o.cost)}.")
    return lines


def subtitle(report: SuccessReport) -> str:
    outcome = getattr(report, "outcome", None)
    goal = f"success: outcome '{outcome}'" if outcome else f"goal: {report.goal}"
    if report.window_days is not None:
        goal += f" within {report.window_days} days of contact"
    waves = ", ".join(report.waves) if report.waves else "none"
    return f"{goal}; waves: {waves}"


def stamp(report: SuccessReport) -> str:
    """When the data is from: the newest outcome recorded, and the day windows are read as of."""
    newest = getattr(report, "data_as_of", None)
    parts = [
        f"data as of {newest.replace('T', ' ').replace('+00:00', ' UTC')} (newest outcome recorded)"
        if newest
        else "data as of: no outcome recorded yet"
    ]
    if report.as_of:
        parts.append(f"windows read as of {report.as_of}")
    return "; ".join(parts)


def provisional(segment: Segment) -> bool:
    """A segment whose success window is still open: its result may change."""
    return segment.reading != "final"


def provisional_text(segment: Segment) -> str:
    if not provisional(segment):
        return ""
    return "provisional: window open" + (f" until {segment.window_closes}" if segment.window_closes else "")


def by_dimension(report: SuccessReport) -> list[tuple[str, str, list[Segment]]]:
    """``(dimension, heading, segments)`` in display order; unknown dimensions last."""
    groups: dict[str, list[Segment]] = {}
    for s in report.segments:
        groups.setdefault(s.dimension, []).append(s)
    order = [d for d in DIMENSIONS if d in groups] + [d for d in groups if d not in DIMENSIONS]
    return [(d, DIMENSIONS.get(d) or heading_of(d), groups[d]) for d in order]


def heading_of(dimension: str) -> str:
    """The heading of a dimension outside ``DIMENSIONS``: a customer-column breakdown or any other."""
    if dimension.startswith("by:"):
        return f"By {dimension[3:]} (customer column at selection time)"
    return f"By {dimension}"


def segment_label(segment: Segment) -> str:
    return "all customers" if segment.dimension == "overall" else f"{segment.dimension} {segment.key}"


# ---------------------------------------------------------------------------------------------
# one row of cells, shared by the terminal, Markdown and HTML tables

COLUMNS = [
    "Segment",
    "Treated",
    "Control",
    "Rate treated",
    "Rate control",
    "Lift, points [95% CI]",
    "Relative lift",
    "p (test)",
    "Incremental successes",
    "Revenue per customer, treated / control",
    "Incremental revenue",
    "Cost",
    "ROI",
    "Flags",
]
NUMERIC = set(range(1, 13))
LIFT_CELLS = (5, 6, 7, 8, 10, 12)  # coloured when significant


def cells(segment: Segment, intervals: bool = True) -> list[str]:
    """The table cells of one segment (see ``COLUMNS``); ``intervals=False`` leaves out the
    intervals of incremental successes and revenue (the lift always keeps its CI)."""
    s = segment
    p = p_value(s.p_value)
    if s.test and p != "–":
        p += f" ({s.test})"
    control = not no_control(s)
    return [
        s.key if s.dimension != "overall" else "all",
        f"{s.treated:,}",
        f"{s.control:,}",
        pct(s.treated_rate),
        pct(s.control_rate) if control else "–",
        lift_points(s.absolute_lift),
        signed_pct(s.relative_lift.value),
        p,
        with_ci(s.incremental_successes, count) if intervals else value_only(s.incremental_successes, count),
        f"{money(s.revenue_per_treated.value, 2)} / {money(s.revenue_per_control.value, 2) if control else '–'}",
        with_ci(s.incremental_revenue, money) if intervals else value_only(s.incremental_revenue, money),
        money(s.cost),
        signed_pct(s.roi.value),
        ", ".join(([provisional_text(s)] if provisional(s) else []) + list(s.flags)),
    ]


EXTRA_COLUMNS = [
    "Segment",
    "p adjusted (method)",
    "Adjusted lift, points [95% CI]",
    "Variance reduction",
    "Always-valid lift, points [95%]",
    "Reading",
    "Cost per incremental success",
]
_METHOD_NAMES = {"holm": "Holm", "bh": "BH"}


def extra_cells(segment: Segment) -> list[str]:
    """The cells of ``EXTRA_COLUMNS``: corrected p, adjusted lift, always-valid interval, cost per success."""
    s = segment
    p = p_value(s.p_adjusted) if s.p_adjustment else "–"
    if s.p_adjustment and p != "–":
        p += f" ({_METHOD_NAMES.get(s.p_adjustment, s.p_adjustment)})"
    reduction = finite(s.variance_reduction)
    open_window = s.reading != "final"
    return [
        s.key if s.dimension != "overall" else "all",
        p,
        lift_points(s.adjusted_lift),
        "–" if reduction is None else f"{reduction * 100:.0f}%",
        lift_points(s.sequence) if open_window else "–",
        s.reading + (f" (window open until {s.window_closes})" if open_window and s.window_closes else ""),
        with_ci(s.cost_per_incremental, lambda v: money(v, 2)),
    ]


def warnings(report: SuccessReport) -> list[str]:
    """Sample-ratio mismatches: shown before anything else."""
    return [c.message for c in getattr(report, "sample_ratios", []) if c.mismatch]


def reading_line(report: SuccessReport) -> str | None:
    """While a window is open: may the overall result already be read? None once every window is closed."""
    overall = report.overall()
    if overall.reading == "final":
        return None
    seq = overall.sequence
    interval = (
        "none yet"
        if finite(seq.low) is None or finite(seq.high) is None
        else f"{lift_points(seq).split(' ', 1)[1]} points"
    )
    if overall.reading == "may be read":
        return (
            f"The success window is open until {overall.window_closes}, and the result may already be read: "
            f"the interval valid under repeated looks, {interval}, excludes 0."
        )
    return (
        f"Too early to read: the success window is open until {overall.window_closes} and the interval valid "
        f"under repeated looks, {interval}, still includes 0. Do not act on the p-value before the window closes."
    )


# ---------------------------------------------------------------------------------------------
# terminal

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


# ---------------------------------------------------------------------------------------------
# Prefect artifacts

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


# ---------------------------------------------------------------------------------------------
# HTML page and charts

BLUE, ORANGE, GREEN, VERMILLION, GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#6b6b6b"
LIFT_DIMENSIONS = ("overall", "channel", "variant")
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "font.size": 12,
    "legend.fontsize": 12,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "axes.labelsize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
CHART_WIDTH = 4.8
"""Inches (72 SVG units each): narrow, so the 12-unit text stays above 10 px when a 420 px screen
shrinks the chart to its width; on wide screens a chart is shown at most at its natural size."""
_ids = itertools.count(1)


def nan_if_none(x: float | None) -> float:
    x = finite(x)
    return math.nan if x is None else x


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _label(text: str, limit: int = 40) -> str:
    """A chart label from data: shortened, and ``$`` escaped so it is never mathtext."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _svg(fig: Figure, title: str, description: str) -> str:
    """The figure as an inline ``<svg>`` with role, title and description."""
    buf = io.StringIO()
    with mpl.rc_context(_RC):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    end = svg.index(">") + 1
    n = next(_ids)
    opening = svg[:end]
    # reflow: the width follows the page (at most the natural size), the height the viewBox's ratio
    natural = re.search(r'width="([0-9.]+)pt"', opening)
    opening = re.sub(r'\s(width|height)="[^"]*"', "", opening)
    limit = f' style="max-width:{float(natural.group(1)) * 4 / 3:.0f}px"' if natural else ""
    opening = opening.replace(
        "<svg", f'<svg width="100%"{limit} role="img" aria-labelledby="chart{n}-title chart{n}-desc"', 1
    )
    return (
        opening
        + f'<title id="chart{n}-title">{_e(title)}</title><desc id="chart{n}-desc">{_e(description)}</desc>'
        + svg[end:]
    )


def _figure(title: str, caption: str, svg: str | None, why: str | None = None) -> str:
    body = svg if svg is not None else f'<p class="nochart">{_e(why or "")}</p>'
    return f"<figure><h3>{_e(title)}</h3>{body}<figcaption>{_e(caption)}</figcaption></figure>"


# ---------------------------------------------------------------------------------------------
# charts


def lift_chart(report: SuccessReport) -> str:
    """Absolute lift per segment (overall, channels, variants) with 95% CIs."""
    title = "Lift per channel and A/B variant"
    caption = (
        "Absolute lift in percentage points (treated minus control success rate) with its "
        "95% confidence interval. Filled: significant; hollow: not significant."
    )
    if no_outcomes(report):
        return _figure(title, caption, None, "No lift chart: no outcomes have been recorded for these waves yet.")
    if no_control(report.overall()):
        return _figure(
            title, caption, None, "No lift chart: the campaign has no control group, so lift cannot be measured."
        )
    rows = [s for s in report.segments if s.dimension in LIFT_DIMENSIONS and finite(s.absolute_lift.value) is not None]
    if not rows:
        return _figure(
            title,
            caption,
            None,
            "No lift chart: no segment has a measurable lift (its control group is empty or too small).",
        )
    rows.sort(key=lambda s: LIFT_DIMENSIONS.index(s.dimension))
    labels = [_label(segment_label(s), 18) for s in rows]
    centres = [_finite_or(s.absolute_lift.value, math.nan) for s in rows]  # finite: rows keeps only those
    values = [c * 100 for c in centres]
    lows = [_finite_or(s.absolute_lift.low, c) * 100 for s, c in zip(rows, centres, strict=True)]
    highs = [_finite_or(s.absolute_lift.high, c) * 100 for s, c in zip(rows, centres, strict=True)]
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(CHART_WIDTH, 0.5 * len(rows) + 2.2), layout="constrained")
        ax = fig.add_subplot()
        ax.axvline(0, color="#222", linewidth=1)
        legend: dict[str, Any] = {}
        for y, (s, v, lo, hi) in enumerate(zip(rows, values, lows, highs, strict=True)):
            kind = verdict(s)
            colour = {"worked": GREEN, "harmed": VERMILLION}.get(kind, GREY)
            name = {"worked": "significant increase", "harmed": "significant decrease"}.get(kind, "not significant")
            handle = ax.errorbar(
                [v],
                [y],
                xerr=[[v - lo], [hi - v]],
                fmt="o",
                color=colour,
                ecolor=colour,
                capsize=4,
                markersize=7,
                markerfacecolor=colour if s.significant else "white",
                markeredgewidth=1.5,
            )
            legend.setdefault(name, handle)
        ax.set_yticks(range(len(rows)), labels)
        ax.invert_yaxis()
        ax.set_xlabel("absolute lift (percentage points)")
        ax.grid(axis="x", color="#ddd", linewidth=0.6)
        fig.legend(list(legend.values()), list(legend.keys()), loc="outside lower center", frameon=False, ncols=1)
    description = "Absolute lift in points with 95% CI: " + "; ".join(
        f"{segment_label(s)} {v:+.1f} ({lo:.1f} to {hi:.1f}){', significant' if s.significant else ''}"
        for s, v, lo, hi in zip(rows, values, lows, highs, strict=True)
    )
    return _figure(title, caption, _svg(fig, title, description))


def trend_chart(report: SuccessReport) -> str:
    """Per wave, in date order: the lift with its CI and the incremental value; open windows marked provisional."""
    title = "Lift and incremental value per wave"
    value_is_money = any(finite(s.incremental_revenue.value) not in (None, 0.0) for s in report.by("wave"))
    unit = f" ({currency(report)})" if value_is_money and currency(report) else ""
    caption = (
        "Top: absolute lift per wave in percentage points with its 95% CI. Bottom: incremental "
        + (f"revenue{unit}" if value_is_money else "successes")
        + " per wave with its 95% CI. Hollow markers and hatched bars: provisional, the wave's success "
        "window is still open."
    )
    waves = [s for s in report.by("wave") if finite(s.absolute_lift.value) is not None and not no_control(s)]
    if no_outcomes(report):
        return _figure(title, caption, None, "No trend yet: no outcomes have been recorded for these waves.")
    if not waves:
        return _figure(
            title, caption, None, "No trend: no wave has a measurable lift (no control group, or no customers)."
        )
    dates = getattr(report, "wave_dates", {}) or {}
    labels = [_label(dates.get(s.key, s.key), 12) for s in waves]
    lift = [_finite_or(s.absolute_lift.value, 0.0) * 100 for s in waves]
    low = [_finite_or(s.absolute_lift.low, v / 100) * 100 for s, v in zip(waves, lift, strict=True)]
    high = [_finite_or(s.absolute_lift.high, v / 100) * 100 for s, v in zip(waves, lift, strict=True)]
    value = [s.incremental_revenue if value_is_money else s.incremental_successes for s in waves]
    centre = [_finite_or(e.value, 0.0) for e in value]
    lows = [_finite_or(e.low, c) for e, c in zip(value, centre, strict=True)]
    highs = [_finite_or(e.high, c) for e, c in zip(value, centre, strict=True)]
    open_ = [provisional(s) for s in waves]
    xs = list(range(len(waves)))
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(CHART_WIDTH, 6.0), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.axhline(0, color="#222", linewidth=1)
        top.plot(xs, lift, color=BLUE, linewidth=1.2, alpha=0.6)
        for x, v, lo, hi, o in zip(xs, lift, low, high, open_, strict=True):
            top.errorbar(
                [x],
                [v],
                yerr=[[v - lo], [hi - v]],
                fmt="o",
                color=GREY if o else BLUE,
                capsize=4,
                markersize=7,
                markerfacecolor="white" if o else BLUE,
                markeredgewidth=1.5,
            )
        top.set_ylabel("lift (points)")
        top.grid(axis="y", color="#ddd", linewidth=0.6)
        bars = bottom.bar(
            xs,
            centre,
            0.6,
            yerr=[
                [c - lo for c, lo in zip(centre, lows, strict=True)],
                [hi - c for c, hi in zip(centre, highs, strict=True)],
            ],
            color=[("white" if o else GREEN) for o in open_],
            edgecolor=[(GREY if o else GREEN) for o in open_],
            hatch=None,
            capsize=4,
            ecolor="#444",
        )
        for bar, o in zip(bars, open_, strict=True):
            if o:
                bar.set_hatch("//")
        bottom.axhline(0, color="#222", linewidth=1)
        bottom.set_ylabel(("incr. revenue" + unit) if value_is_money else "incr. successes")
        bottom.grid(axis="y", color="#ddd", linewidth=0.6)
        bottom.set_xticks(xs, labels, rotation=45 if len(xs) > 3 else 0, ha="right" if len(xs) > 3 else "center")
        bottom.set_xlabel("wave date" + ("; hollow/hatched: provisional" if any(open_) else ""))
    description = "Per wave: " + "; ".join(
        f"{dates.get(s.key, s.key)} ({s.key}) lift {v:+.2f} points ({lo:.2f} to {hi:.2f}), incremental "
        + ("revenue " if value_is_money else "successes ")
        + f"{c:,.0f}{', provisional' if o else ''}"
        for s, v, lo, hi, c, o in zip(waves, lift, low, high, centre, open_, strict=True)
    )
    return _figure(title, caption, _svg(fig, title, description))


def curve_chart(report: SuccessReport) -> str:
    """Cumulative success rate by days since contact, treated against control."""
    title = "Cumulative success rate by days since contact"
    caption = "Share of customers with a success by the given day after their contact."
    if no_outcomes(report):
        return _figure(title, caption, None, "No response curve: no outcomes have been recorded for these waves yet.")
    if not report.curve:
        return _figure(
            title,
            caption,
            None,
            "No response curve: no contact has reached its first day yet, or nothing was recorded.",
        )
    rates = [finite(r) for p in report.curve for r in (p.treated_rate, p.control_rate)]
    if len(report.curve) < 2:
        return _figure(
            title,
            caption,
            None,
            "No response curve: every success is dated on the day of contact (imported results carry no "
            "dates), so there is nothing to draw over days; the rates are in the table.",
        )
    if not any(r for r in rates if r is not None):
        return _figure(
            title,
            caption,
            None,
            "No response curve: no success has a recorded day after the contact "
            "(imported results have outcomes without dates, or nobody succeeded yet).",
        )
    days = [p.day for p in report.curve]
    treated = [nan_if_none(p.treated_rate) for p in report.curve]
    has_control = any(finite(p.control_rate) is not None for p in report.curve) and not no_control(report.overall())
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(CHART_WIDTH, 3.8), layout="constrained")
        ax = fig.add_subplot()
        ax.step(days, treated, where="post", color=BLUE, linewidth=2, label="treated")
        if has_control:
            control = [nan_if_none(p.control_rate) for p in report.curve]
            ax.step(days, control, where="post", color=ORANGE, linewidth=2, linestyle="--", label="control")
        if report.window_days is not None:
            ax.axvline(
                report.window_days, color=GREY, linewidth=1, linestyle=":", label=f"window ({report.window_days} days)"
            )
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        ax.set_xlabel("days since contact")
        ax.set_ylabel("cumulative rate")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color="#ddd", linewidth=0.6)
        ax.legend(loc="upper left", frameon=False)
    last = report.curve[-1]
    description = f"By day {last.day}: treated {pct(last.treated_rate)}"
    description += f", control {pct(last.control_rate)}." if has_control else "; no control group."
    if not has_control:
        caption += " Only the treated rate is shown: there is no control group."
    return _figure(title, caption, _svg(fig, title, description))


def gains_chart(report: SuccessReport) -> str:
    """Success rate per score decile, and the cumulative share of incremental successes."""
    title = "Gains by score decile"
    caption = (
        "Top: success rate of treated and control customers per score decile (1 = best "
        "scores). Bottom: cumulative share of the incremental successes in deciles 1 to n; "
        "the dotted diagonal is what random targeting would give."
    )
    if not report.gains:
        return _figure(
            title, caption, None, "No gains chart: the customers have no scores, so there are no score deciles."
        )
    if no_outcomes(report):
        return _figure(title, caption, None, "No gains chart: no outcomes have been recorded for these waves yet.")
    gains = sorted(report.gains, key=lambda g: g.decile)
    if not any(finite(r) for g in gains for r in (g.treated_rate, g.control_rate)):
        return _figure(title, caption, None, "No gains chart: no customer in any score decile has succeeded yet.")
    deciles = [g.decile for g in gains]
    has_control = any(finite(g.control_rate) is not None for g in gains) and not no_control(report.overall())
    shares = [finite(g.cumulative_share_of_incremental) for g in gains]
    has_share = has_control and any(s is not None for s in shares)
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(CHART_WIDTH, 6.4) if has_share else (CHART_WIDTH, 3.6), layout="constrained")
        axes = fig.subplots(2 if has_share else 1, 1, squeeze=False)[:, 0]
        ax = axes[0]
        width = 0.4 if has_control else 0.7
        offset = width / 2 if has_control else 0
        ax.bar(
            [d - offset for d in deciles],
            [nan_if_none(g.treated_rate) for g in gains],
            width,
            color=BLUE,
            label="treated",
        )
        if has_control:
            ax.bar(
                [d + offset for d in deciles],
                [nan_if_none(g.control_rate) for g in gains],
                width,
                color=ORANGE,
                hatch="//",
                edgecolor="white",
                label="control",
            )
        ax.set_xticks(deciles)
        ax.set_xlabel("score decile (1 = best)")
        ax.set_ylabel("success rate")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        ax.legend(frameon=False)
        if has_share:
            ax2 = axes[1]
            points = [(0, 0.0)] + [(d, s) for d, s in zip(deciles, shares, strict=True) if s is not None]
            ax2.plot(
                [p[0] for p in points], [p[1] for p in points], marker="o", color=GREEN, linewidth=2, label="campaign"
            )
            top = max(deciles)
            ax2.plot([0, top], [0, 1], color=GREY, linestyle=":", label="random")
            ax2.axhline(0, color="#222", linewidth=0.8)
            ax2.set_xticks(deciles)
            ax2.set_xlabel("deciles 1 to n")
            ax2.set_ylabel("share of incr. successes")
            ax2.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax2.legend(frameon=False)
    description = (
        "Per decile, treated rate"
        + (" / control rate" if has_control else "")
        + ": "
        + "; ".join(
            f"{g.decile}: {pct(g.treated_rate)}" + (f" / {pct(g.control_rate)}" if has_control else "") for g in gains
        )
    )
    if has_share:
        description += ". Cumulative share of incremental successes: " + "; ".join(
            f"{d}: {pct(s, 0)}" for d, s in zip(deciles, shares, strict=True) if s is not None
        )
    if not has_control:
        caption = (
            "Success rate of treated customers per score decile (1 = best scores). No control "
            "rates or incremental successes: there is no control group."
        )
    return _figure(title, caption, _svg(fig, title, description))


# ---------------------------------------------------------------------------------------------
# page


MAIN_CELLS = (0, 1, 2, 3, 4, 5, 7, 8, 10, 11, 12)  # of ``cells``: results, cost and ROI first
DETAIL_CELLS = (0, 6, 9)  # then relative lift and revenue per customer, with ``EXTRA_COLUMNS``
_MONEY_CELLS = (10, 11)


def _heading(report: SuccessReport, i: int) -> str:
    code = currency(report)
    return f"{COLUMNS[i]} ({code})" if code and i in _MONEY_CELLS else COLUMNS[i]


def _table(report: SuccessReport, columns: list[str], rows_of, numeric) -> str:
    """A table that stacks on narrow screens: every cell carries its column's name (``data-label``)."""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)
    body = []
    for _dimension, heading, segments in by_dimension(report):
        body.append(f'<tr class="group"><th scope="rowgroup" colspan="{len(columns)}">{_e(heading)}</th></tr>')
        for s in segments:
            kind = verdict(s).replace(" ", "-") + (" provisional" if provisional(s) else "")
            tds = []
            for i, (label, c) in enumerate(zip(columns, rows_of(s), strict=True)):
                cls = ("num " if i in numeric else "") + _slug(label)
                tag = 'th scope="row"' if i == 0 else "td"
                tds.append(f'<{tag} class="{cls}" data-label="{_e(label)}">{_e(c)}</{tag.split()[0]}>')
            body.append(f'<tr class="{kind}">{"".join(tds)}</tr>')
    return f'<table class="stack"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _slug(label: str) -> str:
    return "c-" + re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _segments_table(report: SuccessReport) -> str:
    """Results, cost and ROI (one table), then the statistical details (a second one)."""
    main = [_heading(report, i) for i in MAIN_CELLS] + ["Status", "Flags"]

    def main_row(s: Segment) -> list[str]:
        c = cells(s)
        status = provisional_text(s) or "final"
        return [c[i] for i in MAIN_CELLS] + [status, ", ".join(s.flags)]

    detail = [COLUMNS[i] for i in DETAIL_CELLS] + EXTRA_COLUMNS[1:]

    def detail_row(s: Segment) -> list[str]:
        c = cells(s)
        return [c[i] for i in DETAIL_CELLS] + extra_cells(s)[1:]

    return (
        _table(report, main, main_row, set(range(1, len(MAIN_CELLS))))
        + "<h3>Details: relative lift, revenue per customer, corrected and adjusted</h3>"
        + _table(report, detail, detail_row, set(range(1, len(detail) - 2)) | {len(detail) - 1})
    )


def _flags(report: SuccessReport) -> str:
    items = [f"<li><b>{_e(segment_label(s))}</b>: {_e(', '.join(s.flags))}</li>" for s in report.segments if s.flags]
    if not items:
        return ""
    return f'<section class="flags"><h2>Flags</h2><ul>{"".join(items)}</ul></section>'


def _notes(report: SuccessReport) -> str:
    if not report.notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    return f'<section class="notes" role="note"><h2>Notes</h2><ul>{items}</ul></section>'


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;background:#f4f4f6;color:#1a1a1a;line-height:1.4;font-size:16px}
section,figure{background:#fff;padding:1rem 1.5rem;margin:0 0 1.5rem;border-radius:8px;box-shadow:0 1px 3px #0002}
.headline{border-left:8px solid #6b6b6b}.headline p.result{font-size:1.4rem;font-weight:600;margin:.2rem 0 .6rem}
.headline.worked{border-color:#009E73}.headline.harmed{border-color:#D55E00}.headline.unmeasured{border-color:#E69F00}
.notes,.flags{border-left:8px solid #E69F00;background:#fff8e6}
.sub,.stamp{color:#444}.stamp{font-size:.9rem}.nochart{font-style:italic;color:#444}
figure svg{display:block;height:auto}figcaption{color:#444;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;width:100%}
th,td{padding:.3rem .5rem;border-bottom:1px solid #e4e4e8;text-align:left;vertical-align:top}
thead th{font-size:.8rem;color:#333}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.group th{background:#eef;font-size:.95rem}
tr.worked td.c-lift-points-95-ci,tr.worked td.c-roi{color:#00704f;font-weight:700}
tr.harmed td.c-lift-points-95-ci,tr.harmed td.c-roi{color:#b13c00;font-weight:700}
tr.provisional td.c-status{color:#8a5a00;font-weight:600}td.c-flags{color:#8a5a00}
.srm{border-left:8px solid #D55E00;background:#fdecea;font-weight:600}
.reading{border-left:8px solid #0072B2}.reading.early{border-color:#E69F00;background:#fff8e6;font-weight:600}
@media (max-width:720px){
body{margin:.5rem}section,figure{padding:.6rem .7rem;margin-bottom:1rem}
h1{font-size:1.4rem}.headline p.result{font-size:1.15rem}
table.stack,table.stack tbody,table.stack tr,table.stack th,table.stack td{display:block;width:auto}
table.stack thead,table.stack td:empty{display:none}
table.stack tr{border-bottom:2px solid #c8c8d0;padding:.3rem 0}
table.stack tr.group{border:0}
table.stack td,table.stack tbody th[scope=row]{display:flex;justify-content:space-between;gap:.8rem;
border:0;padding:.15rem .2rem;text-align:right;white-space:normal;overflow-wrap:anywhere}
table.stack td::before,table.stack tbody th[scope=row]::before{content:attr(data-label);font-weight:600;
text-align:left;color:#333;flex:0 0 45%}
}
"""


def _methods(report: SuccessReport) -> str:
    methods = getattr(report, "methods", None) or {}
    alpha = getattr(report, "alpha", 0.05)
    items = "".join(f"<li><b>{_e(k.replace('_', ' '))}</b>: {_e(v)}</li>" for k, v in methods.items())
    return (
        f'<section class="methods"><h2>Methods</h2><p>Significant: p &lt; {_e(f"{alpha:g}")}. '
        f"Intervals are 95% confidence intervals.</p><ul>{items}</ul></section>"
    )


def _warnings(report: SuccessReport) -> str:
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings(report))
    if not items:
        return ""
    return f'<section class="srm" role="alert"><h2>Sample ratio mismatch</h2><ul>{items}</ul></section>'


def _reading(report: SuccessReport) -> str:
    line = reading_line(report)
    if line is None:
        return ""
    kind = "early" if report.overall().reading == "too early" else "ready"
    return f'<section class="reading {kind}" role="status"><p>{_e(line)}</p></section>'


def render_html(report: SuccessReport) -> str:
    """The whole page as a string."""
    kind = verdict(report.overall()).replace(" ", "-")
    facts = "".join(f"<li>{_e(line)}</li>" for line in details(report))
    charts = trend_chart(report) + lift_chart(report) + curve_chart(report) + gains_chart(report)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Success of {_e(report.campaign)}</title><style>{_CSS}</style></head>
<body><main>
<h1>Success of campaign {_e(report.campaign)}</h1>
{_warnings(report)}<section class="headline {kind}"><p class="sub">{_e(subtitle(report))}</p>
<p class="result">{_e(headline(report))}</p><ul>{facts}</ul>
<p class="stamp">{_e(stamp(report)[0].upper() + stamp(report)[1:])}.</p></section>
{_reading(report)}{_notes(report)}{_flags(report)}
<h2>Charts</h2>
{charts}
<h2>All segments</h2>
<section>{_segments_table(report)}</section>
{_methods(report)}
</main></body></html>
"""


def write_html(report: SuccessReport, path: Path) -> Path:
    """Write the report as one self-contained HTML page to ``path`` (folders created)."""
    path = Path(path)
    private_dir(path.parent)
    with private_file(path) as handle:  # 0600, like every file the engine writes
        handle.write(render_html(report).encode("utf-8"))
    return path
