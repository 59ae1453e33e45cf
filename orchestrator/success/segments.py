"""The statistics of each segment of the success report: treated against control within one group of contacts.

Contract (inside the package; ``report.build_report`` is the caller). ``_Data`` holds the campaign's
contacts as arrays (arm, success, revenue, cost, covariates, channel codes, the day each row's window
closes) and ``_Rules`` the report's settings (alpha, the control-size thresholds, ``as_of``, the
planning rate). ``_dimension_segments(dimension, values, data, rules)`` groups the rows by one column
(a missing value is the key ``"none"``; the groups come from one stable argsort of integer codes) and
returns one ``Segment`` per key in report order. ``_segment`` fills one: rates, absolute and relative
lift, the z-test or Fisher's exact test, revenue and incremental revenue, cost, ROI, cost per
incremental success, cost per channel and the flags; then ``_adjust`` adds Lin's regression
adjustment on the covariates (``orchestrator.success.adjustment``) and ``_look`` the window status
and, while ``as_of`` is before the window closes, the always-valid interval
(``orchestrator.success.sequential``). ``_adjust_families`` corrects the p-values within each family
named by ``ADJUSTMENT_OF`` (Holm for channels and variants, Benjamini-Hochberg for score deciles and
every ``by:<column>``); significance and flags follow the adjusted p. ``_by_keys`` gives the keys of a
``by`` breakdown (quintile ranges for a numeric column with more than 10 values). The tests and
intervals come from ``orchestrator.success.statistics``; nothing here reads a database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from orchestrator.success.adjustment import adjusted_effects
from orchestrator.success.report_types import (
    BY_PREFIX,
    FLAG_CONTROL_TOO_SMALL,
    FLAG_NEGATIVE_LIFT,
    FLAG_NO_CONTROL,
    FLAG_NO_TREATED,
    FLAG_NOT_SIGNIFICANT,
    FLAG_RELATIVE_UNDEFINED,
    MISSING_KEY,
    READING_EARLY,
    READING_READY,
    Segment,
)
from orchestrator.success.sequential import DEFAULT_PLANNING_RATE, confidence_sequence
from orchestrator.success.statistics import (
    Estimate,
    absolute_lift,
    adjust_p_values,
    compare_proportions,
    cost_per_incremental,
    mean_difference,
    mean_with_ci,
    rate,
    relative_lift,
    return_on_cost,
    scaled,
)

ADJUSTMENT_OF = {"channel": "holm", "variant": "holm", "score_decile": "bh"}  # and every "by:<column>": bh
_BY_BINS = 5
_BY_MAX_VALUES = 10


@dataclass(frozen=True)
class _Data:
    treated: np.ndarray
    success: np.ndarray
    revenue: np.ndarray
    cost: np.ndarray
    covariates: dict[str, np.ndarray]
    channel_codes: np.ndarray  # per row: index into channel_names
    channel_names: list[str]
    closes: np.ndarray  # per row: the day its wave's window closes (datetime64[D]; NaT: no window)


@dataclass(frozen=True)
class _Rules:
    alpha: float
    min_control: int
    min_expected_control_successes: float
    as_of: date | None = None
    planning_rate: float = DEFAULT_PLANNING_RATE


def _dimension_segments(
    dimension: str,
    values: pd.Series,
    data: _Data,
    rules: _Rules,
    *,
    order: list[str] | None = None,
    shared_control: bool = False,
    skip: str | None = None,
) -> list[Segment]:
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    labels = [str(label) for label in uniques]
    if (codes < 0).any():  # missing values form the key "none"
        codes = np.where(codes < 0, len(labels), codes)
        labels.append(MISSING_KEY)
    if len(set(labels)) != len(labels):
        raise ValueError(f"The {dimension} values of contacts must differ as text. Got {labels!r} instead.")
    groups = _split(codes, len(labels))
    if order is not None:
        ranked = {key: i for i, key in enumerate(order)}
        listing = sorted(range(len(labels)), key=lambda i: (ranked.get(labels[i], len(ranked)), labels[i]))
    else:  # alphabetical, the missing key last
        listing = sorted(range(len(labels)), key=lambda i: (labels[i] == MISSING_KEY, labels[i]))
    all_control = np.flatnonzero(~data.treated) if shared_control else None
    segments = []
    for i in listing:
        if labels[i] == skip:
            continue
        rows = groups[i]
        if all_control is not None:
            rows = np.concatenate([rows[data.treated[rows]], all_control])
            if not data.treated[groups[i]].any():  # only control customers without a variant
                continue
        segments.append(_segment(dimension, labels[i], rows, data, rules))
    return segments


def _split(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row positions of each code, from one stable argsort (ascending positions within a group)."""
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=n_groups)
    return np.split(order, np.cumsum(counts)[:-1])


