"""The closed loop, simulated: customers with hidden response probabilities and hidden treatment
effects respond to the waves; the engine retrains an uplift model on what came back between
waves and targets with it. Targeting must get better: the measured uplift and the response
among the treated rise against the first wave, and the customers chosen have a far larger true
effect than random targeting would reach.

Real parts: the engine's stages (select, plan, record) on SQLite and PostgreSQL, snapshots,
conversions import, training, the registry; outcomes are drawn from the hidden truth.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from orchestrator.customers.importer import import_customers
from orchestrator.demo.synthetic import write_csv
from orchestrator.learning.retraining import NotEnoughData, retrain
from orchestrator.responses.conversions import import_conversions
from orchestrator.rules.outcomes import load_outcomes
from orchestrator.scoring.registry import get
from orchestrator.success.data import Measure, contact_frame
from orchestrator.wave import stages
from tests.conftest import REPO

N = 12_000
TARGET = 3_000
NOT_FEATURES = ("email", "phone", "first_name", "last_name", "consent_email", "consent_phone")

RULES = """\
name: sim
control: {share: 0.5, salt: sim}
channels:
  email:
    template: winback
    sender: "Acme <offers@acme.example>"
success: {goal: conversion, window_days: 14}
"""


def truth(customers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Hidden base probability and treatment effect per customer (the engine never sees these)."""
    young_valued = (customers["age"] < 45) & customers["segment"].isin(["gold", "silver"])
    base = 0.04 + 0.04 * (customers["segment"] == "gold")
    effect = np.where(young_valued, 0.30, np.where(customers["age"] > 70, -0.03, 0.0))
    return base.to_numpy(), effect


@pytest.fixture
def world(settings, engine, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sim.yaml").write_text(RULES)
    import_customers(engine, write_csv(tmp_path / "customers.csv", N, seed=21))
    with engine.connect() as conn:
        customers = pd.read_sql(sa.text("select customer_id, age, segment from customers"), conn)
    base, effect = truth(customers)
    hidden = pd.DataFrame({"base": base, "effect": effect}, index=customers["customer_id"])
    sim_settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={"rules_dir": rules})})
    return sim_settings, engine, hidden, tmp_path


def run_wave(settings, engine, hidden, tmp_path, day: date, rng) -> pd.DataFrame:
    """Select, plan, record a wave (treated marked sent), then draw its customers' purchases."""
    prepared = stages.prepare(settings, settings.paths.rules_dir / "sim.yaml", day.isoformat())
    [plan] = stages.plan(settings, [prepared], [stages.select_candidates(settings, prepared)])
    wave = stages.open_wave(settings, prepared)
    stages.record(settings, wave, plan, prepared.as_of)
    with engine.begin() as conn:
        conn.execute(
            sa.text("update contacts set status = 'sent' where wave_id = :w and arm = 'treatment'"), {"w": wave.id}
        )
    chosen = pd.DataFrame({"customer_id": plan.contacts.customer_id, "arm": plan.contacts.arm})
    chosen = chosen[chosen["arm"] != "global_control"]
    truth_of = hidden.loc[chosen["customer_id"]]
    p = truth_of["base"].to_numpy() + truth_of["effect"].to_numpy() * (chosen["arm"] == "treatment").to_numpy()
    buys = rng.random(len(chosen)) < np.clip(p, 0, 1)
    path = tmp_path / f"conversions-{day}.csv"
    path.write_text(
        "customer_id,occurred_at,amount\n"
        + "".join(f"{cid},{(day + timedelta(days=3)).isoformat()},25\n" for cid in chosen["customer_id"][buys])
    )
    import_conversions(engine, path)
    chosen["effect"] = truth_of["effect"].to_numpy()
    return chosen


def measured(engine, settings, day: date) -> tuple[float, float]:
    """(treated conversion rate, treated - control) of the wave on ``day``, as success control measures it."""
    frame = contact_frame(
        engine, "sim", load_outcomes(settings.paths.rules_dir), Measure(window_days=14), waves=[day.isoformat()]
    )
    rates = frame.groupby("arm")["converted"].mean()
    return float(rates["treatment"]), float(rates["treatment"] - rates["control"])


@pytest.mark.slow
def test_targeting_improves_wave_after_wave_with_retraining(world):
    settings, engine, hidden, tmp_path = world
    rng = np.random.default_rng(4)
    days = [date(2026, 1, 5), date(2026, 2, 2), date(2026, 3, 2)]

    first = run_wave(settings, engine, hidden, tmp_path, days[0], rng)  # no model yet: everybody, half held out
    rate_1, uplift_1 = measured(engine, settings, days[0])
    trained = retrain(
        engine, settings, "sim-uplift", campaigns=["sim"], kind="uplift", exclude=NOT_FEATURES, as_of=days[1]
    )
    assert trained.promoted and trained.stage == "champion" and trained.version == 1
    assert trained.lineage["waves"] == ["sim/2026-01-05"] and trained.lineage["validation"].startswith("stratified")

    rules = settings.paths.rules_dir / "sim.yaml"
    rules.write_text(RULES + f"scores: {{model: sim-uplift, top: {TARGET}}}\n")
    second = run_wave(settings, engine, hidden, tmp_path, days[1], rng)
    rate_2, uplift_2 = measured(engine, settings, days[1])

    # the model found the customers the campaign actually moves
    assert len(second) == TARGET
    assert second["effect"].mean() > 3 * first["effect"].mean() > 0
    print(f"measured uplift {uplift_1:.3f} -> {uplift_2:.3f}, treated rate {rate_1:.3f} -> {rate_2:.3f}")
    assert uplift_2 > uplift_1 + 0.10, (uplift_1, uplift_2)
    assert rate_2 > rate_1 + 0.05, (rate_1, rate_2)

    # retraining on both waves: judged on the later wave against the champion on the same rows
    again = retrain(
        engine, settings, "sim-uplift", campaigns=["sim"], kind="uplift", exclude=NOT_FEATURES, as_of=days[2]
    )
    assert again.version == 2 and again.champion_version == 1 and again.champion_score is not None
    assert again.lineage["validation"].startswith("time-ordered") and again.lineage["compared_with"] == 1
    assert get(engine, "sim-uplift").version == (2 if again.promoted else 1)
    third = run_wave(settings, engine, hidden, tmp_path, days[2], rng)
    assert third["effect"].mean() > 3 * first["effect"].mean()


