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
from orchestrator.success.data import Measure, contact_frame
from orchestrator.targeting.capacity import UNLIMITED, load_capacity
from orchestrator.targeting.control import hash_positions
from orchestrator.targeting.planning import ELIGIBLE, plan_cycle
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


def _spec(tmp_path: Path, explore: float | None):
    path = tmp_path / f"explore-{explore}.yaml"
    path.write_text(RULES + ("" if explore is None else f"learning:\n  explore: {explore}\n"))
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


def _plan_and_record(engine, tmp_path, explore, *, calls=None, wave=WAVE):
    spec = _spec(tmp_path, explore)
    (plan,) = plan_cycle(
        [spec], [_candidates()], _capacity(tmp_path, calls), {}, wave_key=wave, global_control_shares=[GLOBAL]
    )
    campaign = ledger.ensure_campaign(engine, spec.name, None)
    ref = ledger.open_wave(engine, campaign, f"{wave}-{explore}-{calls}", spec.sha256)
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
    assert all(r.channel_propensity == 1.0 for r in rows.values() if r.arm != "treatment")
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


def test_success_frame_reads_the_propensities_back_for_the_training_frame(engine, tmp_path):
    _plan, rows = _plan_and_record(engine, tmp_path, 0.2)
    frame = contact_frame(engine, "explore-test", load_outcomes(REPO / "rules"), Measure(), waves=[f"{WAVE}-0.2-None"])
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
