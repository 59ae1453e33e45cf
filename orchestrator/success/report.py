"""Success control: the report comparing a campaign's treated customers with its random control group.

Contract. ``build_report(contacts, campaign=..., goal=...)`` takes one row per contact of the
campaign's waves (columns in ``REQUIRED_COLUMNS``; the loader fills them from the ledger and the
outcomes) and returns a ``SuccessReport``: plain data that the HTML, chart and terminal renderers
read. It touches no database and never invents a lift:

- Only the arms ``"treatment"`` and ``"control"`` count; other arms are left out (a note says
  how many). Rows of other campaigns in the frame are left out too.
- "Success" is ``responded`` (goal ``"response"``) or ``converted`` (goal ``"conversion"``).
- Segments: ``overall`` (key ``"all"``), one per ``wave`` (in wave-date order), per ``channel``
  and per ``variant`` (when any contact has one; a missing value is the key ``"none"``) and per
  ``score_decile`` (deciles over all contacts with a score, ``orchestrator.targeting.control.score_deciles``,
  so equal scores share a decile; key ``"1"`` = highest scores; skipped when no contact has a score).
  Variants split the treated customers only: when no control customer has a variant, every
  variant is compared with the whole control group.
- Statistics per segment come from ``orchestrator.success.statistics`` (Newcombe interval for the
  absolute lift, log risk ratio for the relative lift, z-test or Fisher's exact test, t and
  Welch intervals for revenue). Incremental successes and revenue are the lift and its bounds
  times the number of treated customers; ROI is ``(incremental revenue - cost) / cost`` with the
  cost (summed over treated customers) taken as known.
- Without control customers a segment's lift, test and incremental fields are None and its flags
  say ``"no control group"``; without treated customers likewise with ``"no treated customers"``.
  Zero successes never fail: rates are 0, the intervals stay defined (see success_stats), the
  relative lift's point estimate is None when the control group has no successes.
- Flags: ``"no control group"``, ``"no treated customers"``, ``"control group too small"``
  (fewer than ``min_control`` = 30 control customers, or fewer than ``min_expected_control_successes``
  = 5 control successes expected when treated and control succeed alike, i.e. control size x
  the segment's pooled success rate: below that the interval is wide and the test has little power),
  ``"not significant"`` (p >= alpha), ``"negative lift"`` (significant and below the control
  group), ``"relative lift undefined: no control successes"``.
- Curve: for day d = 0 .. ``window_days`` (or the last observed day), the share of each arm that
  succeeded within d days of its wave date (``days_to_<goal> <= d``). The conversion curve uses a
  ``days_to_conversion`` column when the frame has one, otherwise the day of the first response
  of converted customers.
- Gains: one point per score decile: rates, uplift, and the cumulative share of the incremental
  successes (uplift x treated) summed from decile 1; None when any decile's uplift is unknown or
  the total is not positive.

Beyond the plain comparison (docs/success.md has each method with its formula and reference):

- Regression adjustment (``covariates``: frame columns known before the wave, e.g. ``score`` and
  pre-period columns of the snapshot): per segment, Lin's estimator with HC1 errors
  (``orchestrator.success.adjustment``) of the lift and of the revenue per customer, next to the
  unadjusted ones, with the variance reduction achieved.
- Multiple comparisons: the p-values of the channels and of the variants are Holm-adjusted within
  their dimension, those of the score deciles and of the ``by`` breakdowns Benjamini-Hochberg
  adjusted (``p_adjusted``, ``p_adjustment``); ``significant`` and the flags follow the adjusted p.
  The overall result and each wave are separate questions and stay unadjusted.
- ``by``: breakdowns by customer columns of the frame (dimension ``"by:<column>"``); a numeric
  column with more than 10 values is cut into quintiles (keys ``"[low, high]"``).
- Sample ratio mismatch, per wave: treated against control counts versus the configured control
  share (the contacts' ``arm_propensity``), and the variants against ``variant_shares``;
  chi-squared, flagged below p = 0.001 (``sample_ratios``, flag ``"sample ratio mismatch"``).
- Early looks (``as_of``): a segment whose waves' windows are not all closed by ``as_of`` gets
  the always-valid interval of ``orchestrator.success.sequential`` (``sequence``) and ``reading``
  says ``"too early"`` until that interval excludes 0 (``"may be read"``); ``"final"`` once closed.
- Money: cost per incremental success with its interval, the cost per channel of each segment.

For the renderers: ``outcome`` (imported results: the outcome column that is success, so labels
follow it), ``wave_dates`` (the trend chart's axis), and from the frame's ``attrs`` (set by
``orchestrator.success.data.contact_frame``) ``outcome_events`` (outcomes recorded for the waves;
0 makes the first note ``no_outcomes_message``: none recorded yet and how to import them, instead
of "control group too small") and ``data_as_of`` (when the newest of them occurred). ``currency``
is set by the caller from the settings.

Where each part is: ``report_types`` (the data classes and the flag and reading values),
``segments`` (the statistics of each segment, the regression adjustment and early looks, the
corrected p-values), ``sample_ratios``, ``curves`` (the curve and the gains) and ``notes`` (the
sentences). This module checks the arguments, selects the campaign's rows and puts the report
together.

Speed: the groups of every dimension come from one stable argsort of integer codes (no Python loop
over contacts); the statistics run once per segment. A 1,000,000-contact frame takes about half a
second (``bench/report_bench.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence as Sequence_
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

from orchestrator.success.curves import _curve, _gains
from orchestrator.success.notes import _covariate_notes, _look_notes, _overall_notes
from orchestrator.success.report_types import (
    BY_PREFIX,
    CONTROL,
    READING_FINAL,
    TREATMENT,
    GainsPoint,
    SuccessReport,
)
from orchestrator.success.sample_ratios import _flag_mismatches, _sample_ratios
from orchestrator.success.segments import (
    _adjust_families,
    _by_keys,
    _codes,
    _Data,
    _dimension_segments,
    _Rules,
    _segment,
    _window_closes,
)
from orchestrator.success.sequential import DEFAULT_PLANNING_RATE
from orchestrator.success.statistics import (
    ABSOLUTE_LIFT_METHOD,
    P_ADJUSTMENTS,
    RELATIVE_LIFT_METHOD,
    SRM_ALPHA,
)
from orchestrator.targeting.control import score_deciles

__all__ = [
    "GOALS",
    "REQUIRED_COLUMNS",
    "build_report",
]

GOALS = ("response", "conversion")
REQUIRED_COLUMNS = (
    "campaign",
    "wave",
    "wave_date",
    "channel",
    "variant",
    "arm",
    "score",
    "responded",
    "converted",
    "revenue",
    "cost",
    "days_to_response",
)

_SUCCESS_COLUMN = {"response": "responded", "conversion": "converted"}


def build_report(
    contacts: pd.DataFrame,
    *,
    campaign: str,
    goal: Literal["response", "conversion"] = "response",
    window_days: int | None = None,
    alpha: float = 0.05,
    min_control: int = 30,
    min_expected_control_successes: float = 5.0,
    covariates: Sequence_[str] = (),
    by: Sequence_[str] = (),
    as_of: date | None = None,
    planning_rate: float = DEFAULT_PLANNING_RATE,
    variant_shares: dict[str, float] | None = None,
    outcome: str | None = None,
) -> SuccessReport:
    """The success report of ``campaign`` from its contact-level frame (see the module docstring)."""
    attrs = dict(contacts.attrs)
    _check_arguments(contacts, goal, window_days, alpha, min_control, min_expected_control_successes)
    missing = [c for c in [*covariates, *by] if c not in contacts.columns]
    if missing:
        raise ValueError(
            f"The columns {', '.join(map(repr, missing))} named as covariates or breakdowns are not in the "
            f"contacts frame; it has {', '.join(map(str, contacts.columns))}."
        )
    frame, ignored = _campaign_rows(contacts, campaign)
    treated = (frame["arm"] == TREATMENT).to_numpy()
    success = frame[_SUCCESS_COLUMN[goal]].fillna(False).to_numpy(dtype=bool)
    revenue = frame["revenue"].to_numpy(dtype=np.float64, na_value=0.0)
    cost = frame["cost"].to_numpy(dtype=np.float64, na_value=0.0)
    closes = _window_closes(frame, window_days)
    data = _Data(
        treated,
        success,
        np.nan_to_num(revenue),
        np.nan_to_num(cost),
        {name: pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64) for name in covariates},
        *_codes(frame["channel"]),
        closes,
    )
    rules = _Rules(alpha, min_control, min_expected_control_successes, as_of, planning_rate)

    waves = _wave_order(frame)
    segments = [_segment("overall", "all", np.arange(len(frame)), data, rules)]
    notes: list[str] = []
    segments += _dimension_segments("wave", frame["wave"], data, rules, order=waves)
    if frame["channel"].notna().any():
        segments += _dimension_segments("channel", frame["channel"], data, rules)
        if not frame.loc[~treated, "channel"].notna().any() and (~treated).any():
            notes.append(
                "per-channel lift cannot be measured: control customers have no channel "
                "(the control group was not mirrored onto the channels)"
            )
    if frame.loc[treated, "variant"].notna().any():
        shared = (~treated).any() and not frame.loc[~treated, "variant"].notna().any()
        segments += _dimension_segments("variant", frame["variant"], data, rules, shared_control=shared)
        if shared:
            notes.append("each variant is compared with the whole control group (control customers get no variant)")
    scores = frame["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    scored = ~np.isnan(scores)
    gains: list[GainsPoint] = []
    if scored.any():
        deciles = np.full(len(frame), -1, dtype=np.int64)
        deciles[scored] = 10 - score_deciles(scores[scored])
        decile_segments = _dimension_segments(
            "score_decile", pd.Series(deciles), data, rules, order=[str(d) for d in range(1, 11)], skip="-1"
        )
        segments += decile_segments
        if not scored.all():
            notes.append(f"{int((~scored).sum()):,} contacts without a score are in no score decile")
    else:
        decile_segments = []
        notes.append("no score deciles: the campaign had no scoring model")
    for column in by:
        keys, order = _by_keys(frame[column])
        segments += _dimension_segments(BY_PREFIX + column, keys, data, rules, order=order)
    _adjust_families(segments, alpha)
    gains = _gains([s for s in segments if s.dimension == "score_decile"]) if decile_segments else []
    checks = _sample_ratios(frame, waves, variant_shares)
    _flag_mismatches(segments, checks)

    curve, curve_notes = _curve(frame, goal, success, treated, window_days)
    report = SuccessReport(
        campaign=campaign,
        goal=goal,
        window_days=window_days,
        waves=waves,
        segments=segments,
        curve=curve,
        gains=gains,
        notes=[],
        alpha=alpha,
        methods=_methods(covariates),
        covariates=list(covariates),
        sample_ratios=checks,
        as_of=None if as_of is None else as_of.isoformat(),
        window_open=any(s.reading != READING_FINAL for s in segments if s.dimension == "overall"),
        outcome=outcome,
        wave_dates=_wave_dates(frame),
        outcome_events=attrs.get("outcome_events"),
        data_as_of=attrs.get("data_as_of"),
    )
    report.notes = (
        [c.message for c in checks if c.mismatch]
        + _overall_notes(report, ignored, min_control, min_expected_control_successes)
        + _look_notes(report)
        + notes
        + _covariate_notes(segments, covariates)
        + curve_notes
    )
    if not any(c.p_value is not None for c in checks if c.what == "arms") and len(frame):
        report.notes.append(
            "no sample-ratio check: the configured control share of these contacts is not recorded "
            "(imported results, or waves recorded before the ledger kept propensities)"
        )
    return report


def _methods(covariates: Sequence_[str]) -> dict[str, str]:
    methods = {
        "absolute_lift": f"Newcombe hybrid score interval (statsmodels '{ABSOLUTE_LIFT_METHOD}')",
        "relative_lift": f"log risk ratio, 0.5 added to counts (statsmodels '{RELATIVE_LIFT_METHOD}')",
        "p_value": "two-sided pooled two-proportion z-test; Fisher's exact test when an expected cell < 5",
        "revenue": "t interval of the mean; Welch interval for the difference of means",
        "adjusted_p": (
            f"channels and variants: {P_ADJUSTMENTS['holm'][1]}; score deciles and customer breakdowns: "
            f"{P_ADJUSTMENTS['bh'][1]} (statsmodels multipletests); overall and waves unadjusted"
        ),
        "sample_ratio": f"chi-squared goodness of fit of arm and variant counts to the configured shares, "
        f"flagged at p < {SRM_ALPHA:g}",
        "sequence": "always-valid interval for looks while the window is open: two-sided normal-mixture "
        "confidence sequence (Howard et al. 2021)",
        "roi": "(incremental revenue - cost) / cost with the incremental revenue's interval, cost known; "
        "cost per incremental success with the inverted interval of the incremental successes",
    }
    if covariates:
        methods["adjusted_lift"] = (
            f"Lin's regression adjustment on {', '.join(covariates)} (treatment x centred covariates, HC1 errors)"
        )
    return methods


# --- input ------------------------------------------------------------------------------------


def _check_arguments(
    contacts: pd.DataFrame,
    goal: str,
    window_days: int | None,
    alpha: float,
    min_control: int,
    min_expected: float,
) -> None:
    def fail(name: str, expected: str, got: object) -> None:
        raise ValueError(f"The {name!r} parameter of build_report must be {expected}. Got {got!r} instead.")

    if not isinstance(contacts, pd.DataFrame):
        fail("contacts", "a pandas DataFrame", type(contacts).__name__)
    missing = [c for c in REQUIRED_COLUMNS if c not in contacts.columns]
    if missing:
        fail(
            "contacts",
            f"a frame with the columns {', '.join(REQUIRED_COLUMNS)}; missing {', '.join(missing)}",
            list(contacts.columns),
        )
    if goal not in GOALS:
        fail("goal", " or ".join(repr(g) for g in GOALS), goal)
    if window_days is not None and (
        isinstance(window_days, bool) or not isinstance(window_days, int | np.integer) or window_days < 0
    ):
        fail("window_days", "None or an int >= 0", window_days)
    if not (isinstance(alpha, float | int) and 0.0 < alpha < 1.0):
        fail("alpha", "in (0, 1)", alpha)
    if isinstance(min_control, bool) or not isinstance(min_control, int) or min_control < 0:
        fail("min_control", "an int >= 0", min_control)
    if not (isinstance(min_expected, float | int) and math.isfinite(min_expected) and min_expected >= 0):
        fail("min_expected_control_successes", "a number >= 0", min_expected)


def _campaign_rows(contacts: pd.DataFrame, campaign: str) -> tuple[pd.DataFrame, int]:
    """The campaign's treatment and control rows, and how many rows of other arms were left out."""
    frame = contacts
    names = contacts["campaign"]
    if len(contacts) and not (names == campaign).all():
        if not (names == campaign).any():
            found = sorted(str(x) for x in names.dropna().unique()[:5])
            raise ValueError(
                f"contacts has no rows of campaign {campaign!r}; it holds {', '.join(map(repr, found))}. "
                f"Pass the campaign the frame was loaded for."
            )
        frame = contacts[(names == campaign).to_numpy()]
    arms = frame["arm"].isin((TREATMENT, CONTROL)).to_numpy()
    ignored = int((~arms).sum())
    if ignored:
        frame = frame[arms]
    return frame.reset_index(drop=True), ignored


def _wave_dates(frame: pd.DataFrame) -> dict[str, str]:
    if not len(frame):
        return {}
    dates = pd.to_datetime(frame["wave_date"]).groupby(frame["wave"].astype(str)).min().dropna()
    return {str(k): pd.Timestamp(v).date().isoformat() for k, v in dates.items()}


def _wave_order(frame: pd.DataFrame) -> list[str]:
    if not len(frame):
        return []
    waves = pd.DataFrame({"wave": frame["wave"], "date": pd.to_datetime(frame["wave_date"])})
    first = waves.groupby("wave", sort=True)["date"].min().reset_index()  # missing waves left out
    first["wave"] = first["wave"].astype(str)
    return first.sort_values(["date", "wave"], na_position="last", kind="stable")["wave"].tolist()
