"""Allocation by expected incremental value: with a channel uplift model each channel's value is
``effect(channel, customer) x value - cost``; each group goes to the channel that moves it and
sleeping dogs (negative on every channel) are left alone. Hand-made candidates for the planning
rule, then a registered model scoring a real customer table (SQLite and PostgreSQL) through the
wave's stages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from orchestrator.customers.importer import import_customers
from orchestrator.demo.synthetic import write_csv
from orchestrator.rules.loader import load_campaign
from orchestrator.rules.spec import DEFAULT_OPTIMISM, LearningSpec
from orchestrator.scoring import registry
from orchestrator.scoring.channel_uplift import CONTROL, ChannelUpliftModel
from orchestrator.targeting.capacity import UNLIMITED, CallCenterCapacity, Capacity, CapacitySpec, DailyLimit
from orchestrator.targeting.planning import ELIGIBLE, plan_cycle
from orchestrator.targeting.selection import Candidates
from orchestrator.wave import stages

RULES = """\
name: by-effect
control: {share: 0.2, salt: by-effect}
channels:
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
    value: 10
    cost: 1
  call_center:
    template: retention
    phone_column: phone
    value: 60
    cost: 6
"""
# per group: (effect of an e-mail, effect of a call)
GROUPS = {"mail": (0.5, -0.1), "call": (-0.1, 0.3), "dogs": (-0.2, -0.2)}


def _spec(tmp_path: Path, text: str = RULES):
    path = tmp_path / "by-effect.yaml"
    path.write_text(text)
    return load_campaign(path, columns=None)


def _candidates(by_channel: bool) -> tuple[Candidates, np.ndarray]:
    group = np.repeat(list(GROUPS), 300)
    effects = np.array([GROUPS[g] for g in group], dtype=float)
    ids = [f"C{i:04d}" for i in range(len(group))]
    extra = {ELIGIBLE + "email": np.ones(len(ids), dtype=np.int64), ELIGIBLE + "call_center": np.ones(len(ids))}
    scores = effects.max(axis=1)  # the one score a channel uplift model gives: the best channel's effect
    return Candidates(ids, scores, [], extra=extra, effects=effects if by_channel else None), group


def _treated_channels(plan, group: np.ndarray) -> pd.DataFrame:
    ids = [f"C{i:04d}" for i in range(len(group))]
    of = pd.Series(group, index=ids)
    contacts = plan.contacts
    frame = pd.DataFrame({"id": contacts.customer_id, "arm": contacts.arm, "channel": contacts.channel})
    frame["group"] = of.reindex(frame["id"]).to_numpy()
    return frame


def test_each_group_gets_the_channel_that_moves_it_and_sleeping_dogs_are_left_alone(tmp_path):
    spec = _spec(tmp_path)
    candidates, group = _candidates(by_channel=True)
    (plan,) = plan_cycle([spec], [candidates], UNLIMITED, {})
    frame = _treated_channels(plan, group)
    treated = frame[frame["arm"] == "treatment"]
    assert set(treated.loc[treated["group"] == "mail", "channel"]) == {"email"}
    assert set(treated.loc[treated["group"] == "call", "channel"]) == {"call_center"}
    assert (treated["group"] == "mail").sum() > 200 and (treated["group"] == "call").sum() > 200
    assert "dogs" not in set(frame["group"])  # neither treated nor held out as control: left alone
    # expected values are effect x value - cost of the chosen channel
    assert np.allclose(plan.contacts.expected_value[(plan.contacts.channel == "email")], 0.5 * 10 - 1)
    assert np.allclose(plan.contacts.expected_value[(plan.contacts.channel == "call_center")], 0.3 * 60 - 6)


def test_one_score_for_every_channel_sends_everybody_to_the_dearest_channel(tmp_path):
    """What the per-channel effects fix: the best effect times each channel's value puts the e-mail
    group on calls, which in truth put them off."""
    spec = _spec(tmp_path)
    candidates, group = _candidates(by_channel=False)
    (plan,) = plan_cycle([spec], [candidates], UNLIMITED, {})
    frame = _treated_channels(plan, group)
    treated = frame[frame["arm"] == "treatment"]
    assert set(treated.loc[treated["group"] == "mail", "channel"]) == {"call_center"}


def test_a_channel_the_model_does_not_know_is_valued_by_the_one_score(tmp_path):
    spec = _spec(tmp_path)
    candidates, group = _candidates(by_channel=True)
    candidates.effects[:, 1] = np.nan  # no call effect known: score x value - cost, as without effects
    (plan,) = plan_cycle([spec], [candidates], UNLIMITED, {})
    frame = _treated_channels(plan, group)
    treated = frame[frame["arm"] == "treatment"]
    assert set(treated.loc[treated["group"] == "call", "channel"]) == {"call_center"}  # score 0.3 x 60 - 6 > 0
    assert set(treated.loc[treated["group"] == "mail", "channel"]) == {"call_center"}  # 0.5 x 60 - 6 > 4


def test_a_registered_channel_uplift_model_allocates_a_real_wave(settings, engine, tmp_path):
    import_customers(engine, write_csv(tmp_path / "customers.csv", 4000, seed=11))
    with engine.connect() as conn:
        customers = pd.read_sql(sa.text("select * from customers"), conn)
    # the past: e-mail moved gold customers, calls silver ones, and both put bronze customers off
    rng = np.random.default_rng(3)
    truth = {"gold": (0.4, -0.1), "silver": (-0.1, 0.3), "bronze": (-0.1, -0.1)}
    history = pd.concat([customers] * 2, ignore_index=True)
    channel = np.array([CONTROL, "email", "call_center"], dtype=object)[rng.integers(0, 3, len(history))]
    p = np.full(len(history), 0.2)
    for segment, (mail, call) in truth.items():
        mine = (history["segment"] == segment).to_numpy()
        p[mine & (channel == "email")] += mail
        p[mine & (channel == "call_center")] += call
    y = (rng.random(len(history)) < p).astype(int)
    model = ChannelUpliftModel(features=["segment", "age"]).fit(history, channel, y)
    registry.register(engine, settings, "by-channel", model, {}, "test", "outcome", len(history), kind="channel_uplift")

    rules_dir = tmp_path / "rules-effect"
    rules_dir.mkdir()
    (rules_dir / "by-effect.yaml").write_text(RULES + "scores: {model: by-channel}\n")
    wave_settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={"rules_dir": rules_dir})})
    prepared = stages.prepare(wave_settings, rules_dir / "by-effect.yaml", "2026-11-24")
    candidates = stages.select_candidates(wave_settings, prepared)
    assert candidates.effects is not None and candidates.effects.shape == (len(candidates.ids), 2)
    [plan] = stages.plan(wave_settings, [prepared], [candidates])
    contacts = plan.contacts
    segment = customers.set_index(customers["customer_id"].astype(str))["segment"]
    frame = pd.DataFrame(
        {
            "segment": segment.reindex(contacts.customer_id.astype(str)).to_numpy(),
            "arm": contacts.arm,
            "channel": contacts.channel,
        }
    )
    treated = frame[frame["arm"] == "treatment"]
    assert (treated.loc[treated["segment"] == "gold", "channel"] == "email").mean() > 0.95
    called = treated.loc[treated["segment"] == "silver", "channel"]
    assert len(called) > 0 and (called == "call_center").all()  # the callable silver customers
    assert "bronze" not in set(frame["segment"])  # sleeping dogs: left alone


def test_optimism_gives_a_channel_the_model_is_unsure_of_the_benefit_of_the_doubt(tmp_path):
    """``learning.optimism``: a call effect of 0.08 is below the call's break-even (6 / 60 = 0.1); where the
    model's trees disagree by 0.06 the default optimism (1 spread) values it at 0.14 and calls, where they
    agree (spread 0) or with ``optimism: 0`` the customer is left alone."""
    n = 200
    effects = np.tile([-0.1, 0.08], (2 * n, 1))
    spread = np.zeros((2 * n, 2))
    spread[:n, 1] = 0.06  # the first half: a call effect the data leaves uncertain
    ids = [f"C{i:04d}" for i in range(2 * n)]
    extra = {ELIGIBLE + "email": np.ones(2 * n), ELIGIBLE + "call_center": np.ones(2 * n)}

    def calls(learning: str) -> pd.Series:
        spec = _spec(tmp_path, RULES + learning)
        candidates = Candidates(ids, effects.max(axis=1), [], extra=extra, effects=effects, spread=spread)
        (plan,) = plan_cycle([spec], [candidates], UNLIMITED, {})
        contacts = plan.contacts
        called = pd.Series(contacts.expected_value, index=contacts.customer_id)[contacts.channel == "call_center"]
        return called

    assert LearningSpec().optimism == DEFAULT_OPTIMISM == 1.0
    called = calls("learning: {explore: 0.0}\n")  # optimism at its default
    assert set(called.index) == set(ids[:n])  # treated and (mirrored) control customers of the uncertain half
    assert np.allclose(called.to_numpy(), (0.08 + 1.0 * 0.06) * 60 - 6)  # the value the allocation used
    assert calls("learning: {explore: 0.0, optimism: 0}\n").empty
    assert calls("").empty  # no learning section: the campaign does not learn, so no optimism either


def test_optimism_fills_idle_pools_without_displacing_sure_customers_from_full_ones(tmp_path):
    """Optimism applies where the plain allocation left room. With 100 e-mails a day the e-mail pool is full
    of customers the model is sure of (e-mail effect 0.5, value 4); a group whose e-mail effect (0.3, value 2)
    is uncertain (spread 0.5: optimistic value 7) does not push them out. The call pool the plain plan left
    empty takes a third group's uncertain calls (0.08 + 0.06 = 0.14, value 2.4). Without a limit the
    e-mail pool has room, so there the uncertain e-mail effect counts optimistically."""
    n = 200
    effects = np.repeat([[0.5, -0.1], [0.3, -0.1], [-0.1, 0.08]], n, axis=0)
    spread = np.repeat([[0.0, 0.0], [0.5, 0.0], [0.0, 0.06]], n, axis=0)
    ids = [f"C{i:04d}" for i in range(3 * n)]
    group = pd.Series(np.repeat(["sure", "unsure-mail", "unsure-call"], n), index=ids)
    extra = {ELIGIBLE + "email": np.ones(3 * n), ELIGIBLE + "call_center": np.ones(3 * n)}
    spec = _spec(tmp_path, RULES + "learning: {explore: 0.0}\n")
    limited = Capacity(CapacitySpec(email=DailyLimit(per_day=100), call_center=CallCenterCapacity(tasks_per_day=1000)))

    def plan_with(capacity: Capacity) -> pd.DataFrame:
        candidates = Candidates(ids, effects.max(axis=1), [], extra=extra, effects=effects, spread=spread)
        (plan,) = plan_cycle([spec], [candidates], capacity, {})
        c = plan.contacts
        frame = pd.DataFrame({"channel": c.channel, "value": c.expected_value}, index=c.customer_id)[c.treated]
        frame["group"] = group.reindex(frame.index).to_numpy()
        return frame

    treated = plan_with(limited)
    mailed = treated[treated["channel"] == "email"]
    assert len(mailed) == 100 and (mailed["group"] == "sure").all()  # the sure customers keep the e-mails
    assert np.allclose(mailed["value"], 4.0)
    called = treated[treated["channel"] == "call_center"]
    assert len(called) > 0 and (called["group"] == "unsure-call").all()
    assert (treated["group"] == "unsure-call").sum() == len(called)  # every treated one of them
    assert np.allclose(called["value"], (0.08 + DEFAULT_OPTIMISM * 0.06) * 60 - 6)

    unlimited = plan_with(UNLIMITED)  # room everywhere: the uncertain e-mail effect gets its benefit of the doubt
    unsure_mail = unlimited[unlimited["group"] == "unsure-mail"]
    assert len(unsure_mail) > 0 and (unsure_mail["channel"] == "email").all()
    assert np.allclose(unsure_mail["value"], (0.3 + DEFAULT_OPTIMISM * 0.5) * 10 - 1)
