"""The success report's four charts, each one HTML ``<figure>`` with an inline SVG.

Each takes an ``orchestrator.success.report.SuccessReport`` and returns a heading, the chart and a
caption (made by ``chart_svg``); every number comes from the report.

- ``trend_chart``: lift and incremental value per wave over time, provisional waves hollow/hatched;
- ``lift_chart``: absolute lift with its 95% CI for the overall result, every channel and every A/B
  variant, with a zero line;
- ``curve_chart``: cumulative success rate by days since contact, treated against control;
- ``gains_chart``: success rate per score decile, treated against control, and the cumulative share
  of the incremental successes.

A chart that cannot be drawn (no control group, no scores, no outcomes recorded, no dated
successes) is replaced by a sentence saying why. Charts are ``CHART_WIDTH`` inches with 12-unit
text and scale with the page. Each SVG's description lists the plotted numbers; chart labels from
data are shortened and have ``$`` escaped so matplotlib never reads one as mathtext. Colours are the
Okabe-Ito palette, and treated and control also differ by line style and hatching.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from orchestrator.success.chart_svg import (
    BLUE,
    CHART_RC,
    CHART_WIDTH,
    GREEN,
    GREY,
    ORANGE,
    VERMILLION,
    chart_figure,
    inline_svg,
)
from orchestrator.success.formatting import (
    currency,
    finite,
    no_control,
    no_outcomes,
    pct,
    provisional,
    segment_label,
    verdict,
)

if TYPE_CHECKING:
    from orchestrator.success.report_types import SuccessReport


LIFT_DIMENSIONS = ("overall", "channel", "variant")


def _finite_or(x: float | None, fallback: float) -> float:
    """``x`` when it is a finite number, else ``fallback``."""
    known = finite(x)
    return fallback if known is None else known


def nan_if_none(x: float | None) -> float:
    x = finite(x)
    return math.nan if x is None else x


def _label(text: str, limit: int = 40) -> str:
    """A chart label from data: shortened, and ``$`` escaped so it is never mathtext."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def lift_chart(report: SuccessReport) -> str:
    """Absolute lift per segment (overall, channels, variants) with 95% CIs."""
    title = "Lift per channel and A/B variant"
    caption = (
        "Absolute lift in percentage points (treated minus control success rate) with its "
        "95% confidence interval. Filled: significant; hollow: not significant."
    )
    if no_outcomes(report):
        return chart_figure(title, caption, None, "No lift chart: no outcomes have been recorded for these waves yet.")
    if no_control(report.overall()):
        return chart_figure(
            title, caption, None, "No lift chart: the campaign has no control group, so lift cannot be measured."
        )
    rows = [s for s in report.segments if s.dimension in LIFT_DIMENSIONS and finite(s.absolute_lift.value) is not None]
    if not rows:
        return chart_figure(
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
    with mpl.rc_context(CHART_RC):
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
    return chart_figure(title, caption, inline_svg(fig, title, description))


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
        return chart_figure(title, caption, None, "No trend yet: no outcomes have been recorded for these waves.")
    if not waves:
        return chart_figure(
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
    with mpl.rc_context(CHART_RC):
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
    return chart_figure(title, caption, inline_svg(fig, title, description))


def curve_chart(report: SuccessReport) -> str:
    """Cumulative success rate by days since contact, treated against control."""
    title = "Cumulative success rate by days since contact"
    caption = "Share of customers with a success by the given day after their contact."
    if no_outcomes(report):
        return chart_figure(
            title, caption, None, "No response curve: no outcomes have been recorded for these waves yet."
        )
    if not report.curve:
        return chart_figure(
            title,
            caption,
            None,
            "No response curve: no contact has reached its first day yet, or nothing was recorded.",
        )
    rates = [finite(r) for p in report.curve for r in (p.treated_rate, p.control_rate)]
    if len(report.curve) < 2:
        return chart_figure(
            title,
            caption,
            None,
            "No response curve: every success is dated on the day of contact (imported results carry no "
            "dates), so there is nothing to draw over days; the rates are in the table.",
        )
    if not any(r for r in rates if r is not None):
        return chart_figure(
            title,
            caption,
            None,
            "No response curve: no success has a recorded day after the contact "
            "(imported results have outcomes without dates, or nobody succeeded yet).",
        )
    days = [p.day for p in report.curve]
    treated = [nan_if_none(p.treated_rate) for p in report.curve]
    has_control = any(finite(p.control_rate) is not None for p in report.curve) and not no_control(report.overall())
    with mpl.rc_context(CHART_RC):
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
    return chart_figure(title, caption, inline_svg(fig, title, description))


def gains_chart(report: SuccessReport) -> str:
    """Success rate per score decile, and the cumulative share of incremental successes."""
    title = "Gains by score decile"
    caption = (
        "Top: success rate of treated and control customers per score decile (1 = best "
        "scores). Bottom: cumulative share of the incremental successes in deciles 1 to n; "
        "the dotted diagonal is what random targeting would give."
    )
    if not report.gains:
        return chart_figure(
            title, caption, None, "No gains chart: the customers have no scores, so there are no score deciles."
        )
    if no_outcomes(report):
        return chart_figure(title, caption, None, "No gains chart: no outcomes have been recorded for these waves yet.")
    gains = sorted(report.gains, key=lambda g: g.decile)
    if not any(finite(r) for g in gains for r in (g.treated_rate, g.control_rate)):
        return chart_figure(title, caption, None, "No gains chart: no customer in any score decile has succeeded yet.")
    deciles = [g.decile for g in gains]
    has_control = any(finite(g.control_rate) is not None for g in gains) and not no_control(report.overall())
    shares = [finite(g.cumulative_share_of_incremental) for g in gains]
    has_share = has_control and any(s is not None for s in shares)
    with mpl.rc_context(CHART_RC):
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
    return chart_figure(title, caption, inline_svg(fig, title, description))