def _segment(dimension: str, key: str, rows: np.ndarray, data: _Data, rules: _Rules) -> Segment:
    is_treated = data.treated[rows]
    t_rows, c_rows = rows[is_treated], rows[~is_treated]
    nt, nc = int(t_rows.size), int(c_rows.size)
    st, sc = int(data.success[t_rows].sum()), int(data.success[c_rows].sum())
    t_revenue, c_revenue = data.revenue[t_rows], data.revenue[c_rows]
    cost = float(data.cost[t_rows].sum())
    alpha = rules.alpha

    lift = absolute_lift(st, nt, sc, nc, alpha)
    relative = relative_lift(st, nt, sc, nc, alpha)
    tested = compare_proportions(st, nt, sc, nc)
    revenue_lift = mean_difference(t_revenue, c_revenue, alpha)
    incremental_revenue = scaled(revenue_lift, nt)
    significant = tested.p_value is not None and tested.p_value < alpha
    incremental = scaled(lift, nt)

    flags: list[str] = []
    if nc == 0:
        flags.append(FLAG_NO_CONTROL)
    if nt == 0:
        flags.append(FLAG_NO_TREATED)
    if nc and nt:
        pooled = (st + sc) / (nt + nc)
        if nc < rules.min_control or nc * pooled < rules.min_expected_control_successes:
            flags.append(FLAG_CONTROL_TOO_SMALL)
        flags += _significance_flags(significant, lift.value)
        if sc == 0:
            flags.append(FLAG_RELATIVE_UNDEFINED)

    segment = Segment(
        dimension=dimension,
        key=key,
        treated=nt,
        control=nc,
        treated_successes=st,
        control_successes=sc,
        treated_rate=rate(st, nt),
        control_rate=rate(sc, nc),
        absolute_lift=lift,
        relative_lift=relative,
        p_value=tested.p_value,
        test=tested.test,
        incremental_successes=incremental,
        revenue_per_treated=mean_with_ci(t_revenue, alpha),
        revenue_per_control=mean_with_ci(c_revenue, alpha),
        revenue_lift=revenue_lift,
        incremental_revenue=incremental_revenue,
        cost=cost,
        roi=return_on_cost(incremental_revenue, cost),
        significant=significant,
        flags=flags,
        cost_per_incremental=cost_per_incremental(cost, incremental),
        costs_by_channel=_costs_by_channel(data, t_rows),
    )
    _adjust(segment, rows, data, alpha)
    _look(segment, rows, data, rules)
    return segment


def _significance_flags(significant: bool, lift: float | None) -> list[str]:
    if not significant:
        return [FLAG_NOT_SIGNIFICANT]
    return [FLAG_NEGATIVE_LIFT] if lift is not None and lift < 0 else []


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a column (missing: the key ``"none"``, last) and the names in code order."""
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    names = [str(u) for u in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(names), codes)
        names.append(MISSING_KEY)
    return np.asarray(codes, dtype=np.int64), names


def _costs_by_channel(data: _Data, t_rows: np.ndarray) -> dict[str, float]:
    sums = np.bincount(data.channel_codes[t_rows], weights=data.cost[t_rows], minlength=len(data.channel_names))
    return {name: float(sums[i]) for i, name in enumerate(data.channel_names) if sums[i] != 0}


def _adjust(segment: Segment, rows: np.ndarray, data: _Data, alpha: float) -> None:
    """Lin's regression adjustment of the lift and the revenue per customer (in place)."""
    if not data.covariates or not segment.treated or not segment.control:
        return
    treated = data.treated[rows]
    covariates = {name: values[rows] for name, values in data.covariates.items()}
    fits = adjusted_effects(
        {"lift": data.success[rows].astype(np.float64), "revenue": data.revenue[rows]}, treated, covariates, alpha
    )
    lift, money = fits["lift"], fits["revenue"]
    if lift.value is not None:
        segment.adjusted_lift = Estimate(lift.value, lift.low, lift.high)
        segment.adjusted_incremental_successes = scaled(segment.adjusted_lift, segment.treated)
        segment.variance_reduction = lift.variance_reduction
    if money.value is not None:
        segment.adjusted_incremental_revenue = scaled(Estimate(money.value, money.low, money.high), segment.treated)
        segment.revenue_variance_reduction = money.variance_reduction


