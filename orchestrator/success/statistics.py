"""Statistics for success control: treated customers against the random control group.

Plain functions over counts and arrays; every statistic comes from statsmodels or scipy:

- ``absolute_lift``: the rate difference treated - control with Newcombe's hybrid score interval
  (``statsmodels.stats.proportion.confint_proportions_2indep(method="newcomb")``, built from the
  two Wilson intervals). It stays inside [-1, 1] and is defined when a group has no successes
  or only successes, where the Wald interval collapses to a single point.
- ``relative_lift``: ``treated_rate / control_rate - 1`` with the log risk-ratio interval on
  counts with 0.5 added (``compare="ratio", method="log-adjusted"``, statsmodels' default).
  The interval is finite even with zero successes in a group; the point estimate is None when
  the control group has no successes (the ratio is undefined), the interval is still given.
  The score (Koopman) interval was not chosen: statsmodels returns NaN or complex bounds for it
  at zero or full counts.
- ``compare_proportions``: the two-sided p-value of the pooled two-proportion z-test
  (``proportions_ztest``), or of Fisher's exact test (``scipy.stats.fisher_exact``) when any
  expected cell of the 2x2 table (successes/failures x treated/control) is below 5, where the
  normal approximation is poor. A table without successes (or without failures) has expected
  cells of 0, so it always goes to Fisher, whose p-value is then 1.
- ``mean_with_ci``: a mean with its t interval (``scipy.stats.t.interval`` around the mean with
  ``scipy.stats.sem``; the same as statsmodels' ``DescrStatsW.tconfint_mean``, at a fifth of the
  time on a million values); ``mean_difference``:
  the difference of two means with Welch's interval (``scipy.stats.ttest_ind(equal_var=False)``).
  Groups without variance give the degenerate interval [value, value]; a group of one customer
  gives no interval (None bounds).

- ``sample_ratio_test``: the sample-ratio-mismatch (SRM) check: the observed counts of the arms
  (or variants) against the configured shares, Pearson's chi-squared goodness of fit
  (``scipy.stats.chisquare``); a p-value below ``SRM_ALPHA`` = 0.001 means the split is broken.
- ``adjust_p_values``: p-values corrected for a family of comparisons: Benjamini-Hochberg (false
  discovery rate) with ``statsmodels.stats.multitest.multipletests(method="fdr_bh")``; Holm
  (family-wise error) as the same step-down in numpy (``min(1, max_{j<=i} (m - j + 1) p_(j))``),
  because statsmodels' Holm branch calls ``gc.collect()``, which costs 0.1-0.4 s per call in a
  large process; both are checked against ``multipletests`` in the tests. None values stay None
  and are not counted in the family.
- ``cost_per_incremental``: cost divided by the incremental successes, with the interval of
  the incremental successes inverted (the cost is known, so the map is monotone and the
  interval exact); no upper bound when the incremental successes' interval reaches 0.

Undefined values are None, never NaN: a lift needs at least one treated and one control customer.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import chisquare, fisher_exact, sem, ttest_ind
from scipy.stats import t as t_distribution
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

__all__ = [
    "ABSOLUTE_LIFT_METHOD",
    "FISHER_MIN_EXPECTED",
    "P_ADJUSTMENTS",
    "RELATIVE_LIFT_METHOD",
    "SRM_ALPHA",
    "Estimate",
    "SampleRatio",
    "TestResult",
    "absolute_lift",
    "adjust_p_values",
    "compare_proportions",
    "cost_per_incremental",
    "expected_cells",
    "mean_difference",
    "mean_with_ci",
    "rate",
    "relative_lift",
    "return_on_cost",
    "sample_ratio_test",
    "scaled",
]

ABSOLUTE_LIFT_METHOD = "newcomb"  # statsmodels' name for Newcombe's hybrid score interval
RELATIVE_LIFT_METHOD = "log-adjusted"
FISHER_MIN_EXPECTED = 5.0  # below this expected cell count the z-test gives way to Fisher's exact test
SRM_ALPHA = 0.001  # a sample ratio mismatch is flagged below this p-value (as GrowthBook, Optimizely, Microsoft ExP)
P_ADJUSTMENTS = {  # our name -> (statsmodels' method, what it controls)
    "holm": ("holm", "Holm step-down, family-wise error rate"),
    "bh": ("fdr_bh", "Benjamini-Hochberg, false discovery rate"),
}


@dataclass
class Estimate:
    """A point estimate with its confidence interval; None where it is not defined."""

    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def missing(cls) -> Estimate:
        return cls(None, None, None)


@dataclass(frozen=True)
class TestResult:
    """A two-sided p-value and the test that gave it: ``"z"`` or ``"fisher"`` (None: no test)."""

    __test__ = False  # not a pytest test class

    p_value: float | None
    test: str | None


def rate(successes: int, n: int) -> float | None:
    """``successes / n``, None for an empty group."""
    _check_counts(successes, n, "rate")
    return successes / n if n else None


def absolute_lift(
    treated_successes: int, treated: int, control_successes: int, control: int, alpha: float = 0.05
) -> Estimate:
    """Rate difference treated - control with Newcombe's hybrid score interval."""
    _check_pair(treated_successes, treated, control_successes, control, "absolute_lift")
    if not treated or not control:
        return Estimate.missing()
    value = treated_successes / treated - control_successes / control
    with _quiet():
        low, high = confint_proportions_2indep(
            treated_successes,
            treated,
            control_successes,
            control,
            method=ABSOLUTE_LIFT_METHOD,
            compare="diff",
            alpha=alpha,
        )
    return Estimate(float(value), _number(low), _number(high))


