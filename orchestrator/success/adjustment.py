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

__all__ = ["AdjustedEffect", "adjusted_effect", "adjusted_effects", "design"]

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
    """The design matrix ``[1, T, Xc, T * Xc]`` (Xc centred), the covariate names used and those dropped.

    Covariates are taken in order; one whose two columns do not raise the rank (constant,
    collinear with those before, or without variation in an arm) is dropped. The rank is read
    from the ``p x p`` Gram matrix of the unit-scaled columns, so it costs one pass over the rows.
    """
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
    centred = [x - x.mean() for x in columns]
    full = np.column_stack([np.ones(n), t, *centred, *(t * x for x in centred)])
    k = len(centred)
    norms = np.linalg.norm(full, axis=0)
    norms = np.where(norms > 0, norms, 1.0)
    scaled_gram = (full.T @ full) / np.outer(norms, norms)
    kept = [0, 1]
    kept_names: list[str] = []
    rank = _gram_rank(scaled_gram, kept)
    for j, name in enumerate(names):
        trial = [*kept, 2 + j, 2 + k + j]
        trial_rank = _gram_rank(scaled_gram, trial)
        if trial_rank < rank + 2:  # constant, collinear, or no variation in one arm: leave it out
            dropped.append(name)
            continue
        kept, rank = trial, trial_rank
        kept_names.append(name)
    order = [0, 1] + [c for c in kept[2:] if c < 2 + k] + [c for c in kept[2:] if c >= 2 + k]
    return full[:, order], kept_names, dropped


def adjusted_effect(
    y: np.ndarray, treated: np.ndarray, covariates: dict[str, np.ndarray], alpha: float = 0.05
) -> AdjustedEffect:
    """Lin's regression-adjusted effect of the treatment on ``y``; see the module docstring.

    None values (``AdjustedEffect.missing``) when an arm has fewer than two customers or the
    regression has no residual degrees of freedom.
    """
    return adjusted_effects({"y": y}, treated, covariates, alpha)["y"]


def adjusted_effects(
    ys: dict[str, np.ndarray], treated: np.ndarray, covariates: dict[str, np.ndarray], alpha: float = 0.05
) -> dict[str, AdjustedEffect]:
    """``adjusted_effect`` of several outcomes of the same customers, the design built once."""
    t = np.asarray(treated, dtype=bool)
    for name, y in ys.items():
        if np.shape(y) != t.shape:
            raise ValueError(f"y and treated must have the same shape. Got {np.shape(y)} and {t.shape} ({name}).")
        if not np.isfinite(np.asarray(y, dtype=np.float64)).all():
            raise ValueError(f"y must be finite for every customer (no NaN) ({name}).")
    n_t, n_c = int(t.sum()), int((~t).sum())
    if n_t < 2 or n_c < 2:
        return {name: AdjustedEffect.missing() for name in ys}
    x, names, dropped = design(t, covariates)
    z = float(norm.ppf(1 - alpha / 2))
    plain_fit = _Fit.of(x[:, :2])
    full_fit = _Fit.of(x) if names else plain_fit
    out: dict[str, AdjustedEffect] = {}
    for key, raw in ys.items():
        y = np.asarray(raw, dtype=np.float64)
        plain = plain_fit.effect(y) if plain_fit is not None else None
        adjusted = full_fit.effect(y) if full_fit is not None else None
        if plain is None or adjusted is None:
            out[key] = AdjustedEffect.missing(dropped)
            continue
        tau, se = adjusted
        if not names:
            reduction: float | None = 0.0
        else:
            reduction = 1.0 - (se / plain[1]) ** 2 if plain[1] > 0 else None
        out[key] = AdjustedEffect(
            value=tau,
            low=tau - z * se,
            high=tau + z * se,
            se=se,
            unadjusted=plain[0],
            unadjusted_se=plain[1],
            variance_reduction=reduction,
            covariates=names,
            dropped=dropped,
        )
    return out


@dataclass
class _Fit:
    """An OLS design with the inverse of its Gram matrix, ready for several outcomes."""

    x: np.ndarray
    inverse: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> _Fit | None:
        n, p = x.shape
        if n <= p:
            return None
        try:
            return cls(x, np.linalg.inv(x.T @ x))
        except np.linalg.LinAlgError:
            return None

    def effect(self, y: np.ndarray) -> tuple[float, float] | None:
        """Coefficient of column 1 (the treatment) and its HC1 standard error; None if not estimable."""
        n, p = self.x.shape
        beta = self.inverse @ (self.x.T @ y)
        residual = y - self.x @ beta
        weighted = self.x * residual[:, None]
        meat = weighted.T @ weighted
        cov = self.inverse @ meat @ self.inverse * (n / (n - p))
        variance = float(cov[1, 1])
        if not math.isfinite(variance) or variance < 0:
            return None
        return float(beta[1]), math.sqrt(variance)


def _gram_rank(gram: np.ndarray, columns: list[int]) -> int:
    """Rank of the columns whose unit-scaled Gram matrix is ``gram``: eigenvalues above 1e-10 of the largest."""
    eigen = np.linalg.eigvalsh(gram[np.ix_(columns, columns)])
    return int((eigen > _RANK_TOLERANCE * max(float(eigen.max()), 1.0)).sum())
