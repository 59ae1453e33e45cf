"""Power figures checked against formulas and a simulation that do not go through statsmodels."""

import math
import re

import numpy as np
import pytest
from scipy.stats import norm

from orchestrator.success.power import control_group_warning, required_control_size

CASES = [
    # baseline_rate, min_lift, share, alpha, power
    (0.05, 0.01, 0.1, 0.05, 0.8),
    (0.05, 0.01, 0.5, 0.05, 0.8),
    (0.2, 0.05, 0.25, 0.01, 0.9),
    (0.02, 0.005, 0.05, 0.05, 0.8),
    (0.5, 0.1, 0.3, 0.1, 0.95),
]


def _arcsine_closed_form(p, lift, share, alpha, power):
    """n_control = (z[1-a/2] + z[power])^2 (1 + n_control/n_treated) / h^2, h = Cohen's arcsine h."""
    h = 2 * math.asin(math.sqrt(p + lift)) - 2 * math.asin(math.sqrt(p))
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return z**2 * (1 + share / (1 - share)) / h**2


def _fleiss_closed_form(p, lift, share, alpha, power):
    """Textbook two-proportion sample size (pooled variance under H0) for unequal groups."""
    k = (1 - share) / share  # treated per control customer
    q = p + lift
    pooled = (p + k * q) / (1 + k)
    root = norm.ppf(1 - alpha / 2) * math.sqrt(pooled * (1 - pooled) * (1 + 1 / k)) + norm.ppf(power) * math.sqrt(
        p * (1 - p) + q * (1 - q) / k
    )
    return root**2 / lift**2


@pytest.mark.parametrize(("p", "lift", "share", "alpha", "power"), CASES)
def test_required_size_matches_the_arcsine_closed_form(p, lift, share, alpha, power):
    # The closed form leaves out the far rejection tail, so it may be a fraction of a customer higher.
    expected = math.ceil(_arcsine_closed_form(p, lift, share, alpha, power))
    assert expected - 1 <= required_control_size(p, lift, share, alpha, power) <= expected


@pytest.mark.parametrize(("p", "lift", "share", "alpha", "power"), CASES)
def test_required_size_is_close_to_the_textbook_pooled_formula(p, lift, share, alpha, power):
    expected = _fleiss_closed_form(p, lift, share, alpha, power)
    assert required_control_size(p, lift, share, alpha, power) == pytest.approx(expected, rel=0.05)


def test_simulated_power_at_the_required_size_is_the_requested_power():
    p, lift, share, alpha, power = 0.05, 0.01, 0.1, 0.05, 0.8
    n_control = required_control_size(p, lift, share, alpha, power)
    n_treated = round(n_control * (1 - share) / share)
    rng = np.random.default_rng(2024)
    runs = 20_000
    control = rng.binomial(n_control, p, runs)
    treated = rng.binomial(n_treated, p + lift, runs)
    pooled = (control + treated) / (n_control + n_treated)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_treated))
    z = (treated / n_treated - control / n_control) / se
    rejected = np.abs(z) > norm.ppf(1 - alpha / 2)
    assert rejected.mean() == pytest.approx(power, abs=0.03)


def test_required_size_moves_the_right_way():
    base = required_control_size(0.05, 0.01, 0.1)
    assert required_control_size(0.05, 0.02, 0.1) < base  # bigger lift, easier
    assert required_control_size(0.05, 0.01, 0.1, power=0.9) > base
    assert required_control_size(0.05, 0.01, 0.1, alpha=0.01) > base
    # a larger control share leaves fewer treated customers per control customer
    assert required_control_size(0.05, 0.01, 0.3) > base


def test_no_warning_when_the_control_group_is_big_enough():
    needed = required_control_size(0.05, 0.01, 0.1)
    assert control_group_warning(needed * 10, 0.1, 0.05, 0.01, 0.05, 0.8) is None


def test_warning_names_sizes_and_a_share_that_suffices():
    n_selected, share, p, lift = 10_000, 0.05, 0.05, 0.02
    message = control_group_warning(n_selected, share, p, lift, 0.05, 0.8)
    needed = required_control_size(p, lift, share)
    assert message.startswith(
        f"the control group of 500 customers is too small to detect a lift of 2.0 points over a "
        f"5.0% response rate (needs {needed:,} at 5% significance and 80% power); raise control.share to "
    )
    suggested = float(re.search(r"raise control.share to ([0-9.]+) or", message).group(1))
    audience = int(re.search(r"widen the audience to ([0-9,]+) customers$", message).group(1).replace(",", ""))
    # the suggested share is the smallest whole percent that suffices for this audience
    assert round(n_selected * suggested) >= required_control_size(p, lift, suggested)
    smaller = round(suggested - 0.01, 2)
    assert round(n_selected * smaller) < required_control_size(p, lift, smaller)
    # the suggested audience is the smallest that suffices at the current share
    assert round(audience * share) >= needed > round((audience - 1) * share)


def test_warning_for_one_point_lift_and_an_audience_too_small_for_any_share():
    message = control_group_warning(1_200, 0.1, 0.05, 0.01, 0.05, 0.8)
    needed = required_control_size(0.05, 0.01, 0.1)
    assert message == (
        f"the control group of 120 customers is too small to detect a lift of 1.0 point over a 5.0% "
        f"response rate (needs {needed:,} at 5% significance and 80% power); "
        f"widen the audience to {math.ceil((needed - 0.5) / 0.1):,} customers"
    )  # the control group of N customers is round(N * share), halves rounded up


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline_rate": 1.5}, "The 'baseline_rate' parameter of required_control_size must be in (0, 1). Got 1.5"),
        ({"min_lift": 0.0}, "The 'min_lift' parameter of required_control_size must be in (0, 1 - baseline_rate]"),
        ({"min_lift": 0.99}, "Got 0.99 instead"),
        ({"share": 0.0}, "The 'share' parameter of required_control_size must be in (0, 1). Got 0.0"),
        ({"alpha": 1.0}, "The 'alpha' parameter of required_control_size must be in (0, 1). Got 1.0"),
        ({"power": 0.01}, "The 'power' parameter of required_control_size must be in (alpha, 1) = (0.05, 1)"),
    ],
)
def test_bad_parameters_are_rejected_with_the_value(kwargs, message):
    arguments = {"baseline_rate": 0.05, "min_lift": 0.01, "share": 0.1, "alpha": 0.05, "power": 0.8} | kwargs
    with pytest.raises(ValueError, match=re.escape(message)):
        required_control_size(**arguments)


def test_bad_audience_size_is_rejected():
    message = "'n_selected' parameter of control_group_warning must be an int >= 0. Got -3"
    with pytest.raises(ValueError, match=re.escape(message)):
        control_group_warning(-3, 0.1, 0.05, 0.01)
