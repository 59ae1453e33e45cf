"""Customers a wave passed over (not contacted, not taken by another campaign) are kept, sampled, in a
snapshot of their own and join a channel uplift model's training set as no-contact rows, with the
conversions of their window as outcome; evaluation and the control-group checks leave them out."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa

from orchestrator.customers.importer import import_customers
from orchestrator.demo.synthetic import write_csv
from orchestrator.learning.training_data import training_frame
from orchestrator.ledger.snapshots import passed_over_path, read_passed_over, write_passed_over
from orchestrator.responses.conversions import import_conversions
from orchestrator.wave import stages

N = 1500
CALLS = 200
RULES = """\
name: calls
control: {share: 0.1, salt: calls}
channels:
  call_center:
    template: retention
    phone_column: phone
    value: 60
    cost: 6
success: {goal: conversion, window_days: 14}
"""


def test_a_wave_keeps_the_customers_it_passed_over_for_training(settings, engine, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "calls.yaml").write_text(RULES)
    (rules / "capacity.yaml").write_text(f"call_center:\n  tasks_per_day: {CALLS}\n")
    run = settings.model_copy(update={"paths": settings.paths.model_copy(update={"rules_dir": rules})})
    import_customers(engine, write_csv(tmp_path / "customers.csv", N, seed=5))
    day = date(2026, 3, 2)
    prepared = stages.prepare(run, rules / "calls.yaml", day.isoformat())
    [plan] = stages.plan(run, [prepared], [stages.select_candidates(run, prepared)])
    wave = stages.open_wave(run, prepared)
    stages.record(run, wave, plan, prepared.as_of)

    recorded = set(plan.contacts.customer_id.tolist())
    passed = set(plan.passed_over.tolist())
    assert len(passed) > N / 2 and not passed & recorded
    with engine.connect() as conn:
        callable_ = conn.execute(sa.text("select count(*) from customers where phone is not null")).scalar_one()
    assert len(passed) + len(recorded) <= N and len(recorded) <= callable_
    snapshot, share = read_passed_over(run, wave.id)
    assert share == 1.0 and set(snapshot["customer_id"]) == passed
    assert not {"email", "phone", "first_name", "last_name"} & set(snapshot.columns)  # features only
    assert {"age", "segment", "revenue_12m"} <= set(snapshot.columns)

    # some of them buy within the window, one after it
    buyers = sorted(passed)[:25]
    late = sorted(passed)[25]
    lines = [f"{cid},2026-03-05,10" for cid in buyers] + [f"{late},2026-04-30,10"]
    path = tmp_path / "purchases.csv"
    path.write_text("customer_id,occurred_at,amount\n" + "\n".join(lines) + "\n")
    import_conversions(engine, path)

    plain = training_frame(engine, run, ["calls"], as_of=date(2026, 4, 1)).frame
    assert not plain["passed_over"].any() and len(plain) == len(recorded)
    frame = training_frame(engine, run, ["calls"], as_of=date(2026, 4, 1), passed_over=True).frame
    rows = frame[frame["passed_over"]]
    assert set(rows["customer_id"]) == passed and (rows["treatment"] == 0).all() and rows["channel"].isna().all()
    assert set(rows.loc[rows["outcome"] == 1, "customer_id"]) == set(buyers)
    assert pd.isna(rows["arm_propensity"]).all()


def test_a_large_passed_over_group_is_sampled_by_a_stable_hash(settings, engine, tmp_path):
    import_customers(engine, write_csv(tmp_path / "customers.csv", 3000, seed=6))
    with engine.connect() as conn:
        ids = [str(c) for c in conn.execute(sa.text("select customer_id from customers")).scalars()]
    path = write_passed_over(engine, settings, 7, ids, sample=1000)
    assert path == passed_over_path(settings, 7)
    first = set(pq.read_table(path).column("customer_id").to_pylist())
    assert abs(len(first) - 1000) < 150
    write_passed_over(engine, settings, 7, ids, sample=1000)
    snapshot, share = read_passed_over(settings, 7)
    assert set(snapshot["customer_id"]) == first and share == 1000 / 3000
    assert write_passed_over(engine, settings, 8, [], sample=1000) is None


def test_a_single_passed_over_buyer_does_not_break_the_holdout_split():
    """One buyer among the passed-over customers is a stratum of one: it joins the no-contact buyers
    and the stratified split still works; a frame whose coarse strata are single rows splits plainly."""
    from sklearn.model_selection import train_test_split

    from orchestrator.learning.retraining import _holdout_strata

    n = 400
    frame = pd.DataFrame(
        {
            "treatment": np.r_[np.ones(200), np.zeros(200)].astype(int),
            "passed_over": np.r_[np.zeros(300), np.ones(100)].astype(bool),
            "outcome": np.r_[np.tile([0, 1], 100), np.tile([0, 0, 0, 1], 25), np.zeros(99), 1].astype(int),
        }
    )
    strata = _holdout_strata(frame)
    assert strata is not None and strata.value_counts().min() >= 2
    assert strata.iloc[-1] == 1  # the lone passed-over buyer: no-contact and bought
    train, test = train_test_split(frame, test_size=0.25, stratify=strata, random_state=0)
    assert len(train) + len(test) == n
    assert _holdout_strata(frame.iloc[[0, 1, 250]]) is None  # a lone control row: no strata at all
