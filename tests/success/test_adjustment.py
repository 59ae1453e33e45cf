"""Lin's regression adjustment against statsmodels OLS with HC1 errors, and the variance it saves."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.linear_model import OLS

from orchestrator.success.adjustment import adjusted_effect, design
from orchestrator.success.report import build_report


def _experiment(n=4000, seed=5, effect=0.3, control_share=0.3):
    """A pre-period value that predicts the outcome strongly, a second weak one, and a treatment effect."""
    rng = np.random.default_rng(seed)
    treated = rng.random(n) >= control_share
    pre = rng.gamma(2.0, 50.0, n)
    other = rng.normal(0, 1, n)
    y = 10 + 0.8 * pre + 2 * other + effect * treated * (1 + pre / 100) + rng.normal(0, 20, n)
    return y, treated, pre, other


def _statsmodels(y, treated, covariates):
    """The reference: OLS of y on [1, T, Xc, T*Xc] with HC1 errors, Xc centred at the full-sample mean."""
    t = treated.astype(float)
    columns = [np.ones_like(t), t]
    centred = [x - x.mean() for x in covariates]
    columns += centred + [t * x for x in centred]
    fit = OLS(y, np.column_stack(columns)).fit(cov_type="HC1")
    low, high = fit.conf_int(alpha=0.05)[1]
    return fit.params[1], fit.bse[1], low, high


@pytest.mark.parametrize("which", [(), ("pre",), ("pre", "other")])
def test_matches_statsmodels_ols_hc1_to_1e6(which):
    y, treated, pre, other = _experiment()
    given = {"pre": pre, "other": other}
    covariates = {name: given[name] for name in which}
    mine = adjusted_effect(y, treated, covariates)
    tau, se, low, high = _statsmodels(y, treated, list(covariates.values()))
    assert mine.value == pytest.approx(tau, abs=1e-6)
    assert mine.se == pytest.approx(se, abs=1e-6)
    assert (mine.low, mine.high) == pytest.approx((low, high), abs=1e-6)
    plain = _statsmodels(y, treated, [])
    assert mine.unadjusted == pytest.approx(plain[0], abs=1e-6)
    assert mine.unadjusted_se == pytest.approx(plain[1], abs=1e-6)
    assert mine.covariates == list(which)


def test_binary_outcome_with_a_score_matches_statsmodels():
    rng = np.random.default_rng(9)
    n = 6000
    score = rng.random(n)
    treated = rng.random(n) < 0.85
    y = (rng.random(n) < 0.02 + 0.1 * score + 0.02 * treated).astype(float)
    mine = adjusted_effect(y, treated, {"score": score})
    tau, se, _low, _high = _statsmodels(y, treated, [score])
    assert (mine.value, mine.se) == pytest.approx((tau, se), abs=1e-6)


def test_a_predictive_covariate_cuts_the_variance_and_the_estimate_stays_unbiased():
    y, treated, pre, _other = _experiment(n=8000)
    result = adjusted_effect(y, treated, {"pre": pre})
    assert result.variance_reduction > 0.8  # pre explains most of the outcome's variance
    assert result.variance_reduction == pytest.approx(1 - (result.se / result.unadjusted_se) ** 2)
    # true average effect: 0.3 * (1 + E[pre] / 100) = 0.3 * 2 = 0.6
    assert result.low < 0.6 < result.high
    assert result.high - result.low < 0.5 * (2 * 1.96 * result.unadjusted_se)


def test_missing_values_get_an_indicator_and_match_statsmodels_on_the_filled_design():
    y, treated, pre, _other = _experiment()
    holes = pre.copy()
    holes[::7] = np.nan
    mine = adjusted_effect(y, treated, {"pre": holes})
    assert mine.covariates == ["pre missing", "pre"]
    missing = np.isnan(holes).astype(float)
    filled = np.where(np.isnan(holes), np.nanmean(holes), holes)
    tau, se, _low, _high = _statsmodels(y, treated, [missing, filled])
    assert (mine.value, mine.se) == pytest.approx((tau, se), abs=1e-6)


def test_constant_and_collinear_covariates_are_dropped_and_named():
    y, treated, pre, _other = _experiment()
    odd = {"flat": np.ones_like(pre), "twice": 2 * pre, "none": pre * np.nan}
    result = adjusted_effect(y, treated, {"pre": pre, **odd})
    assert result.covariates == ["pre"]
    assert sorted(result.dropped) == ["flat", "none", "twice"]
    matrix, names, _dropped = design(treated, {"pre": pre})
    assert matrix.shape == (len(y), 4) and names == ["pre"]


def test_too_few_customers_in_an_arm_gives_no_estimate():
    y = np.array([1.0, 0.0, 1.0])
    assert adjusted_effect(y, np.array([True, True, False]), {}).value is None
    with pytest.raises(ValueError, match="same shape"):
        adjusted_effect(y, np.array([True, False]), {})
    with pytest.raises(ValueError, match="one value per customer"):
        adjusted_effect(np.zeros(4), np.array([True, True, False, False]), {"x": np.zeros(3)})


def test_the_report_shows_adjusted_and_unadjusted_lift_side_by_side():
    rng = np.random.default_rng(21)
    n = 20_000
    spend = rng.gamma(1.5, 100.0, n)  # last year's spend predicts this year's purchase
    treated = rng.random(n) >= 0.2
    p = np.clip(spend / 400, 0, 0.9) + 0.02 * treated
    bought = rng.random(n) < p
    frame = pd.DataFrame(
        {
            "campaign": "c",
            "wave": "2026-01-05",
            "wave_date": pd.Timestamp("2026-01-05"),
            "channel": "email",
            "variant": None,
            "arm": np.where(treated, "treatment", "control"),
            "score": np.nan,
            "responded": bought,
            "converted": bought,
            "revenue": np.where(bought, spend * 0.2, 0.0),
            "cost": 0.0,
            "days_to_response": np.where(bought, 2.0, np.nan),
            "spend_12m": spend,
        }
    )
    report = build_report(frame, campaign="c", goal="conversion", covariates=["spend_12m"])
    overall = report.overall()
    reference = adjusted_effect(bought.astype(float), treated, {"spend_12m": spend})
    assert overall.adjusted_lift.value == pytest.approx(reference.value)
    assert overall.variance_reduction == pytest.approx(reference.variance_reduction)
    assert overall.variance_reduction > 0.1
    assert overall.adjusted_incremental_successes.value == pytest.approx(reference.value * overall.treated)
    assert overall.revenue_variance_reduction > 0.1
    assert "adjusted_lift" in report.methods and report.covariates == ["spend_12m"]
    assert any("variance is" in note and "lower" in note for note in report.notes)
    for wave in report.by("wave"):
        assert wave.adjusted_lift.value is not None
