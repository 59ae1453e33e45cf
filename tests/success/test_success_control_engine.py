"""Success control on waves the engine recorded: a broken split flagged, windows cut at the next contact,
covariates and breakdowns from the snapshots, imported covariates, and the global control report."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy.stats import ttest_ind
from statsmodels.stats.proportion import confint_proportions_2indep
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.ledger import contacts as ledger
from orchestrator.responses.conversions import import_conversions
from orchestrator.responses.results_import import import_results
from orchestrator.settings import use_settings
from orchestrator.success.campaign import build_campaign_report
from orchestrator.success.global_control import global_control_report
from orchestrator.success.report_types import FLAG_SRM
from orchestrator.targeting.policy import is_global_control
from orchestrator.wave import stages

CAMPAIGN = "srm-check"


def _rules(share: float = 0.1, covariates: str = "[revenue_12m]", variants: bool = False) -> str:
    ab = "variants:\n  a: {share: 0.5}\n  b: {share: 0.5}\n" if variants else ""
    return f"""\
name: {CAMPAIGN}
audience:
  all:
    - age: {{gte: 18}}
control:
  share: {share}
  salt: srm-test
channels:
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
{ab}success:
  goal: conversion
  window_days: 30
  covariates: {covariates}
"""


@pytest.fixture
def env(settings, make_customers, tmp_path):
    """3,000 synthetic customers, a rules folder with the campaign (and a policy with a global control)."""
    engine = make_customers(3000, seed=5)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / f"{CAMPAIGN}.yaml").write_text(_rules())
    paths = settings.paths.model_copy(update={"rules_dir": rules})
    here = settings.model_copy(update={"paths": paths})
    with use_settings(here):
        yield here, engine


def _wave(settings, engine, day: date, tmp_path, *, rate=0.05, effect=0.05, seed=0):
    """One real wave (prepare, select, plan, record) and conversions a few days later."""
    prepared = stages.prepare(settings, settings.paths.rules_dir / f"{CAMPAIGN}.yaml", day.isoformat())
    [plan] = stages.plan(settings, [prepared], [stages.select_candidates(settings, prepared)])
    wave = stages.open_wave(settings, prepared)
    stages.record(settings, wave, plan, prepared.as_of)
    with engine.begin() as conn:
        conn.execute(
            ledger.contacts.update()
            .where(ledger.contacts.c.wave_id == wave.id, ledger.contacts.c.arm == "treatment")
            .values(status="sent")
        )
    contacts = plan.contacts
    kept = np.isin(contacts.arm, ["treatment", "control"])
    ids = contacts.customer_id[kept].astype(str)
    treated = contacts.arm[kept] == "treatment"
    rng = np.random.default_rng(seed)
    bought = ids[rng.random(len(ids)) < rate + effect * treated]
    path = tmp_path / f"conversions-{day}.csv"
    when = (day + timedelta(days=3)).isoformat()
    path.write_text("customer_id,occurred_at,amount\n" + "".join(f"{c},{when},40\n" for c in bought))
    import_conversions(engine, path)
    return wave


def test_a_sound_split_passes_and_a_filter_on_one_arm_is_flagged(env, tmp_path):
    settings, engine = env
    wave = _wave(settings, engine, date(2026, 3, 2), tmp_path)
    report = build_campaign_report(settings, CAMPAIGN, as_of=date(2026, 6, 1))
    [check] = report.sample_ratios
    assert check.what == "arms" and check.expected_shares["control"] == pytest.approx(0.1)
    assert check.p_value > 0.001 and not check.mismatch
    assert FLAG_SRM not in report.overall().flags

    # the bug: a filter applied to the control arm only drops a quarter of it
    with engine.begin() as conn:
        ids = list(
            conn.execute(
                sa.select(ledger.contacts.c.id).where(
                    ledger.contacts.c.wave_id == wave.id, ledger.contacts.c.arm == "control"
                )
            ).scalars()
        )
        conn.execute(ledger.contacts.delete().where(ledger.contacts.c.id.in_(ids[::4])))
    broken = build_campaign_report(settings, CAMPAIGN, as_of=date(2026, 6, 1))
    [check] = broken.sample_ratios
    assert check.mismatch and check.p_value < 0.001
    assert FLAG_SRM in broken.overall().flags and FLAG_SRM in broken.by("wave")[0].flags
    share = check.observed["control"] / sum(check.observed.values())
    assert broken.notes[0] == (
        f"wave 2026-03-02: the control group is {share * 100:.1f}% of the wave, 10% was configured "
        f"(chi-squared p < 0.001): do not trust this wave's lift until the cause is found "
        f"(a filter applied to one arm, a broken split, contacts lost in one arm)"
    )
    result = CliRunner().invoke(app, ["report", CAMPAIGN, "--as-of", "2026-06-01"])
    assert result.exit_code == 0, result.output
    assert "Sample ratio mismatch" in result.output and "do not trust" in " ".join(result.output.split())


def test_waves_closer_than_the_window_count_each_conversion_once(env, tmp_path):
    settings, engine = env
    first = _wave(settings, engine, date(2026, 3, 2), tmp_path, effect=0.0, seed=1)
    second = _wave(settings, engine, date(2026, 3, 9), tmp_path, effect=0.0, seed=2)
    # a conversion on day 10 of the first wave is after the customer's next contact (day 7): it belongs to wave 2
    with engine.connect() as conn:
        both = conn.execute(
            sa.select(ledger.contacts.c.customer_id)
            .where(ledger.contacts.c.wave_id.in_([first.id, second.id]))
            .group_by(ledger.contacts.c.customer_id)
            .having(sa.func.count() == 2)
            .limit(1)
        ).scalar_one()
    late = tmp_path / "late.csv"
    late.write_text(f"customer_id,occurred_at,amount\n{both},2026-03-12,99\n")
    import_conversions(engine, late)
    report = build_campaign_report(settings, CAMPAIGN, as_of=date(2026, 6, 1))
    from orchestrator.rules.outcomes import load_outcomes
    from orchestrator.success.data import Measure, contact_frame

    frame = contact_frame(engine, CAMPAIGN, load_outcomes(settings.paths.rules_dir), Measure(window_days=30))
    row = frame[(frame.customer_id == both)].set_index("wave")
    assert bool(row.loc["2026-03-02", "window_cut"]) and not bool(row.loc["2026-03-09", "window_cut"])
    assert row.loc["2026-03-09", "revenue"] >= 99 and row.loc["2026-03-02", "revenue"] < 99
    assert any("windows end early" in n for n in report.notes)
    # each wave's conversions are those before the next contact: no customer-conversion counted twice
    total = sum(s.treated_successes + s.control_successes for s in report.by("wave"))
    assert total == int(frame["converted"].sum())


def test_covariates_and_breakdowns_come_from_the_snapshots(env, tmp_path):
    settings, engine = env
    _wave(settings, engine, date(2026, 3, 2), tmp_path)
    with engine.begin() as conn:  # the customer table moves on after the wave: the report must not see it
        conn.execute(sa.text("update customers set region = 'Moved'"))
    report = build_campaign_report(settings, CAMPAIGN, by=["region", "age"], as_of=date(2026, 6, 1))
    assert report.covariates == ["revenue_12m"]
    assert report.overall().adjusted_lift.value is not None
    regions = report.by("by:region")
    assert regions and "Moved" not in {s.key for s in regions}
    assert all(s.p_adjustment == "bh" for s in regions)
    ages = report.by("by:age")
    assert 2 <= len(ages) <= 5 and all(s.key.startswith("[") for s in ages)
    assert sum(s.treated for s in ages) == report.overall().treated
    args = ["report", CAMPAIGN, "--by", "region", "--format", "json", "--as-of", "2026-06-01"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :].split("\nHTML")[0])
    assert any(s["dimension"] == "by:region" for s in data["segments"])


def test_a_covariate_that_is_not_a_number_is_a_validation_error(env):
    settings, _engine = env
    from orchestrator.errors import ValidationFailed

    (settings.paths.rules_dir / f"{CAMPAIGN}.yaml").write_text(_rules(covariates="[region, revenu_12m]"))
    with pytest.raises(ValidationFailed) as failed:
        stages.prepare(settings, settings.paths.rules_dir / f"{CAMPAIGN}.yaml", "2026-03-02")
    messages = " / ".join(p.message for p in failed.value.problems)
    assert "covariate 'region' holds text values" in messages
    assert "covariate 'revenu_12m' is not a column of the customer table, did you mean 'revenue_12m'?" in messages


def test_imported_results_keep_their_covariates_for_the_report(settings, engine, tmp_path):
    rng = np.random.default_rng(4)
    n = 6000
    spend = rng.gamma(1.5, 80.0, n)
    treated = rng.random(n) < 0.5
    visit = rng.random(n) < np.clip(spend / 500, 0, 0.9) + 0.03 * treated
    path = tmp_path / "mailing.csv"
    pd.DataFrame(
        {
            "customer_id": [f"H{i}" for i in range(n)],
            "segment": np.where(treated, "mail", "none"),
            "spend_last_year": spend.round(2),
            "visit": visit.astype(int),
        }
    ).to_csv(path, index=False)
    from orchestrator.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="covariate 'spend_lastyear' is not in the header"):
        import_results(
            engine, path, campaign="mailing", arm_column="segment", control_label="none",
            outcome_columns=["visit"], settings=settings, covariates=["spend_lastyear"],
        )  # fmt: skip
    done = import_results(
        engine, path, campaign="mailing", arm_column="segment", control_label="none",
        outcome_columns=["visit"], settings=settings, covariates=["spend_last_year"],
    )  # fmt: skip
    assert done.covariates == ["spend_last_year"]
    report = build_campaign_report(settings, "mailing", outcome="visit")
    assert report.covariates == ["spend_last_year"]
    assert report.overall().variance_reduction > 0.1
    assert any("no sample-ratio check" in n for n in report.notes)


def test_global_control_report_against_a_direct_computation(env, tmp_path):
    settings, engine = env
    (settings.paths.rules_dir / "policy.yaml").write_text("global_control:\n  share: 0.2\n  salt: g-test\n")
    with engine.connect() as conn:
        ids = [str(x) for x in conn.execute(sa.text("select customer_id from customers")).scalars()]
    from orchestrator.rules.policy_spec import load_policy

    policy, _ = load_policy(settings.paths.rules_dir / "policy.yaml")
    held = is_global_control(ids, policy)
    rng = np.random.default_rng(8)
    rows = []
    for month, effect in (("2026-01", 0.06), ("2026-02", 0.0)):
        buys = rng.random(len(ids)) < 0.05 + effect * ~held
        for cid, bought in zip(ids, buys, strict=True):
            if bought:
                rows.append(f"{cid},{month}-15,{rng.gamma(2, 30):.2f}")
    path = tmp_path / "conv.csv"
    path.write_text("customer_id,occurred_at,amount\n" + "\n".join(rows) + "\n")
    import_conversions(engine, path)
    report = global_control_report(engine, settings)
    assert [m.month for m in report.months] == ["2026-01", "2026-02"]
    assert report.sample_ratio is not None and not report.sample_ratio.mismatch
    conversions = pd.read_csv(path)
    for m in report.months:
        month = conversions[conversions.occurred_at.str.startswith(m.month)]
        revenue = month.groupby("customer_id")["amount"].sum().reindex(ids).fillna(0.0).to_numpy()
        bought = revenue > 0
        assert m.global_control == int(held.sum()) and m.marketing_converted == int(bought[~held].sum())
        low, high = confint_proportions_2indep(
            int(bought[~held].sum()), int((~held).sum()), int(bought[held].sum()), int(held.sum()), method="newcomb"
        )
        assert (m.lift.low, m.lift.high) == pytest.approx((low, high))
        welch = ttest_ind(revenue[~held], revenue[held], equal_var=False).confidence_interval()
        assert (m.revenue_lift.low, m.revenue_lift.high) == pytest.approx((welch.low, welch.high), rel=1e-9)
        assert m.incremental_revenue.value == pytest.approx(m.revenue_lift.value * int((~held).sum()))
    assert report.months[0].significant and report.months[0].lift.low > 0
    result = CliRunner().invoke(app, ["report-global", "--html", str(tmp_path / "g.html")])
    assert result.exit_code == 0, result.output
    assert "Global control group by month" in result.output and (tmp_path / "g.html").exists()
    assert CliRunner().invoke(app, ["report-global", "--month", "2026-1"]).exit_code == 2


def test_no_global_control_is_a_clear_refusal(env):
    result = CliRunner().invoke(app, ["report-global"])
    assert result.exit_code == 1
    assert "no global control group" in result.output
