"""Sample sizes for control groups: is the control group big enough to show the lift we hope for?

The success of a wave is read from a two-sided two-proportion test of the response rate of the
treated customers against the control group. ``required_control_size`` gives the control-group size
that detects an absolute lift ``min_lift`` over ``baseline_rate`` with the given significance
``alpha`` and ``power``, when the treated group is ``(1 - share) / share`` times the control group
(the split a control share of ``share`` implies). It uses the normal approximation on Cohen's
arcsine effect size ``h = 2 asin(sqrt(p + lift)) - 2 asin(sqrt(p))``
(``statsmodels.stats.power.NormalIndPower``), for which the control size is about
``(z[1 - alpha/2] + z[power])**2 * (1 + share / (1 - share)) / h**2``.

``control_group_warning`` turns that into a sentence for a planned wave, with what to change:
a larger ``control.share`` or a wider audience.
"""

from __future__ import annotations

import math

from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

__all__ = ["control_group_warning", "required_control_size"]

_MAX_SUGGESTED_SHARE = 0.5  # beyond a half, a larger control group no longer adds power
_SHARE_STEP = 100  # suggested shares are whole percentages


def required_control_size(
    baseline_rate: float, min_lift: float, share: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Smallest control group that detects ``min_lift`` (absolute) over ``baseline_rate``.

    ``share`` is the control share of the selected customers, in (0, 1); the treated group is
    ``(1 - share) / share`` times the control group. The test is two-sided at level ``alpha``.
    """
    _check(baseline_rate, min_lift, share, alpha, power, "required_control_size")
    effect = proportion_effectsize(baseline_rate + min_lift, baseline_rate)
    n_control = NormalIndPower().solve_power(
        effect_size=effect,
        nobs1=None,
        alpha=alpha,
        power=power,
        ratio=(1.0 - share) / share,
        alternative="two-sided",
    )
    return math.ceil(float(n_control) - 1e-9)


def control_group_warning(
    n_selected: int,
    share: float,
    baseline_rate: float,
    min_lift: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> str | None:
    """A sentence saying why and how to enlarge the control group, or None when it is big enough.

    The control group of a wave selecting ``n_selected`` customers is taken as its expected size
    ``n_selected * share`` rounded (halves up), as ``stratified_control_mask`` draws it; the plain
    ``control_mask`` draws about that many. The sentence suggests the smallest whole-percent
    ``control.share`` (up to 0.5) that would suffice for this audience, and the audience size
    that would suffice at the current share.
    """
    if isinstance(n_selected, bool) or not isinstance(n_selected, int) or n_selected < 0:
        raise ValueError(
            f"The 'n_selected' parameter of control_group_warning must be an int >= 0. Got {n_selected!r} instead."
        )
    _check(baseline_rate, min_lift, share, alpha, power, "control_group_warning")
    n_control = _control_size(n_selected, share)
    needed = required_control_size(baseline_rate, min_lift, share, alpha, power)
    if n_control >= needed:
        return None
    audience = _audience_needed(needed, share)
    better_share = _share_needed(n_selected, share, baseline_rate, min_lift, alpha, power)
    points = f"{min_lift * 100:.1f}"
    remedy = (
        f"raise control.share to {better_share:g} or widen the audience to {audience:,} customers"
        if better_share is not None
        else f"widen the audience to {audience:,} customers"
    )
    return (
        f"the control group of {n_control:,} customer{'' if n_control == 1 else 's'} is too small "
        f"to detect a lift of {points} point{'' if points == '1.0' else 's'} over a "
        f"{baseline_rate * 100:.1f}% response rate (needs {needed:,} at {alpha * 100:g}% significance "
        f"and {power * 100:g}% power); {remedy}"
    )


def _control_size(n_selected: int, share: float) -> int:
    return math.floor(n_selected * share + 0.5)


def _audience_needed(needed: int, share: float) -> int:
    audience = math.ceil(needed / share)
    while _control_size(audience - 1, share) >= needed:  # float edges: take the smallest
        audience -= 1
    while _control_size(audience, share) < needed:
        audience += 1
    return audience


def _share_needed(
    n_selected: int, share: float, baseline_rate: float, min_lift: float, alpha: float, power: float
) -> float | None:
    first = math.floor(share * _SHARE_STEP) + 1
    for step in range(first, int(_MAX_SUGGESTED_SHARE * _SHARE_STEP) + 1):
        candidate = step / _SHARE_STEP
        needed = required_control_size(baseline_rate, min_lift, candidate, alpha, power)
        if _control_size(n_selected, candidate) >= needed:
            return candidate
    return None


def _check(baseline_rate: float, min_lift: float, share: float, alpha: float, power: float, where: str) -> None:
    def fail(name: str, expected: str, got: float) -> None:
        raise ValueError(f"The {name!r} parameter of {where} must be {expected}. Got {got!r} instead.")

    if not 0.0 < baseline_rate < 1.0:
        fail("baseline_rate", "in (0, 1)", baseline_rate)
    if not 0.0 < min_lift <= 1.0 - baseline_rate:
        fail("min_lift", f"in (0, 1 - baseline_rate] = (0, {1.0 - baseline_rate:g}]", min_lift)
    if not 0.0 < share < 1.0:
        fail("share", "in (0, 1)", share)
    if not 0.0 < alpha < 1.0:
        fail("alpha", "in (0, 1)", alpha)
    if not alpha < power < 1.0:
        fail("power", f"in (alpha, 1) = ({alpha:g}, 1)", power)
