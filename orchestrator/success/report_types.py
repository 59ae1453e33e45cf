"""The success report as plain data: what ``report.build_report`` returns and the renderers read.

Contract. A ``SuccessReport`` holds one campaign's report: its ``Segment`` rows (treated against
control within one key of one dimension: one of ``DIMENSIONS`` or ``"by:<column>"``), the per-wave
``SampleRatioCheck`` rows, the cumulative ``CurvePoint`` rows, the ``GainsPoint`` row of each score
decile, and the notes. ``SuccessReport.overall()`` and ``SuccessReport.by(dimension)`` select
segments; ``SuccessReport.to_dict()`` is JSON-safe (NaN and infinities become None, numpy numbers
Python numbers; ``_json_safe`` does the same for any nested data). The constants are the values
these rows carry: a segment's flags (``FLAG_*``), its ``reading`` while the success window is open
(``READING_*``), the arms (``TREATMENT``, ``CONTROL``) and the key of a missing value
(``MISSING_KEY``). Nothing here computes a statistic.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import cast

import numpy as np

from orchestrator.success.statistics import Estimate

__all__ = [
    "BY_PREFIX",
    "CONTROL",
    "DIMENSIONS",
    "FLAG_CONTROL_TOO_SMALL",
    "FLAG_NEGATIVE_LIFT",
    "FLAG_NO_CONTROL",
    "FLAG_NO_TREATED",
    "FLAG_NOT_SIGNIFICANT",
    "FLAG_RELATIVE_UNDEFINED",
    "FLAG_SRM",
    "MISSING_KEY",
    "READING_EARLY",
    "READING_FINAL",
    "READING_READY",
    "TREATMENT",
    "CurvePoint",
    "GainsPoint",
    "SampleRatioCheck",
    "Segment",
    "SuccessReport",
]

DIMENSIONS = ("overall", "wave", "channel", "variant", "score_decile")
TREATMENT, CONTROL = "treatment", "control"
MISSING_KEY = "none"

FLAG_NO_CONTROL = "no control group"
FLAG_NO_TREATED = "no treated customers"
FLAG_CONTROL_TOO_SMALL = "control group too small"
FLAG_NOT_SIGNIFICANT = "not significant"
FLAG_NEGATIVE_LIFT = "negative lift"
FLAG_RELATIVE_UNDEFINED = "relative lift undefined: no control successes"
FLAG_SRM = "sample ratio mismatch"

BY_PREFIX = "by:"
READING_FINAL, READING_READY, READING_EARLY = "final", "may be read", "too early"


@dataclass
class Segment:
    """One row of the report: treated against control within one key of one dimension."""

    dimension: str
    key: str
    treated: int
    control: int
    treated_successes: int
    control_successes: int
    treated_rate: float | None
    control_rate: float | None
    absolute_lift: Estimate
    relative_lift: Estimate
    p_value: float | None
    test: str | None
    incremental_successes: Estimate
    revenue_per_treated: Estimate
    revenue_per_control: Estimate
    revenue_lift: Estimate
    incremental_revenue: Estimate
    cost: float
    roi: Estimate
    significant: bool
    flags: list[str] = field(default_factory=list)
    p_adjusted: float | None = None
    p_adjustment: str | None = None  # "holm" | "bh" | None (not part of a corrected family)
    adjusted_lift: Estimate = field(default_factory=Estimate.missing)
    adjusted_incremental_successes: Estimate = field(default_factory=Estimate.missing)
    variance_reduction: float | None = None
    adjusted_incremental_revenue: Estimate = field(default_factory=Estimate.missing)
    revenue_variance_reduction: float | None = None
    sequence: Estimate = field(default_factory=Estimate.missing)
    reading: str = READING_FINAL
    window_closes: str | None = None
    cost_per_incremental: Estimate = field(default_factory=Estimate.missing)
    costs_by_channel: dict[str, float] = field(default_factory=dict)


@dataclass
class SampleRatioCheck:
    """The sample-ratio-mismatch check of one wave: arms (``what="arms"``) or variants."""

    wave: str
    what: str
    observed: dict[str, int]
    expected_shares: dict[str, float]
    p_value: float | None
    mismatch: bool
    message: str


@dataclass
class CurvePoint:
    """Cumulative success rate of each arm ``day`` days after contact."""

    day: int
    treated_rate: float | None
    control_rate: float | None


@dataclass
class GainsPoint:
    """One score decile (1 = highest scores) of the gains table."""

    decile: int
    treated: int
    treated_rate: float | None
    control_rate: float | None
    uplift: float | None
    cumulative_share_of_incremental: float | None
    control: int = 0
    incremental_successes: float | None = None


@dataclass
class SuccessReport:
    """Everything the renderers show for one campaign."""

    campaign: str
    goal: str
    window_days: int | None
    waves: list[str]
    segments: list[Segment]
    curve: list[CurvePoint]
    gains: list[GainsPoint]
    notes: list[str]
    alpha: float = 0.05
    methods: dict[str, str] = field(default_factory=dict)
    covariates: list[str] = field(default_factory=list)
    sample_ratios: list[SampleRatioCheck] = field(default_factory=list)
    as_of: str | None = None
    window_open: bool = False
    outcome: str | None = None  # imported results: the outcome column that is success (labels follow it)
    wave_dates: dict[str, str] = field(default_factory=dict)  # wave key -> its date (ISO), for the trend
    outcome_events: int | None = None  # outcomes recorded for these waves (None: not known to the caller)
    data_as_of: str | None = None  # when the newest outcome in the data occurred (ISO, UTC)
    currency: str | None = None  # ISO 4217 code of revenue and cost (settings: CAMPAIGN_REPORT_CURRENCY)

    def overall(self) -> Segment:
        for segment in self.segments:
            if segment.dimension == "overall":
                return segment
        raise LookupError(f"The success report of campaign {self.campaign!r} has no overall segment.")

    def by(self, dimension: str) -> list[Segment]:
        """The segments of one dimension, in report order."""
        if dimension not in DIMENSIONS and not dimension.startswith(BY_PREFIX):
            raise ValueError(
                f"dimension must be one of {', '.join(DIMENSIONS)} or {BY_PREFIX}<column>. Got {dimension!r} instead."
            )
        return [s for s in self.segments if s.dimension == dimension]

    def to_dict(self) -> dict:
        """Plain JSON-safe data: NaN and infinities become None, numpy numbers Python numbers."""
        return cast(dict, _json_safe(asdict(self)))  # a dict stays a dict


def _json_safe(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value