def _look(segment: Segment, rows: np.ndarray, data: _Data, rules: _Rules) -> None:
    """Window status and the always-valid interval of a segment (in place)."""
    closes = data.closes[rows]
    closes = closes[~np.isnat(closes)]
    if not closes.size:
        return
    last = pd.Timestamp(closes.max()).date()
    segment.window_closes = last.isoformat()
    if rules.as_of is None or rules.as_of >= last:
        return
    if segment.treated and segment.control:
        seq = confidence_sequence(
            segment.treated_successes,
            segment.treated,
            segment.control_successes,
            segment.control,
            rules.alpha,
            rules.planning_rate,
        )
        segment.sequence = Estimate(seq.value, seq.low, seq.high)
    low, high = segment.sequence.low, segment.sequence.high
    excludes_zero = low is not None and high is not None and (low > 0 or high < 0)
    segment.reading = READING_READY if excludes_zero else READING_EARLY


def _window_closes(frame: pd.DataFrame, window_days: int | None) -> np.ndarray:
    if window_days is None or not len(frame):
        return np.full(len(frame), np.datetime64("NaT"), dtype="datetime64[D]")
    dates = pd.to_datetime(frame["wave_date"]).dt.tz_localize(None) if len(frame) else frame["wave_date"]
    return (dates + timedelta(days=window_days)).to_numpy(dtype="datetime64[D]")


def _adjust_families(segments: list[Segment], alpha: float) -> None:
    """Adjusted p-values within each corrected dimension; significance and flags follow them (in place)."""
    families: dict[str, list[Segment]] = {}
    for s in segments:
        method = ADJUSTMENT_OF.get(s.dimension) or ("bh" if s.dimension.startswith(BY_PREFIX) else None)
        if method is not None:
            families.setdefault(s.dimension, []).append(s)
    for dimension, members in families.items():
        method = ADJUSTMENT_OF.get(dimension, "bh")
        adjusted = adjust_p_values([s.p_value for s in members], method, alpha)
        for s, p in zip(members, adjusted, strict=True):
            s.p_adjusted, s.p_adjustment = p, method
            if p is None:
                continue
            s.significant = p < alpha
            if s.treated and s.control:
                old = {FLAG_NOT_SIGNIFICANT, FLAG_NEGATIVE_LIFT}
                kept = [f for f in s.flags if f not in old]
                at = kept.index(FLAG_RELATIVE_UNDEFINED) if FLAG_RELATIVE_UNDEFINED in kept else len(kept)
                s.flags = kept[:at] + _significance_flags(s.significant, s.absolute_lift.value) + kept[at:]


def _by_keys(values: pd.Series) -> tuple[pd.Series, list[str] | None]:
    """Keys of a customer column's breakdown: its values, or quintile ranges for a numeric column with many."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique(dropna=True) > _BY_MAX_VALUES:
        bins = pd.qcut(values, _BY_BINS, duplicates="drop")
        labels = [f"[{_short(i.left)}, {_short(i.right)}]" for i in bins.cat.categories]
        keys = pd.Series(np.asarray(bins.cat.codes), index=values.index).map(dict(enumerate(labels)))
        return keys, labels
    keys = values.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return keys, None


def _short(x: float) -> str:
    return f"{x:.4g}"
