"""Success statistics against textbook values and against statsmodels/scipy called directly."""

import math

import numpy as np
import pytest
from scipy.stats import fisher_exact, norm, t, ttest_ind
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from orchestrator.success.statistics import (
    Estimate,
    TestResult,
    absolute_lift,
    compare_proportions,
    expected_cells,
    mean_difference,
    mean_with_ci,
    rate,
    relative_lift,
    return_on_cost,
    scaled,
)

COUNTS = [  # treated successes, treated, control successes, control
    (300, 1000, 250, 1000),
    (56, 70, 48, 80),
    (1200, 20000, 95, 2000),
    (5, 40, 1, 10),
    (0, 100, 3, 50),
    (5, 100, 0, 50),
    (0, 100, 0, 50),
    (100, 100, 50, 50),
    (40, 200, 40, 200),
]


# --- absolute lift: Newcombe's hybrid score interval -------------------------------------------


def test_absolute_lift_reproduces_newcombes_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (hybrid score).
    lift = absolute_lift(56, 70, 48, 80)
    assert lift.value == pytest.approx(0.2)
    assert (lift.low, lift.high) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    lift = absolute_lift(9, 10, 3, 10)
    assert lift.value == pytest.approx(0.6)
    assert (lift.low, lift.high) == pytest.approx((0.1705, 0.8090), abs=5e-5)


@pytest.mark.parametrize(("ts", "tn", "cs", "cn"), COUNTS)
def test_absolute_lift_matches_statsmodels_newcomb(ts, tn, cs, cn):
    low, high = confint_proportions_2indep(ts, tn, cs, cn, method="newcomb", compare="diff")
    lift = absolute_lift(ts, tn, cs, cn)
    assert lift.value == pytest.approx(ts / tn - cs / cn)
    assert (lift.low, lift.high) == pytest.approx((low, high))
    assert -1.0 <= lift.low <= lift.value <= lift.high <= 1.0


def test_absolute_lift_with_zero_successes_in_both_groups_is_zero_with_a_real_interval():
    lift = absolute_lift(0, 100, 0, 50)
    assert lift.value == 0.0
    assert lift.low < 0.0 < lift.high  # Wald would collapse to [0, 0]


def test_absolute_lift_at_other_alpha():
    low, high = confint_proportions_2indep(30, 100, 20, 100, method="newcomb", alpha=0.1)
    assert (absolute_lift(30, 100, 20, 100, alpha=0.1).low, absolute_lift(30, 100, 20, 100, alpha=0.1).high) == (
        pytest.approx(low),
        pytest.approx(high),
    )


@pytest.mark.parametrize(("tn", "cn"), [(0, 50), (50, 0), (0, 0)])
def test_lifts_need_both_groups(tn, cn):
    assert absolute_lift(0, tn, 0, cn) == Estimate(None, None, None)
    assert relative_lift(0, tn, 0, cn) == Estimate(None, None, None)
    assert compare_proportions(0, tn, 0, cn) == TestResult(None, None)


# --- relative lift: log risk ratio ---------------------------------------------------------------


def test_relative_lift_is_the_hand_computed_adjusted_log_risk_ratio():
    # 30/100 vs 20/100: ratio 1.5; with 0.5 added to counts and sizes the log-ratio's variance is
    # 1/30.5 - 1/100.5 + 1/20.5 - 1/100.5 and the ratio of adjusted rates is (30.5/100.5)/(20.5/100.5).
    lift = relative_lift(30, 100, 20, 100)
    assert lift.value == pytest.approx(0.5)
    centre = math.log(30.5 / 20.5)
    half = norm.ppf(0.975) * math.sqrt(1 / 30.5 - 1 / 100.5 + 1 / 20.5 - 1 / 100.5)
    assert lift.low == pytest.approx(math.exp(centre - half) - 1)
    assert lift.high == pytest.approx(math.exp(centre + half) - 1)


@pytest.mark.parametrize(("ts", "tn", "cs", "cn"), COUNTS)
def test_relative_lift_matches_statsmodels_log_adjusted(ts, tn, cs, cn):
    low, high = confint_proportions_2indep(ts, tn, cs, cn, method="log-adjusted", compare="ratio")
    lift = relative_lift(ts, tn, cs, cn)
    assert (lift.low, lift.high) == pytest.approx((low - 1, high - 1))
    if cs:
        assert lift.value == pytest.approx((ts / tn) / (cs / cn) - 1)
    else:
        assert lift.value is None  # the ratio is undefined, the interval is still finite
        assert math.isfinite(lift.low) and math.isfinite(lift.high)


def test_equal_groups_have_no_lift_and_p_value_one():
    assert absolute_lift(40, 200, 40, 200).value == 0.0
    assert relative_lift(40, 200, 40, 200).value == 0.0
    result = compare_proportions(40, 200, 40, 200)
    assert result.test == "z"
    assert result.p_value == pytest.approx(1.0)
    lift = absolute_lift(40, 200, 40, 200)
    assert lift.low == pytest.approx(-lift.high)


# --- p-value: z-test or Fisher -------------------------------------------------------------------


def test_z_test_is_the_hand_computed_pooled_two_proportion_test():
    # 30/100 vs 20/100: pooled p = 0.25, se = sqrt(0.25 * 0.75 * (1/100 + 1/100)), z = 0.1 / se.
    z = 0.1 / math.sqrt(0.25 * 0.75 * 0.02)
    result = compare_proportions(30, 100, 20, 100)
    assert result.test == "z"
    assert result.p_value == pytest.approx(2 * norm.sf(z))
    assert result.p_value == pytest.approx(0.1025, abs=5e-5)