def test_retraining_needs_outcomes_and_a_control_group(world):
    settings, engine, hidden, tmp_path = world
    with pytest.raises(NotEnoughData, match="no training data"):
        retrain(engine, settings, "sim-uplift", campaigns=["sim"], as_of=date(2026, 1, 1))
    rules = settings.paths.rules_dir / "sim.yaml"
    rules.write_text(RULES.replace("share: 0.5", "share: 0"))
    run_wave(settings, engine, hidden, tmp_path, date(2026, 1, 5), np.random.default_rng(1))
    with pytest.raises(NotEnoughData, match="control"):
        retrain(
            engine,
            settings,
            "sim-uplift",
            campaigns=["sim"],
            kind="uplift",
            exclude=NOT_FEATURES,
            as_of=date(2026, 2, 1),
        )


@pytest.mark.slow
def test_retrain_command_runs_the_flow_and_promotes_the_first_version(world, prefect_api_url):
    from typer.testing import CliRunner

    from orchestrator.cli.main import app
    from orchestrator.settings import use_settings

    settings, engine, hidden, tmp_path = world
    run_wave(settings, engine, hidden, tmp_path, date(2026, 1, 5), np.random.default_rng(2))
    paths = settings.paths.model_copy(update={"templates_dir": REPO / "templates"})
    with use_settings(settings.model_copy(update={"paths": paths})):  # what the CLI and its flow get
        result = CliRunner().invoke(
            app,
            [
                "models",
                "retrain",
                "sim-uplift",
                "--campaign",
                "sim",
                "--kind",
                "uplift",
                "--exclude",
                "email",
                "--exclude",
                "phone",
            ],
        )
        missing = CliRunner().invoke(app, ["models", "retrain", "other", "--campaign", "nosuch"])
    assert result.exit_code == 0, result.output
    assert "the first version of this model" in result.output and "qini_auc" in result.output
    assert get(engine, "sim-uplift").kind == "uplift"
    assert missing.exit_code == 1 and "no training data" in missing.output


def test_a_response_model_per_channel(world):
    settings, engine, hidden, tmp_path = world
    run_wave(settings, engine, hidden, tmp_path, date(2026, 1, 5), np.random.default_rng(3))
    result = retrain(
        engine,
        settings,
        "sim-email",
        campaigns=["sim"],
        kind="response",
        channel="email",
        exclude=NOT_FEATURES,
        as_of=date(2026, 2, 1),
    )
    assert result.promoted and result.metric == "roc_auc" and result.challenger_score > 0.5
    assert result.lineage["channel"] == "email" and result.lineage["control"] > 0
    with pytest.raises(NotEnoughData, match="no contacts on channel call_center"):
        retrain(
            engine,
            settings,
            "sim-calls",
            campaigns=["sim"],
            kind="response",
            channel="call_center",
            as_of=date(2026, 2, 1),
        )


def test_a_channel_uplift_model_from_the_waves(world):
    settings, engine, hidden, tmp_path = world
    run_wave(settings, engine, hidden, tmp_path, date(2026, 1, 5), np.random.default_rng(5))
    result = retrain(
        engine,
        settings,
        "sim-channels",
        campaigns=["sim"],
        kind="channel_uplift",
        exclude=NOT_FEATURES,
        as_of=date(2026, 2, 1),
    )
    assert result.promoted and result.kind == "channel_uplift" and result.metric == "qini_auc"
    assert result.challenger_score is not None and result.challenger_score > 0
    assert result.lineage["approach"] == "x_learner" and result.lineage["estimator"] == "gradient_boosting"
    assert result.lineage["as_of"] == "2026-02-01"
    assert result.lineage["support"]["email"]["treated"] > 1000 and result.lineage["support"]["email"]["control"] > 1000
    record = get(engine, "sim-channels")
    assert record.kind == "channel_uplift"
    from orchestrator.scoring.registry import load

    model = load(settings, record)
    assert model.channels_ == ["email"]
    with engine.connect() as conn:
        customers = pd.read_sql(sa.text("select * from customers"), conn)
    effect = model.effects_frame(customers)["email"].to_numpy()
    true_effect = hidden.loc[customers["customer_id"], "effect"].to_numpy()
    assert effect[true_effect > 0.2].mean() > effect[true_effect == 0].mean() + 0.1


def test_a_channel_uplift_model_refuses_without_a_control_group(world):
    settings, engine, hidden, tmp_path = world
    rules = settings.paths.rules_dir / "sim.yaml"
    rules.write_text(RULES.replace("share: 0.5", "share: 0"))
    run_wave(settings, engine, hidden, tmp_path, date(2026, 1, 5), np.random.default_rng(6))
    expected = r"wave 2026-01-05 has 0 outcomes in its control group \(0 responders\); at least 200 control customers"
    with pytest.raises(NotEnoughData, match=expected):
        retrain(
            engine,
            settings,
            "sim-channels",
            campaigns=["sim"],
            kind="channel_uplift",
            exclude=NOT_FEATURES,
            as_of=date(2026, 2, 1),
        )
