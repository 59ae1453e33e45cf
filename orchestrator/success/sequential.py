"""Always-valid intervals for looks while the success window is open: a normal-mixture confidence sequence.

A campaign manager who opens the report every morning during the attribution window and
acts on the first significant result makes as many tests as looks: with 30 daily looks at a
5% level each, an A/A wave "works" in about a fifth of the cases (``tests/success/
test_sequential.py`` measures it). A confidence sequence is an interval per look that holds
the true lift at *all* looks at once with probability ``1 - alpha``, so it may be read at any
look, any number of times.

Construction (Howard, Ramdas, McAuliffe, Sekhon 2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Annals of Statistics 49(2), the two-sided normal mixture,
eq. (14); the boundary of Robbins' mixture sequential probability ratio test). The estimate at
a look is the difference of the cumulative success rates ``d = rate_treated - rate_control``
of the wave's customers so far; under no effect its sum scale is close to a martingale whose
variance process is the estimate's variance ``v``, which grows as successes accrue. The
mixture of exponential supermartingales ``exp(l d - l^2 v / 2)`` over ``l ~ N(0, 1 / rho)``
crosses ``1 / alpha`` (Ville's inequality) exactly where

    |d| = sqrt((v + rho) * (log(1 + v / rho) + 2 log(1 / alpha)))

so the sequence is ``d +- that radius``. ``rho`` sets the variance at which the sequence is
tightest: ``rho = v_opt / (2 log(1/alpha) + log(1 + 2 log(1/alpha)))`` (Howard et al.'s
choice, also GrowthBook's) with ``v_opt`` the variance the estimate would have at the end of
the window if both groups succeeded at the planning rate (``control.expected_response_rate``
of the rules file, else 5%); a factor of ten off widens the sequence there by less than a
third. ``rho`` depends only on the design, never on the outcomes, which keeps the guarantee.

The variance adds one success and one failure to each group (Agresti and Caffo 2000), so
early looks with a handful of successes are not over-confident. Looks with no success at all
give no interval. The normal approximation and the near-martingale are checked by simulation:
1,000 A/A waves looked at daily keep the error rate under 5% (``test_sequential.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PLANNING_RATE",
    "Sequence",
    "best_rho",
    "confidence_sequence",
    "mixture_radius",
    "planned_variance",
]

DEFAULT_PLANNING_RATE = 0.05


@dataclass(frozen=True)
class Sequence:
    """The always-valid interval of the absolute lift at one look."""

    value: float | None
    low: float | None
    high: float | None


def best_rho(v_opt: float, alpha: float) -> float:
    """The mixture variance that makes the two-sided sequence tightest at variance ``v_opt``."""
    if not v_opt > 0:
        raise ValueError(f"The 'v_opt' parameter of best_rho must be > 0. Got {v_opt!r} instead.")
    _check_alpha(alpha, "best_rho")
    log_term = 2 * math.log(1 / alpha)
    return v_opt / (log_term + math.log(1 + log_term))


def mixture_radius(v: float, rho: float, alpha: float) -> float:
    """Half-width of the two-sided normal-mixture boundary at variance ``v`` (sum scale)."""
    if v < 0 or not rho > 0:
        raise ValueError(f"mixture_radius needs v >= 0 and rho > 0. Got v={v!r}, rho={rho!r} instead.")
    _check_alpha(alpha, "mixture_radius")
    return math.sqrt((v + rho) * (math.log(1 + v / rho) + 2 * math.log(1 / alpha)))


def planned_variance(treated: int, control: int, planning_rate: float = DEFAULT_PLANNING_RATE) -> float:
    """Variance of the rate difference at the planning rate in both groups: ``p (1 - p) (1/n_t + 1/n_c)``."""
    if treated < 1 or control < 1:
        raise ValueError(f"planned_variance needs both groups. Got treated={treated!r}, control={control!r}.")
    if not 0 < planning_rate < 1:
        raise ValueError(f"The planning rate must be in (0, 1). Got {planning_rate!r} instead.")
    return planning_rate * (1 - planning_rate) * (1 / treated + 1 / control)


def confidence_sequence(
    treated_successes: int,
    treated: int,
    control_successes: int,
    control: int,
    alpha: float = 0.05,
    planning_rate: float = DEFAULT_PLANNING_RATE,
) -> Sequence:
    """The always-valid interval of ``rate_treated - rate_control`` at this look (see the module docstring)."""
    for successes, n, arm in ((treated_successes, treated, "treated"), (control_successes, control, "control")):
        if n < 0 or successes < 0 or successes > n:
            raise ValueError(
                f"confidence_sequence needs 0 <= {arm}_successes <= {arm}. "
                f"Got {arm}_successes={successes!r}, {arm}={n!r} instead."
            )
    if not treated or not control:
        return Sequence(None, None, None)
    value = treated_successes / treated - control_successes / control
    if treated_successes + control_successes == 0:
        return Sequence(value, None, None)
    pt = (treated_successes + 1) / (treated + 2)
    pc = (control_successes + 1) / (control + 2)
    v = pt * (1 - pt) / treated + pc * (1 - pc) / control
    rho = best_rho(planned_variance(treated, control, planning_rate), alpha)
    radius = mixture_radius(v, rho, alpha)
    return Sequence(value, max(value - radius, -1.0), min(value + radius, 1.0))


def _check_alpha(alpha: float, where: str) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' parameter of {where} must be in (0, 1). Got {alpha!r} instead.")