def relative_lift(
    treated_successes: int, treated: int, control_successes: int, control: int, alpha: float = 0.05
) -> Estimate:
    """``treated_rate / control_rate - 1`` with the log risk-ratio interval (0.5 added to counts)."""
    _check_pair(treated_successes, treated, control_successes, control, "relative_lift")
    if not treated or not control:
        return Estimate.missing()
    value = (treated_successes / treated) / (control_successes / control) - 1.0 if control_successes else None
    with _quiet():
        low, high = confint_proportions_2indep(
            treated_successes,
            treated,
            control_successes,
            control,
            method=RELATIVE_LIFT_METHOD,
            compare="ratio",
            alpha=alpha,
        )
    low, high = _number(low), _number(high)
    return Estimate(value, None if low is None else low - 1.0, None if high is None else high - 1.0)


def expected_cells(treated_successes: int, treated: int, control_successes: int, control: int) -> np.ndarray:
    """Expected counts of the 2x2 table [[treated successes, failures], [control ...]] under no effect."""
    _check_pair(treated_successes, treated, control_successes, control, "expected_cells")
    total = treated + control
    if not total:
        return np.zeros((2, 2))
    successes = treated_successes + control_successes
    rows = np.array([treated, control], dtype=float)
    cols = np.array([successes, total - successes], dtype=float)
    return np.outer(rows, cols) / total


def compare_proportions(
    treated_successes: int,
    treated: int,
    control_successes: int,
    control: int,
    min_expected: float = FISHER_MIN_EXPECTED,
) -> TestResult:
    """Two-sided test of equal success rates: pooled z-test, Fisher's exact test for small counts."""
    _check_pair(treated_successes, treated, control_successes, control, "compare_proportions")
    if not treated or not control:
        return TestResult(None, None)
    if expected_cells(treated_successes, treated, control_successes, control).min() < min_expected:
        table = [
            [treated_successes, treated - treated_successes],
            [control_successes, control - control_successes],
        ]
        return TestResult(_number(fisher_exact(table, alternative="two-sided").pvalue), "fisher")
    _, p_value = proportions_ztest(
        np.array([treated_successes, control_successes]),
        np.array([treated, control]),
        alternative="two-sided",
    )
    return TestResult(_number(p_value), "z")


def mean_with_ci(values: np.ndarray, alpha: float = 0.05) -> Estimate:
    """Mean with its t interval; no interval for fewer than two values, none at all for none."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Estimate.missing()
    mean = float(x.mean())
    if x.size < 2:
        return Estimate(mean, None, None)
    se = float(sem(x))
    if se == 0.0:  # all values equal: the interval shrinks to the mean
        return Estimate(mean, mean, mean)
    low, high = t_distribution.interval(1.0 - alpha, x.size - 1, loc=mean, scale=se)
    return Estimate(mean, _number(low), _number(high))


def mean_difference(treated: np.ndarray, control: np.ndarray, alpha: float = 0.05) -> Estimate:
    """Difference of means treated - control with Welch's t interval (unequal variances)."""
    t = np.asarray(treated, dtype=np.float64)
    c = np.asarray(control, dtype=np.float64)
    if t.size == 0 or c.size == 0:
        return Estimate.missing()
    value = float(t.mean() - c.mean())
    if t.size < 2 or c.size < 2:
        return Estimate(value, None, None)
    with _quiet():
        interval = ttest_ind(t, c, equal_var=False).confidence_interval(confidence_level=1.0 - alpha)
    return Estimate(value, _number(interval.low), _number(interval.high))


def scaled(estimate: Estimate, factor: float) -> Estimate:
    """The estimate and its bounds times a fixed ``factor`` (e.g. a lift times the treated count)."""
    if factor < 0:
        raise ValueError(f"The 'factor' parameter of scaled must be >= 0. Got {factor!r} instead.")

    def times(x: float | None) -> float | None:
        return None if x is None else x * factor

    return Estimate(times(estimate.value), times(estimate.low), times(estimate.high))


