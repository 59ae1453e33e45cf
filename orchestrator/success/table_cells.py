"""One row of cells per segment, shared by the terminal, Markdown and HTML tables of the success report.

- ``by_dimension(report)``: ``(dimension, heading, segments)`` in display order: ``DIMENSIONS``
  (overall, wave, channel, variant, score decile), then any other; customer-column breakdowns
  (``--by``) are headed "By <column>".
- ``cells(segment)``: the cells of ``COLUMNS`` (``NUMERIC``: the right-aligned ones; ``LIFT_CELLS``:
  those coloured when the segment is significant).
- ``extra_cells(segment)``: the cells of ``EXTRA_COLUMNS``: the adjusted p-value and its method, the
  regression-adjusted lift and the variance reduction, the always-valid interval while the window
  is open, the reading, the cost per incremental success.

Cells are plain text, formatted by ``orchestrator.success.formatting``; unknown numbers are "–".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.success.formatting import (
    count,
    finite,
    lift_points,
    money,
    no_control,
    p_value,
    pct,
    provisional,
    provisional_text,
    signed_pct,
    value_only,
    with_ci,
)

if TYPE_CHECKING:
    from orchestrator.success.report_types import Segment, SuccessReport


#: Dimensions in the order they are shown, with their headings.
DIMENSIONS: dict[str, str] = {
    "overall": "Overall",
    "wave": "By wave",
    "channel": "By channel",
    "variant": "By A/B variant",
    "score_decile": "By score decile (1 = best scores)",
}


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
