"""build_report on synthetic campaigns with a known treatment effect, and on the edge cases."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_ind
from statsmodels.stats.proportion import confint_proportions_2indep

from orchestrator.success.report import build_report
from orchestrator.success.report_types import (
    FLAG_CONTROL_TOO_SMALL,
    FLAG_NEGATIVE_LIFT,
    FLAG_NO_CONTROL,
    FLAG_NO_TREATED,
    FLAG_NOT_SIGNIFICANT,
    FLAG_RELATIVE_UNDEFINED,
    SuccessReport,
)

BASE_RATE = 0.05
TRUE_LIFT = 0.03  # treated respond at 8 %, control at 5 %
WAVES = {"2026-11-24": "2026-11-24", "2026-12-01": "2026-12-01", "2026-11-17": "2026-11-17"}


def campaign_frame(
    n: int = 60_000,
    control_share: float = 0.2,
    lift: float = TRUE_LIFT,
    seed: int = 11,
    scores: bool = True,
) -> pd.DataFrame:
    """Contacts of three waves; the treatment adds ``lift`` to the response probability, more so for
    high scores (lift x 2 x score, so ``lift`` on average), control customers mirror the channels."""
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < control_share, "control", "treatment")
    treated = arm == "treatment"
    score = rng.random(n)
    p = BASE_RATE + treated * lift * 2 * score
    responded = rng.random(n) < p
    wave = rng.choice(sorted(WAVES), n)
    days = np.where(responded, rng.integers(0, 21, n).astype(float), np.nan)
    return pd.DataFrame(
        {
            "campaign": "winback",
            "wave": wave,
            "wave_date": pd.to_datetime(wave),
            "channel": rng.choice(["call_center", "email", "field_force"], n, p=[0.3, 0.6, 0.1]),
            "variant": np.where(treated, rng.choice(["a", "b"], n), np.array(None, dtype=object)),
            "arm": arm,
            "score": score if scores else np.nan,
            "responded": responded,
            "converted": responded & (rng.random(n) < 0.4),
            "revenue": np.where(responded, rng.gamma(2.0, 40.0, n), 0.0),
            "cost": np.where(treated, 0.25, 0.0),
            "days_to_response": days,
        }
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return campaign_frame()


@pytest.fixture(scope="module")
def report(frame) -> SuccessReport:
    return build_report(frame, campaign="winback", window_days=21)


def test_overall_lift_covers_the_true_effect(report, frame):
    overall = report.overall()
    assert overall.dimension == "overall" and overall.key == "all"
    assert overall.treated == int((frame.arm == "treatment").sum())
    assert overall.control == int((frame.arm == "control").sum())
    lift = overall.absolute_lift
    assert lift.low < TRUE_LIFT < lift.high
    assert overall.significant and overall.test == "z" and overall.p_value < 1e-6
    assert overall.flags == []
    rel = overall.relative_lift
    assert rel.low < TRUE_LIFT / BASE_RATE < rel.high
    assert overall.incremental_successes.value == pytest.approx(lift.value * overall.treated)
    assert overall.incremental_successes.low == pytest.approx(lift.low * overall.treated)
    assert "significant at 5%" in report.notes[0]


def test_overall_statistics_are_statsmodels_and_scipy_on_the_raw_data(report, frame):
    overall = report.overall()
    t = frame[frame.arm == "treatment"]
    c = frame[frame.arm == "control"]
    low, high = confint_proportions_2indep(
        t.responded.sum(), len(t), c.responded.sum(), len(c), method="newcomb", compare="diff"
    )
    assert (overall.absolute_lift.low, overall.absolute_lift.high) == pytest.approx((low, high))
    ci = ttest_ind(t.revenue, c.revenue, equal_var=False).confidence_interval()
    assert (overall.revenue_lift.low, overall.revenue_lift.high) == pytest.approx((ci.low, ci.high))
    assert overall.revenue_per_treated.value == pytest.approx(t.revenue.mean())
    assert overall.cost == pytest.approx(t.cost.sum())
    inc = overall.incremental_revenue
    assert inc.value == pytest.approx(overall.revenue_lift.value * len(t))
    assert overall.roi.value == pytest.approx((inc.value - overall.cost) / overall.cost)
    assert overall.roi.low == pytest.approx((inc.low - overall.cost) / overall.cost)


@pytest.mark.parametrize("dimension", ["wave", "channel", "score_decile"])
def test_segments_add_up_to_overall(report, dimension):
    overall = report.overall()
    parts = report.by(dimension)
    assert len(parts) > 1
    for name in ("treated", "control", "treated_successes", "control_successes"):
        assert sum(getattr(s, name) for s in parts) == getattr(overall, name), name
    assert sum(s.cost for s in parts) == pytest.approx(overall.cost)
    assert sum(s.incremental_revenue.value for s in parts) == pytest.approx(
        sum(s.revenue_lift.value * s.treated for s in parts)
    )


def test_variants_split_the_treated_and_share_the_control_group(report):
    overall = report.overall()
    variants = report.by("variant")
    assert [s.key for s in variants] == ["a", "b"]
    assert sum(s.treated for s in variants) == overall.treated
    assert sum(s.treated_successes for s in variants) == overall.treated_successes
    assert all(s.control == overall.control for s in variants)
    assert any("whole control group" in note for note in report.notes)


def test_waves_in_date_order_and_keys(report):
    assert report.waves == ["2026-11-17", "2026-11-24", "2026-12-01"]
    assert [s.key for s in report.by("wave")] == report.waves
    assert [s.key for s in report.by("channel")] == ["call_center", "email", "field_force"]


def test_score_deciles_rank_best_scores_first(report, frame):
    deciles = report.by("score_decile")
    assert [s.key for s in deciles] == [str(d) for d in range(1, 11)]
    assert all(abs(s.treated + s.control - len(frame) / 10) <= 1 for s in deciles)
    # The effect grows with the score: the top decile's lift is the largest, the bottom's the smallest.
    lifts = [s.absolute_lift.value for s in deciles]
    assert lifts[0] > lifts[-1]
    assert deciles[0].absolute_lift.low > 0


def test_gains_follow_the_deciles(report):
    deciles = report.by("score_decile")
    gains = report.gains
    assert [g.decile for g in gains] == list(range(1, 11))
    for g, s in zip(gains, deciles, strict=True):
        assert (g.treated, g.control) == (s.treated, s.control)
        assert g.uplift == s.absolute_lift.value
        assert g.incremental_successes == pytest.approx(s.absolute_lift.value * s.treated)
    shares = [g.cumulative_share_of_incremental for g in gains]
    assert shares[-1] == pytest.approx(1.0)
    total = sum(g.incremental_successes for g in gains)
    assert shares[2] == pytest.approx(sum(g.incremental_successes for g in gains[:3]) / total)


def test_curve_is_cumulative_and_ends_at_the_rates(report):
    curve = report.curve
    assert [p.day for p in curve] == list(range(22))
    treated = [p.treated_rate for p in curve]
    assert treated == sorted(treated)
    overall = report.overall()
    assert curve[-1].treated_rate == pytest.approx(overall.treated_rate)
    assert curve[-1].control_rate == pytest.approx(overall.control_rate)


def test_curve_by_hand():
    frame = small_frame(
        arms=["treatment"] * 4 + ["control"] * 2,
        responded=[True, True, True, False, True, False],
        days=[0.0, 1.0, 2.5, np.nan, 1.0, np.nan],
    )
    report = build_report(frame, campaign="winback", window_days=4)
    assert [(p.day, p.treated_rate, p.control_rate) for p in report.curve] == [
        (0, 0.25, 0.0),
        (1, 0.5, 0.5),
        (2, 0.5, 0.5),
        (3, 0.75, 0.5),  # 2.5 days counts from day 3 (days <= d)
        (4, 0.75, 0.5),
    ]
    # Without a window the curve ends on the last observed day.
    assert build_report(frame, campaign="winback").curve[-1].day == 3


def test_to_dict_is_json_serialisable(report):
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    assert back["campaign"] == "winback" and back["goal"] == "response"
    assert back["segments"][0]["absolute_lift"].keys() == {"value", "low", "high"}
    assert len(back["gains"]) == 10


def test_no_control_group_gives_no_lift():
    frame = campaign_frame(n=5_000, control_share=0.0)
    report = build_report(frame, campaign="winback")
    assert "lift cannot be measured: the campaign has no control group" in report.notes
    for segment in report.segments:
        assert segment.control == 0
        assert FLAG_NO_CONTROL in segment.flags
        assert segment.control_rate is None
        for name in (
            "absolute_lift",
            "relative_lift",
            "incremental_successes",
            "revenue_lift",
            "incremental_revenue",
            "roi",
            "revenue_per_control",
        ):
            est = getattr(segment, name)
            assert (est.value, est.low, est.high) == (None, None, None), name
        assert segment.p_value is None and segment.test is None and not segment.significant
        assert segment.revenue_per_treated.value is not None
    assert all(g.uplift is None and g.cumulative_share_of_incremental is None for g in report.gains)
    assert all(p.control_rate is None for p in report.curve)
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_segment_with_only_control_customers():
    frame = campaign_frame(n=5_000)
    frame.loc[frame.arm == "control", "channel"] = np.where(
        np.arange((frame.arm == "control").sum()) % 5 == 0, "sms", frame.loc[frame.arm == "control", "channel"]
    )
    report = build_report(frame, campaign="winback")
    sms = next(s for s in report.by("channel") if s.key == "sms")
    assert sms.treated == 0 and sms.control > 0
    assert sms.flags == [FLAG_NO_TREATED]
    assert sms.treated_rate is None and sms.absolute_lift.value is None and sms.p_value is None
    assert sms.cost == 0.0 and sms.roi.value is None


def test_small_control_group_is_flagged_and_tested_exactly():
    frame = campaign_frame(n=400, control_share=0.05, seed=3)
    report = build_report(frame, campaign="winback")
    overall = report.overall()
    assert overall.control < 30
    assert FLAG_CONTROL_TOO_SMALL in overall.flags
    assert overall.test == "fisher"
    assert any("too small for a reliable lift" in note for note in report.notes)


def test_few_expected_control_successes_are_flagged_even_in_a_large_group():
    # 200 control customers at ~1 %: 2 expected successes < 5.
    frame = small_frame(
        arms=["treatment"] * 2000 + ["control"] * 200,
        responded=[i % 100 == 0 for i in range(2000)] + [i % 100 == 0 for i in range(200)],
    )
    overall = build_report(frame, campaign="winback").overall()
    assert overall.control >= 30
    assert FLAG_CONTROL_TOO_SMALL in overall.flags
    ok = build_report(frame, campaign="winback", min_expected_control_successes=1.0).overall()
    assert FLAG_CONTROL_TOO_SMALL not in ok.flags


def test_no_effect_is_not_significant():
    report = build_report(campaign_frame(n=20_000, lift=0.0, seed=5), campaign="winback")
    overall = report.overall()
    assert not overall.significant
    assert FLAG_NOT_SIGNIFICANT in overall.flags
    assert overall.absolute_lift.low < 0 < overall.absolute_lift.high
    assert "not significant at 5%" in report.notes[0]


def test_a_harmful_treatment_is_flagged_negative():
    frame = campaign_frame(n=30_000, lift=-0.02, seed=8)
    overall = build_report(frame, campaign="winback").overall()
    assert overall.significant and overall.absolute_lift.high < 0
    assert FLAG_NEGATIVE_LIFT in overall.flags


def test_zero_successes_everywhere_does_not_crash():
    frame = small_frame(arms=["treatment"] * 50 + ["control"] * 20, responded=[False] * 70)
    report = build_report(frame, campaign="winback")
    overall = report.overall()
    assert (overall.treated_rate, overall.control_rate) == (0.0, 0.0)
    assert overall.absolute_lift.value == 0.0 and overall.absolute_lift.low < 0 < overall.absolute_lift.high
    assert overall.relative_lift.value is None
    assert overall.test == "fisher" and overall.p_value == 1.0
    assert FLAG_RELATIVE_UNDEFINED in overall.flags and FLAG_CONTROL_TOO_SMALL in overall.flags
    assert overall.revenue_lift.value == 0.0
    assert report.curve == [type(report.curve[0])(0, 0.0, 0.0)]
    json.dumps(report.to_dict(), allow_nan=False)


def test_conversion_goal_counts_conversions(frame):
    report = build_report(frame, campaign="winback", goal="conversion")
    overall = report.overall()
    assert overall.treated_successes == int(frame.converted[frame.arm == "treatment"].sum())
    assert report.goal == "conversion"
    assert any("day of their first response" in note for note in report.notes)
    assert report.curve[-1].treated_rate == pytest.approx(overall.treated_rate)


def test_no_scores_no_deciles(frame):
    report = build_report(campaign_frame(n=3_000, scores=False), campaign="winback")
    assert report.by("score_decile") == [] and report.gains == []
    assert any("no scoring model" in note for note in report.notes)


def test_other_arms_and_campaigns_are_left_out(frame):
    extra = frame.head(100).copy()
    extra["arm"] = "global_control"
    other = frame.head(50).copy()
    other["campaign"] = "retention"
    report = build_report(pd.concat([frame, extra, other]), campaign="winback")
    assert report.overall().treated + report.overall().control == len(frame)
    assert "100 contacts in arms other than treatment and control are left out" in report.notes


def test_empty_frame_gives_an_empty_report(frame):
    report = build_report(frame.iloc[:0], campaign="winback")
    overall = report.overall()
    assert (overall.treated, overall.control, overall.absolute_lift.value) == (0, 0, None)
    assert report.curve == [] and report.waves == []
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"goal": "clicks"}, "'goal' parameter of build_report must be 'response' or 'conversion'"),
        ({"alpha": 1.5}, "'alpha' parameter of build_report must be in \\(0, 1\\)"),
        ({"window_days": -1}, "'window_days' parameter"),
        ({"min_control": -3}, "'min_control' parameter"),
        ({"campaign": "retention"}, "no rows of campaign 'retention'; it holds 'winback'"),
    ],
)
def test_bad_arguments_say_what_was_expected(frame, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_report(frame, **{"campaign": "winback", **kwargs})


def test_missing_columns_are_named(frame):
    with pytest.raises(ValueError, match="missing days_to_response"):
        build_report(frame.drop(columns="days_to_response"), campaign="winback")


def small_frame(arms, responded, days=None) -> pd.DataFrame:
    responded = np.asarray(responded, dtype=bool)
    if days is None:
        days = np.where(responded, 0.0, np.nan)
    return pd.DataFrame(
        {
            "campaign": "winback",
            "wave": "2026-11-24",
            "wave_date": pd.Timestamp("2026-11-24"),
            "channel": "email",
            "variant": None,
            "arm": arms,
            "score": np.nan,
            "responded": responded,
            "converted": False,
            "revenue": 0.0,
            "cost": [0.1 if a == "treatment" else 0.0 for a in arms],
            "days_to_response": days,
        }
    )


@pytest.mark.slow
def test_coverage_of_the_lift_interval_in_repeated_campaigns():
    # 200 small campaigns with the true lift: the 95% interval should cover it about 95% of the time.
    covered = 0
    runs = 200
    for seed in range(runs):
        report = build_report(campaign_frame(n=4_000, seed=1000 + seed, scores=False), campaign="winback")
        est = report.overall().absolute_lift
        covered += est.low <= TRUE_LIFT <= est.high
    assert 0.90 <= covered / runs <= 0.99


def test_missing_channel_is_its_own_key_listed_last():
    frame = campaign_frame(n=3_000)
    frame.loc[frame.index % 7 == 0, "channel"] = None
    report = build_report(frame, campaign="winback")
    keys = [s.key for s in report.by("channel")]
    assert keys == ["call_center", "email", "field_force", "none"]
    assert sum(s.treated for s in report.by("channel")) == report.overall().treated