def return_on_cost(incremental_revenue: Estimate, cost: float) -> Estimate:
    """``(incremental_revenue - cost) / cost`` with the revenue's bounds; all None when cost is 0."""
    if not math.isfinite(cost) or cost < 0:
        raise ValueError(f"The 'cost' parameter of return_on_cost must be finite and >= 0. Got {cost!r} instead.")
    if cost == 0:
        return Estimate.missing()

    def roi(x: float | None) -> float | None:
        return None if x is None else (x - cost) / cost

    return Estimate(roi(incremental_revenue.value), roi(incremental_revenue.low), roi(incremental_revenue.high))


@dataclass(frozen=True)
class SampleRatio:
    """Observed against configured shares of the arms (or variants) of one wave."""

    observed: dict[str, int]
    expected_shares: dict[str, float]
    p_value: float | None

    @property
    def mismatch(self) -> bool:
        return self.p_value is not None and self.p_value < SRM_ALPHA

    def observed_share(self, key: str) -> float | None:
        total = sum(self.observed.values())
        return self.observed[key] / total if total else None


def sample_ratio_test(observed: dict[str, int], expected_shares: dict[str, float]) -> SampleRatio:
    """Chi-squared goodness of fit of the ``observed`` counts to ``expected_shares`` (same keys).

    Shares are normalised to add up to 1. The p-value is None with fewer than two groups or no
    customers. A group expected at share 0 that has customers is a mismatch (p = 0).
    """
    if set(observed) != set(expected_shares):
        raise ValueError(
            f"sample_ratio_test needs the same groups in observed and expected_shares. "
            f"Got {sorted(observed)} and {sorted(expected_shares)} instead."
        )
    for key, n in observed.items():
        if n < 0:
            raise ValueError(f"sample_ratio_test needs counts >= 0. Got {key}={n!r} instead.")
    for key, share in expected_shares.items():
        if not (math.isfinite(share) and share >= 0):
            raise ValueError(f"sample_ratio_test needs shares >= 0. Got {key}={share!r} instead.")
    keys = sorted(observed)
    counts = np.array([observed[k] for k in keys], dtype=np.float64)
    shares = np.array([expected_shares[k] for k in keys], dtype=np.float64)
    total = counts.sum()
    if len(keys) < 2 or total == 0 or shares.sum() <= 0:
        return SampleRatio(dict(observed), dict(expected_shares), None)
    shares = shares / shares.sum()
    if ((shares == 0) & (counts > 0)).any():
        return SampleRatio(dict(observed), dict(expected_shares), 0.0)
    keep = shares > 0
    if keep.sum() < 2:
        return SampleRatio(dict(observed), dict(expected_shares), None)
    result = chisquare(counts[keep], f_exp=shares[keep] * total)
    return SampleRatio(dict(observed), dict(expected_shares), _number(result.pvalue))


def adjust_p_values(p_values: list[float | None], method: str, alpha: float = 0.05) -> list[float | None]:
    """The p-values adjusted for the family of the known ones (``method``: ``holm`` or ``bh``)."""
    if method not in P_ADJUSTMENTS:
        raise ValueError(f"The 'method' parameter of adjust_p_values must be holm or bh. Got {method!r} instead.")
    known = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if not known:
        return out
    values = np.array([p_values[i] for i in known], dtype=np.float64)
    if method == "holm":
        order = np.argsort(values, kind="stable")
        steps = values[order] * np.arange(len(values), 0, -1)
        adjusted = np.empty_like(values)
        adjusted[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    else:
        adjusted = multipletests(values, alpha=alpha, method=P_ADJUSTMENTS[method][0])[1]
    for i, p in zip(known, adjusted, strict=True):
        out[i] = _number(p)
    return out


def cost_per_incremental(cost: float, incremental: Estimate) -> Estimate:
    """``cost / incremental successes`` with the inverted interval; None where nothing was gained for sure."""
    if not math.isfinite(cost) or cost < 0:
        raise ValueError(f"The 'cost' parameter of cost_per_incremental must be finite and >= 0. Got {cost!r}.")
    if cost == 0 or incremental.value is None or incremental.value <= 0:
        return Estimate.missing()
    low = cost / incremental.high if incremental.high is not None and incremental.high > 0 else None
    high = cost / incremental.low if incremental.low is not None and incremental.low > 0 else None
    return Estimate(cost / incremental.value, low, high)


def _number(x: Any) -> float | None:
    """A numpy or Python number as a float; None when it is not finite."""
    value = float(np.real(x))
    return value if math.isfinite(value) else None


@contextmanager
def _quiet() -> Iterator[None]:
    """statsmodels/scipy warn about 0/0 on degenerate tables; those results become None."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _check_counts(successes: int, n: int, where: str) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"{where} needs 0 <= successes <= n. Got successes={successes!r}, n={n!r} instead.")


def _check_pair(ts: int, tn: int, cs: int, cn: int, where: str) -> None:
    for successes, n, arm in ((ts, tn, "treated"), (cs, cn, "control")):
        if n < 0 or successes < 0 or successes > n:
            raise ValueError(
                f"{where} needs 0 <= {arm}_successes <= {arm}. Got {arm}_successes={successes!r}, {arm}={n!r} instead."
            )
