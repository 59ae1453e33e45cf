"""Exploration (``learning: {explore: e}``) and the recorded propensities, planned and written to the ledger.

A campaign with e-mail and call center: every customer may get an e-mail, two in three also a
call (the better channel); planning runs on hand-made candidates, the contacts go to the real
ledger (SQLite and PostgreSQL) and are read back from there.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from orchestrator.errors import ValidationFailed
from orchestrator.learning.training_data import META
from orchestrator.ledger import contacts as ledger
from orchestrator.rules.loader import load_campaign
from orchestrator.rules.outcomes import load_outcomes
from orchestrator.rules.spec import COLD_START_EXPLORE
from orchestrator.success.data import Measure, contact_frame
from orchestrator.targeting.capacity import UNLIMITED, load_capacity
from orchestrator.targeting.control import hash_positions
from orchestrator.targeting.options import Options
from orchestrator.targeting.planning import (
    ELIGIBLE,
    UNIFORM_SHARE,
    _Allocated,
    _explore,
    channel_draw_weights,
    explore_rate,
    plan_cycle,
    regret_weighted_rates,
)
from orchestrator.targeting.selection import Candidates
from tests.support import REPO

N = 3000
WAVE = "2026-11-24"
GLOBAL = 0.05
RULES = """\
name: explore-test
control: {share: 0.1}
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


def _spec(tmp_path: Path, explore: float | None, cold_start: float = 0.0):
    """The campaign with ``learning: {explore, cold_start}`` (none without ``explore``); these
    candidates carry no per-channel effects, so ``cold_start`` applies when larger."""
    path = tmp_path / f"explore-{explore}-{cold_start}.yaml"
    learning = f"learning:\n  explore: {explore}\n  cold_start: {cold_start}\n"
    path.write_text(RULES + ("" if explore is None else learning))
    return load_campaign(path, columns=None)


def _candidates() -> Candidates:
    ids = [f"C{i:05d}" for i in range(N)]
    callable_ = np.arange(N) % 3 != 0  # two in three have both channels
    extra = {ELIGIBLE + "email": np.ones(N, dtype=np.int64), ELIGIBLE + "call_center": callable_.astype(np.int64)}
    return Candidates(ids, None, [f"G{i:03d}" for i in range(100)], extra=extra)


def _capacity(tmp_path: Path, calls: int | None):
    if calls is None:
        return UNLIMITED
    folder = tmp_path / f"capacity-{calls}"
    folder.mkdir(exist_ok=True)
    (folder / "capacity.yaml").write_text(f"call_center:\n  tasks_per_day: {calls}\n")
    return load_capacity(folder)


def _plan_and_record(engine, tmp_path, explore, *, calls=None, wave=WAVE, cold_start=0.0):
    spec = _spec(tmp_path, explore, cold_start)
    (plan,) = plan_cycle(
        [spec], [_candidates()], _capacity(tmp_path, calls), {}, wave_key=wave, global_control_shares=[GLOBAL]
    )
    campaign = ledger.ensure_campaign(engine, spec.name, None)
    ref = ledger.open_wave(engine, campaign, f"{wave}-{explore}-{calls}-{cold_start}", spec.sha256)
    ledger.record_contacts(engine, ref.id, plan.contacts)
    c = ledger.contacts
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.c.customer_id, c.c.arm, c.c.channel, c.c.arm_propensity, c.c.channel_propensity)
            .where(c.c.wave_id == ref.id)
            .order_by(c.c.customer_id)
        ).all()
    return plan, {r.customer_id: r for r in rows}


