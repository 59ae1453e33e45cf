"""The success report's two curves: cumulative success by day after contact, and the gains by score decile.

Contract. ``_curve(frame, goal, success, treated, window_days)`` returns, for day d = 0 .. the
window (or the last observed day), the share of each arm that succeeded within d days of its wave
date (``days_to_<goal> <= d``; a success on day x counts from day ceil(x)), with the notes it needs:
the conversion curve falls back on the day of the first response when the frame has no
``days_to_conversion``, and successes without a day are counted as missing. ``_gains(deciles)``
turns the score-decile segments (decile 1 = highest scores) into ``GainsPoint`` rows: rates,
uplift, incremental successes and their cumulative share from decile 1, which is None when any
decile's uplift is unknown or the total is not positive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.success.report_types import CurvePoint, GainsPoint, Segment


def _gains(deciles: list[Segment]) -> list[GainsPoint]:
    incremental = [s.incremental_successes.value for s in deciles]
    known = all(x is not None for x in incremental)
    total = sum(incremental) if known else None  # type: ignore[arg-type]
    shares: list[float | None] = [None] * len(deciles)
    if known and total is not None and total > 0:
        cumulative = np.cumsum(np.asarray(incremental, dtype=np.float64)) / total
        shares = [float(x) for x in cumulative]
    return [
        GainsPoint(
            decile=int(s.key),
            treated=s.treated,
            treated_rate=s.treated_rate,
            control_rate=s.control_rate,
            uplift=s.absolute_lift.value,
            cumulative_share_of_incremental=share,
            control=s.control,
            incremental_successes=s.incremental_successes.value,
        )
        for s, share in zip(deciles, shares, strict=True)
    ]


def _curve(
    frame: pd.DataFrame, goal: str, success: np.ndarray, treated: np.ndarray, window_days: int | None
) -> tuple[list[CurvePoint], list[str]]:
    notes: list[str] = []
    column = "days_to_response"
    if goal == "conversion":
        if "days_to_conversion" in frame.columns:
            column = "days_to_conversion"
        else:
            notes.append("the conversion curve counts converted customers from the day of their first response")
    days = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    dated = success & ~np.isnan(days)
    undated = int((success & np.isnan(days)).sum())
    if undated:
        notes.append(f"{undated:,} successes have no day and are missing from the curve")
    if not len(frame):
        return [], notes
    # Day index: a success on day x counts from day ceil(x) on (days <= d).
    day_index = np.ceil(np.clip(days[dated], 0.0, None)).astype(np.int64)
    last = window_days if window_days is not None else (int(day_index.max()) if day_index.size else 0)
    in_window = day_index <= last
    arm_treated = treated[dated][in_window]
    day_index = day_index[in_window]
    n_treated, n_control = int(treated.sum()), int((~treated).sum())

    def cumulative(mask: np.ndarray, n: int) -> list[float | None]:
        if not n:
            return [None] * (last + 1)
        counts = np.bincount(day_index[mask], minlength=last + 1)
        return [float(x) for x in np.cumsum(counts) / n]

    treated_rates = cumulative(arm_treated, n_treated)
    control_rates = cumulative(~arm_treated, n_control)
    curve = [CurvePoint(d, treated_rates[d], control_rates[d]) for d in range(last + 1)]
    return curve, notes