def test_fisher_reproduces_the_lady_tasting_tea():
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: two-sided p = 34/70.
    result = compare_proportions(3, 4, 1, 4)
    assert result == TestResult(pytest.approx(34 / 70), "fisher")


@pytest.mark.parametrize(("ts", "tn", "cs", "cn"), COUNTS)
def test_test_choice_follows_the_smallest_expected_cell(ts, tn, cs, cn):
    n, s = tn + cn, ts + cs
    cells = [tn * s / n, tn * (n - s) / n, cn * s / n, cn * (n - s) / n]
    result = compare_proportions(ts, tn, cs, cn)
    if min(cells) < 5:
        assert result.test == "fisher"
        expected = fisher_exact([[ts, tn - ts], [cs, cn - cs]], alternative="two-sided").pvalue
    else:
        assert result.test == "z"
        expected = proportions_ztest([ts, cs], [tn, cn])[1]
    assert result.p_value == pytest.approx(expected)
    assert np.allclose(expected_cells(ts, tn, cs, cn).ravel(), cells)


def test_fisher_switch_at_the_threshold():
    # Expected control successes = 50 * 15 / 150 = 5 -> z; one success fewer -> 4.67 < 5 -> Fisher.
    assert compare_proportions(10, 100, 5, 50).test == "z"
    assert compare_proportions(10, 100, 4, 50).test == "fisher"


@pytest.mark.parametrize(("ts", "tn", "cs", "cn"), [(0, 100, 0, 50), (100, 100, 50, 50)])
def test_no_successes_or_no_failures_go_to_fisher_with_p_one(ts, tn, cs, cn):
    assert compare_proportions(ts, tn, cs, cn) == TestResult(1.0, "fisher")


def test_zero_successes_in_treated_only_is_a_defined_negative_lift():
    lift = absolute_lift(0, 100, 3, 50)
    assert lift.value == pytest.approx(-0.06)
    assert lift.high < 0  # Newcombe: significant at 5%, as Fisher says
    result = compare_proportions(0, 100, 3, 50)
    assert result.test == "fisher"
    assert result.p_value == pytest.approx(fisher_exact([[0, 100], [3, 47]]).pvalue)
    assert result.p_value < 0.05


# --- revenue: t and Welch intervals ----------------------------------------------------------------


def test_mean_with_ci_matches_the_t_interval():
    x = np.array([0.0, 0.0, 10.0, 25.0, 0.0, 40.0, 5.0])
    m, s, n = x.mean(), x.std(ddof=1), len(x)
    half = t.ppf(0.975, n - 1) * s / math.sqrt(n)
    est = mean_with_ci(x)
    assert (est.value, est.low, est.high) == pytest.approx((m, m - half, m + half))
    assert (est.low, est.high) == pytest.approx(DescrStatsW(x).tconfint_mean())


def test_mean_edge_cases():
    assert mean_with_ci(np.array([])) == Estimate(None, None, None)
    assert mean_with_ci(np.array([7.0])) == Estimate(7.0, None, None)
    assert mean_with_ci(np.zeros(20)) == Estimate(0.0, 0.0, 0.0)


def test_welch_interval_matches_hand_formula_scipy_and_statsmodels():
    rng = np.random.default_rng(7)
    a = rng.gamma(2.0, 30.0, 400) * (rng.random(400) < 0.3)
    b = rng.gamma(2.0, 30.0, 60) * (rng.random(60) < 0.2)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    half = t.ppf(0.975, df) * math.sqrt(va + vb)
    est = mean_difference(a, b)
    diff = a.mean() - b.mean()
    assert (est.value, est.low, est.high) == pytest.approx((diff, diff - half, diff + half))
    ci = ttest_ind(a, b, equal_var=False).confidence_interval()
    assert (est.low, est.high) == pytest.approx((ci.low, ci.high))
    sm = CompareMeans(DescrStatsW(a), DescrStatsW(b)).tconfint_diff(usevar="unequal")
    assert (est.low, est.high) == pytest.approx(sm)


def test_welch_edge_cases():
    assert mean_difference(np.array([]), np.ones(3)) == Estimate(None, None, None)
    assert mean_difference(np.ones(3), np.array([])) == Estimate(None, None, None)
    assert mean_difference(np.array([5.0]), np.array([1.0, 2.0])) == Estimate(3.5, None, None)
    # No revenue anywhere: difference 0 with the degenerate interval.
    assert mean_difference(np.zeros(50), np.zeros(10)) == Estimate(0.0, 0.0, 0.0)


# --- derived estimates --------------------------------------------------------------------------


def test_scaled_and_roi():
    lift = Estimate(0.02, 0.01, 0.03)
    assert scaled(lift, 1000) == Estimate(pytest.approx(20.0), pytest.approx(10.0), pytest.approx(30.0))
    assert scaled(Estimate(1.0, None, None), 3) == Estimate(3.0, None, None)
    revenue = Estimate(3000.0, 1000.0, 5000.0)
    assert return_on_cost(revenue, 1000.0) == Estimate(2.0, 0.0, 4.0)
    assert return_on_cost(revenue, 0.0) == Estimate(None, None, None)
    assert return_on_cost(Estimate.missing(), 10.0) == Estimate(None, None, None)
    with pytest.raises(ValueError, match="'cost' parameter of return_on_cost"):
        return_on_cost(revenue, -1.0)


def test_rate_and_count_checks():
    assert rate(3, 12) == 0.25
    assert rate(0, 0) is None
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        rate(5, 4)
    with pytest.raises(ValueError, match="control_successes=6, control=5"):
        absolute_lift(1, 10, 6, 5)
