"""The success report as plain text: numbers, the headline and the lines around it.

Formats an ``orchestrator.success.report.SuccessReport`` (or one of its segments); every number
comes from the report, nothing is recomputed. Shared by ``terminal``, ``artifacts``, ``charts``,
``html_page`` and ``global_render``, which escape the text for their medium.

- Numbers: ``finite`` (None, NaN and infinities are "not known", shown as "–"), ``pct``,
  ``signed_pct``, ``p_value``, ``money``, ``count``, ``points``; for an ``Estimate``, ``with_ci``
  (``value [low, high]``), ``value_only`` and ``lift_points``. Rates and absolute lifts in the report
  are shares (0.021) and are shown as percent and percentage points; relative lift and ROI are
  ratios, shown as percent. Rates and lifts below 1% (one point) get one decimal more.
- Segments: ``no_control``, ``verdict`` (``worked``, ``harmed``, ``not significant`` or
  ``unmeasured``: for colours and classes), ``provisional`` and ``provisional_text`` (the success
  window is still open, the result may change), ``segment_label``.
- ``headline(report)``: the overall lift in plain words, e.g.
  ``+2.1 points (95% CI 0.8 to 3.4), p = 0.002: the campaign worked.``; ``details(report)``: the
  lines under it (rates, incremental successes and revenue, cost and ROI); ``subtitle``; ``stamp``
  (the "data as of" line); ``currency`` and ``amount`` (money with the report's currency).
  Labels follow the report's success: the imported outcome (``--outcome visit``) or the goal.
- ``warnings(report)``: the sample-ratio mismatches, shown first and loudly everywhere;
  ``reading_line(report)``: while a success window is open, whether the result may already be
  read (None once every window is closed).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.success.report_types import Segment, SuccessReport
    from orchestrator.success.statistics import Estimate


NO_CONTROL = "no control group"


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


def no_outcomes(report: SuccessReport) -> bool:
    """Whether no outcome at all has been recorded for the report's waves yet (not: none counted as success)."""
    overall = report.overall()
    return getattr(report, "outcome_events", None) == 0 and overall.treated + overall.control > 0


def headline(report: SuccessReport) -> str:
    """The overall result in one sentence of plain words."""
    overall = report.overall()
    if no_outcomes(report):
        from orchestrator.success.notes import no_outcomes_message

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


def segment_label(segment: Segment) -> str:
    return "all customers" if segment.dimension == "overall" else f"{segment.dimension} {segment.key}"


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