def _binomial_ok(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_explore_0_leaves_the_ledger_as_before_with_channel_propensity_1(engine, tmp_path):
    _plan, before = _plan_and_record(engine, tmp_path, None)
    _plan, off = _plan_and_record(engine, tmp_path, 0)
    assert [(r.customer_id, r.arm, r.channel) for r in before.values()] == [
        (r.customer_id, r.arm, r.channel) for r in off.values()
    ]
    assert all(r.channel_propensity == 1.0 for r in off.values())
    arms = {r.arm: r.arm_propensity for r in off.values()}
    assert arms["treatment"] == pytest.approx(0.9) and arms["control"] == pytest.approx(0.1)
    assert arms["global_control"] == pytest.approx(GLOBAL)
    # without a capacity limit every treated customer who may be called is called
    callable_ = {cid for cid, ok in zip(_candidates().ids, range(N), strict=True) if ok % 3 != 0}
    treated = [r for r in off.values() if r.arm == "treatment"]
    assert all((r.channel == "call_center") == (r.customer_id in callable_) for r in treated)


def test_explore_moves_a_hashed_share_to_a_random_other_eligible_channel(engine, tmp_path):
    e = 0.2
    _plan, base = _plan_and_record(engine, tmp_path, 0)
    plan, rows = _plan_and_record(engine, tmp_path, e)
    treated = [r for r in rows.values() if r.arm == "treatment"]
    two = [r for r in treated if r.customer_id in {cid for cid in base if base[cid].channel == "call_center"}]
    one = [r for r in treated if r not in two]
    assert len(two) > 1500 and len(one) > 700
    # the explorers: position below e in the hash of (campaign, customer, wave key)
    ids = [r.customer_id for r in two]
    explorers = hash_positions(ids, f"explore-test\x00{WAVE}\x00explore") < e
    assert _binomial_ok(int(explorers.sum()), len(two), e)
    moved = np.array([r.channel != base[r.customer_id].channel for r in two])
    assert not (moved & ~explorers).any()  # only explorers move
    # each explorer draws uniformly among its 2 channels: about half of them leave the allocated one
    assert _binomial_ok(int(moved.sum()), int(explorers.sum()), 1 / 2)
    assert _binomial_ok(int(moved.sum()), len(two), e / 2) and plan.explored == int(moved.sum())
    assert all(r.channel == "email" for r in one)  # a single eligible channel: nowhere to go
    # propensities: 1 - e + e/k for the allocated channel, e/k for an explored other one; they sum to 1
    for r, m in zip(two, moved.tolist(), strict=True):
        allocated, other = 1 - e + e / 2, e / 2
        assert r.channel_propensity == pytest.approx(other if m else allocated)
        assert allocated + other == pytest.approx(1)
    assert all(r.channel_propensity == pytest.approx(1) for r in one)
    assert all(r.channel_propensity == 1.0 for r in rows.values() if r.arm == "global_control")
    # the mirrored control group explores the same way: its no-contact rows have the same propensities
    control = [r for r in rows.values() if r.arm == "control" and base[r.customer_id].channel == "call_center"]
    c_moved = np.array([r.channel != base[r.customer_id].channel for r in control])
    c_explorers = hash_positions([r.customer_id for r in control], f"explore-test\x00{WAVE}\x00explore") < e
    assert c_moved.any() and not (c_moved & ~c_explorers).any()
    for r, m in zip(control, c_moved.tolist(), strict=True):
        assert r.channel_propensity == pytest.approx(e / 2 if m else 1 - e + e / 2)
    # the same wave again draws the same; another wave key draws others
    _plan, again = _plan_and_record(engine, tmp_path, e)
    assert [(r.customer_id, r.channel, r.channel_propensity) for r in again.values()] == [
        (r.customer_id, r.channel, r.channel_propensity) for r in rows.values()
    ]
    _plan, other_wave = _plan_and_record(engine, tmp_path, e, wave="2026-12-01")
    assert [r.channel for r in other_wave.values()] != [r.channel for r in rows.values()]


def test_exploration_never_exceeds_a_pools_capacity(engine, tmp_path):
    calls = 400
    _plan, base = _plan_and_record(engine, tmp_path, 0, calls=calls)
    plan, rows = _plan_and_record(engine, tmp_path, 0.5, calls=calls)
    called = [r for r in base.values() if r.arm == "treatment" and r.channel == "call_center"]
    assert len(called) == calls  # the allocation fills the call center
    assert sum(r.arm == "treatment" and r.channel == "call_center" for r in rows.values()) <= calls
    # e-mail explorers who drew the (full) call center keep their e-mail; call explorers may move to e-mail
    assert plan.explored > 0
    assert all(
        r.channel == "call_center"
        for r in rows.values()
        if r.arm == "treatment" and base[r.customer_id].channel == "call_center" and r.channel_propensity > 0.5
    )


def test_full_pools_explore_by_swapping_and_stay_within_capacity(engine, tmp_path):
    """Every call is taken and nobody else is free to take one: call explorers leaving for e-mail make
    room for e-mail explorers drawn to the call center, and no pool ever exceeds its capacity."""
    calls = 1500
    _plan, base = _plan_and_record(engine, tmp_path, 0, calls=calls)
    plan, rows = _plan_and_record(engine, tmp_path, 0.4, calls=calls)
    treated = [r for r in rows.values() if r.arm == "treatment"]
    called = [r for r in treated if r.channel == "call_center"]
    assert sum(base[r.customer_id].channel == "call_center" for r in treated) == calls  # full before
    assert len(called) <= calls
    into = [r for r in called if base[r.customer_id].channel == "email"]
    out = [r for r in treated if base[r.customer_id].channel == "call_center" and r.channel == "email"]
    assert into and out and len(into) <= len(out)  # moves into the full call center only as others leave it
    assert plan.explored == len(into) + len(out)
    assert all(r.channel_propensity == pytest.approx(0.4 / 2) for r in into + out)


def test_cold_start_explores_more_until_a_model_gives_channel_effects(tmp_path):
    path = tmp_path / "cold.yaml"
    path.write_text(RULES + "learning:\n  explore: 0.1\n")
    spec = load_campaign(path, columns=None)
    assert spec.learning.cold_start == COLD_START_EXPLORE
    cold = _candidates()
    assert explore_rate(spec, cold) == COLD_START_EXPLORE  # no per-channel effects yet: the larger share
    warm = Candidates(cold.ids, np.zeros(N), [], extra=cold.extra, effects=np.zeros((N, 2)))
    assert explore_rate(spec, warm) == 0.1
    without = _spec(tmp_path, None)
    assert explore_rate(without, cold) == 0.0  # no learning: section, no exploration at all


def test_success_frame_reads_the_propensities_back_for_the_training_frame(engine, tmp_path):
    _plan, rows = _plan_and_record(engine, tmp_path, 0.2)
    frame = contact_frame(
        engine, "explore-test", load_outcomes(REPO / "rules"), Measure(), waves=[f"{WAVE}-0.2-None-0.0"]
    )
    assert len(frame) == sum(r.arm != "global_control" for r in rows.values())
    for cid, p_arm, p_channel in zip(
        frame["customer_id"], frame["arm_propensity"], frame["channel_propensity"], strict=True
    ):
        assert (p_arm, p_channel) == pytest.approx((rows[cid].arm_propensity, rows[cid].channel_propensity))
    assert {"arm_propensity", "channel_propensity"} <= set(META)  # never taken for features


@pytest.mark.parametrize("value", ["0.7", "-0.1"])
def test_explore_outside_0_to_half_is_an_error_at_its_line(tmp_path, value):
    path = tmp_path / "c.yaml"
    path.write_text(RULES + f"learning:\n  explore: {value}\n")
    with pytest.raises(ValidationFailed) as info:
        load_campaign(path, columns=None)
    bound = "at most 0.5" if value == "0.7" else "at least 0.0"
    assert f"c.yaml:15:12: 'explore' must be {bound}, not {value}" in str(info.value)


def test_regret_weighted_rates_average_the_share_and_keep_every_channel_possible():
    rng = np.random.default_rng(7)
    regret = rng.exponential(5.0, 10_000)
    can = rng.random(10_000) < 0.8
    rates = regret_weighted_rates(0.1, regret, can)
    assert rates[can].mean() == pytest.approx(0.1, rel=0.05)
    assert rates.min() >= 0.1 / 4 and rates.max() <= 0.3 + 1e-12
    order = np.argsort(regret[can])  # the closer the channels, the more exploring
    assert (np.diff(rates[can][order]) <= 1e-12).all()
    assert (rates[~can] == 0.1).all()
    assert (regret_weighted_rates(0.1, np.zeros(100), np.ones(100, dtype=bool)) == 0.1).all()  # ties: uniform


def test_with_channel_effects_close_choices_explore_more_and_record_their_rate(tmp_path):
    """Half the callable customers gain about as much from a call as from an e-mail, half far more from
    the call: once a model gives effects, the close half explores more, the far half less, and every
    contact's propensity is its own rate."""
    e = 0.2
    spec = _spec(tmp_path, e)
    cand = _candidates()
    close = (np.arange(N) % 2 == 0) & (np.arange(N) % 3 != 0)
    effects = np.column_stack([np.full(N, 0.5), np.where(close, 0.1, 0.9)])  # value 10 / 60, cost 1 / 6
    cand.effects = effects
    (plan,) = plan_cycle([spec], [cand], UNLIMITED, {}, wave_key=WAVE, global_control_shares=[GLOBAL])
    contacts = plan.contacts
    treated = contacts.arm == "treatment"
    ids = np.asarray(contacts.customer_id, dtype=object)
    index = {cid: i for i, cid in enumerate(cand.ids)}
    pos = np.array([index.get(c, 0) for c in ids])  # global control ids (G...) are not treated
    two = treated & (pos % 3 != 0)
    allocated = np.where(close[pos], "email", "call_center")  # call: 0.1*60-6=0 < e-mail 0.5*10-1=4 for close
    moved = two & (np.asarray(contacts.channel, dtype=object) != allocated)
    near, far = two & close[pos], two & ~close[pos]
    assert moved[near].mean() > 1.5 * moved[far].mean()  # close choices explore more
    assert 0.3 * e / 2 < moved[two].mean() < 1.7 * e / 2  # about e in all, half of whom draw the other channel
    prop = np.asarray(contacts.channel_propensity, dtype=float)
    # each customer's propensities: r w for an explored other channel, 1 - r + r w' for the allocated one,
    # the same within each group (same values, same weights)
    rate = np.where(moved, 2 * prop, 2 * (1 - prop))
    assert np.allclose(rate[near], rate[near][0]) and np.allclose(rate[far], rate[far][0])
    assert rate[near][0] > rate[far][0] and e / 4 <= rate[far][0] and rate[near][0] <= 3 * e


def test_explorers_lean_toward_close_channels_with_the_recorded_propensities():
    """Three channels valued 10, 9 and -20 (the first allocated): an explorer draws the close second
    channel far more often than the poor third, the third keeps at least ``UNIFORM_SHARE / 3``, the
    draw frequencies match the weights and every contact's recorded propensity is the chance of its
    channel: ``1 - r + r w`` for the allocated one, ``r w`` for an explored one."""
    n, rate, scale = 30_000, 0.3, 2.0
    customer = np.repeat(np.arange(n), 3)
    channel = np.tile(np.arange(3), n)
    options = Options(customer, channel.copy(), np.tile([10.0, 9.0, -20.0], n), channel)
    weights = channel_draw_weights(options, n, np.full(n, scale), np.ones(3 * n, dtype=bool))
    per_customer = weights.reshape(n, 3)
    assert np.allclose(per_customer.sum(axis=1), 1.0)
    w = per_customer[0]
    assert w[1] > 4 * w[2] and w[2] >= UNIFORM_SHARE / 3 - 1e-12
    chosen = np.arange(0, 3 * n, 3)  # every customer allocated its first channel
    allocated = _Allocated.of(options, chosen)
    rng = np.random.default_rng(3)
    moved = _explore(allocated, options, np.full(n, rate), rng.random(n), rng.random(n), [None, None, None], weights)
    for j in (1, 2):
        count = int(np.count_nonzero(allocated.channel == j))
        assert _binomial_ok(count, n, rate * w[j])
        assert np.allclose(allocated.propensity[allocated.channel == j], rate * w[j])
    assert np.allclose(allocated.propensity[~moved], 1 - rate + rate * w[0])
    uniform = channel_draw_weights(options, n, np.zeros(n), np.ones(3 * n, dtype=bool))  # no scale: uniform
    assert np.allclose(uniform, 1 / 3)


def test_explorers_with_different_numbers_of_channels_draw_only_their_own():
    """Customers with 3, 2 and 1 eligible channels (the last ones with one): every explorer draws one of
    its own options, whatever the others have."""
    n = 3000
    k = np.where(np.arange(n) < 1000, 3, np.where(np.arange(n) < 2000, 2, 1))
    customer = np.repeat(np.arange(n), k)
    channel = np.concatenate([np.arange(j) for j in k])
    options = Options(customer, channel.copy(), -channel.astype(float), channel)
    weights = channel_draw_weights(options, n, np.full(n, 1.0), np.ones(len(customer), dtype=bool))
    first = np.searchsorted(customer, np.arange(n))
    allocated = _Allocated.of(options, first)
    rng = np.random.default_rng(5)
    moved = _explore(allocated, options, np.full(n, 0.5), rng.random(n), rng.random(n), [None] * 3, weights)
    assert (allocated.channel < k).all()  # only channels the customer is eligible for
    assert not moved[k == 1].any() and moved[k == 2].any() and (allocated.channel[k == 3] == 2).any()
