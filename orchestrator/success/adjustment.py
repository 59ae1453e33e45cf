"""Regression-adjusted treatment effects (CUPED / CUPAC): Lin's estimator with robust errors.

``adjusted_effect(y, treated, covariates)`` estimates the average effect of the treatment on
``y`` (a success indicator or a revenue per customer) from the ordinary least squares fit

    y = a + tau * T + b' (X - mean X) + g' T (X - mean X) + e

where ``T`` is 1 for treated customers and ``X`` holds pre-treatment covariates centred at
their mean over treated and control together (Lin 2013, "Agnostic notes on regression
adjustments to experimental data", Annals of Applied Statistics 7(1)). ``tau`` is the
adjusted difference of means; with the interaction it is consistent and never less precise
asymptotically than the plain difference, whatever the relation between ``X`` and ``y``.
Its standard error is heteroskedasticity-robust, HC1 (White's sandwich times ``n / (n - p)``),
and the interval is normal, as statsmodels' ``OLS(...).fit(cov_type="HC1")`` gives
(``tests/success/test_adjustment.py`` checks both to 1e-6).

The same regression without covariates gives the unadjusted difference with its HC1 error;
``variance_reduction`` is ``1 - se_adjusted**2 / se_unadjusted**2`` (0.4 means the adjusted
estimate is as precise as the unadjusted one with 1 / 0.6 = 1.67 times the customers).

Covariates: the wave's model score (CUPAC: a prediction of the outcome from pre-treatment
data) and pre-period columns of the customer snapshot (CUPED: e.g. last year's revenue when
the outcome is revenue). A covariate with missing values is filled with its mean and gets a
missing-indicator column; covariates constant in the segment, or linear combinations of the
others, are dropped (named in ``dropped``). Computed with numpy in one pass over the rows:
``X'X`` and ``X' diag(e^2) X`` are small ``p x p`` matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

__all__ = ["AdjustedEffect", "adjusted_effect", "design"]

_RANK_TOLERANCE = 1e-10


@dataclass
class AdjustedEffect:
    """The adjusted and unadjusted effect, their robust standard errors and intervals."""

    value: float | None
    low: float | None
    high: float | None
    se: float | None
    unadjusted: float | None
    unadjusted_se: float | None
    variance_reduction: float | None
    covariates: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @classmethod
    def missing(cls, dropped: list[str] | None = None) -> AdjustedEffect:
        return cls(None, None, None, None, None, None, None, [], dropped or [])


def design(treated: np.ndarray, covariates: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str], list[str]]:
    """The design matrix ``[1, T, Xc, T * Xc]`` (Xc centred), the covariate names used and those dropped."""
    t = np.asarray(treated, dtype=np.float64)
    n = t.size
    columns: list[np.ndarray] = []
    names: list[str] = []
    dropped: list[str] = []
    for name, raw in covariates.items():
        x = np.asarray(raw, dtype=np.float64)
        if x.shape != (n,):
            raise ValueError(
                f"The covariate {name!r} must have one value per customer: expected shape ({n},), got {x.shape}."
            )
        missing = ~np.isfinite(x)
        if missing.all():
            dropped.append(name)
            continue
        if missing.any():
            x = np.where(missing, x[~missing].mean(), x)
            columns.append(missing.astype(np.float64))
            names.append(f"{name} missing")
        columns.append(x)
        names.append(name)
    base = [np.ones(n), t]
    kept: list[np.ndarray] = []
    kept_names: list[str] = []
    current = np.column_stack(base)
    rank = _rank(current)
    for x, name in zip(columns, names, strict=True):
        xc = x - x.mean()
        trial = np.column_stack([current, xc, t * xc])
        trial_rank = _rank(trial)
        if trial_rank < rank + 2:  # constant, collinear, or no variation in one arm: leave it out
            dropped.append(name)
            continue
        current, rank = trial, trial_rank
        kept.append(xc)
        kept_names.append(name)
    matrix = np.column_stack(base + kept + [t * xc for xc in kept])
    return matrix, kept_names, dropped


def adjusted_effect(
    y: np.ndarray, treated: np.ndarray, covariates: dict[str, np.ndarray], alpha: float = 0.05
) -> AdjustedEffect:
    """Lin's regression-adjusted effect of the treatment on ``y``; see the module docstring.

    None values (``AdjustedEffect.missing``) when an arm has fewer than two customers or the
    regression has no residual degrees of freedom.
    """
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(treated, dtype=bool)
    if y.shape != t.shape:
        raise ValueError(f"y and treated must have the same shape. Got {y.shape} and {t.shape}.")
    if not np.isfinite(y).all():
        raise ValueError("y must be finite for every customer (no NaN).")
    n_t, n_c = int(t.sum()), int((~t).sum())
    if n_t < 2 or n_c < 2:
        return AdjustedEffect.missing()
    x, names, dropped = design(t, covariates)
    plain = _hc1(y, x[:, :2])
    if plain is None:
        return AdjustedEffect.missing(dropped)
    adjusted = _hc1(y, x) if names else plain
    if adjusted is None:
        return AdjustedEffect.missing(dropped)
    tau, se = adjusted
    z = float(norm.ppf(1 - alpha / 2))
    reduction = 1.0 - (se / plain[1]) ** 2 if plain[1] > 0 else None
    return AdjustedEffect(
        value=tau,
        low=tau - z * se,
        high=tau + z * se,
        se=se,
        unadjusted=plain[0],
        unadjusted_se=plain[1],
        variance_reduction=reduction if names else 0.0,
        covariates=names,
        dropped=dropped,
    )


def _hc1(y: np.ndarray, x: np.ndarray) -> tuple[float, float] | None:
    """Coefficient of column 1 (the treatment) and its HC1 standard error; None if not estimable."""
    n, p = x.shape
    if n <= p:
        return None
    xtx = x.T @ x
    try:
        inverse = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        return None
    beta = inverse @ (x.T @ y)
    residual = y - x @ beta
    weighted = x * residual[:, None]
    meat = weighted.T @ weighted
    cov = inverse @ meat @ inverse * (n / (n - p))
    variance = float(cov[1, 1])
    if not math.isfinite(variance) or variance < 0:
        return None
    return float(beta[1]), math.sqrt(variance)


def _rank(matrix: np.ndarray) -> int:
    """Rank of an ``n x p`` matrix from its ``p x p`` Gram matrix, columns scaled to unit norm (so the
    covariates' units do not matter); a column within 1e-10 of the others' span does not count."""
    if not matrix.size:
        return 0
    norms = np.linalg.norm(matrix, axis=0)
    scaled = matrix / np.where(norms > 0, norms, 1.0)
    gram = scaled.T @ scaled
    eigen = np.linalg.eigvalsh(gram)
    return int((eigen > _RANK_TOLERANCE * max(float(eigen.max()), 1.0)).sum())
