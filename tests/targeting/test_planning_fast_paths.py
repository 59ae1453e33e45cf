"""The plan stage's shortcuts give what the plain computations give, on random cases.

Each test below states the plain computation the planning code used before its shortcut (a pandas
map per customer, the reasons as object arrays, the exploration step run in full, ``lexsort``, the busy
customers of a tie by ``isin``, the arms by ``np.where``) and checks the
shortcut against it, so a shortcut that drifts fails here rather than in a million-customer wave.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from orchestrator.targeting.allocation import _by, _canonical_ties
from orchestrator.targeting.options import Options, territory_pools
from orchestrator.targeting.planning import (
    _REASON_CODES,
    _REASON_NAMES,
    NOT_TREATED,
    _Allocated,
    _explore,
    _not_treated,
)


def _pandas_territory_pools(territories: np.ndarray, by_territory: dict[str, int]) -> np.ndarray:
    """The lookup as planning made it before: one pandas map over every customer's territory text."""
    return pd.Series(territories).astype(str).map(by_territory).fillna(-1).to_numpy(dtype=np.int64)


@pytest.mark.parametrize("seed", range(5))
def test_territory_pools_is_the_per_customer_pandas_lookup(seed):
    rng = np.random.default_rng(seed)
    kinds = np.array(["T01", "T02", "T13", "nowhere", None, np.nan, 7, 7.5, "", "None"], dtype=object)
    territories = kinds[rng.integers(0, len(kinds), 5_000)]
    by_territory = {"T01": 3, "T02": 4, "T13": 9, "7": 11, "": 12}
    if seed % 2:
        by_territory["None"] = 13  # a territory spelt like a missing one still is missing
    got = territory_pools(territories, by_territory)
    assert got.dtype == np.int64
    assert np.array_equal(got, _pandas_territory_pools(territories, by_territory))
    assert territory_pools(territories[:0], by_territory).shape == (0,)


def _object_not_treated(everyone, reason, reachable, lost, winner_of, active, cut, below_min):
    """``_not_treated`` as it was with the reasons as object arrays (None: recorded)."""
    n = len(everyone)
    in_active = np.zeros(n, dtype=bool)
    in_active[active] = True
    position = np.arange(n)
    reason = reason.copy()
    detail = np.full(n, None, dtype=object)
    reason[~in_active & (position >= cut)] = "below_score_cut"
    reason[~in_active & (position < cut) & ~reachable] = "no_eligible_channel"
    reason[lost] = "lost_arbitration"
    detail[lost] = winner_of[lost]
    has = reason != None  # noqa: E711 - elementwise
    return (
        np.concatenate([everyone[has], np.asarray(below_min, dtype=object)]),
        np.concatenate([reason[has], np.full(len(below_min), "below_score_cut", dtype=object)]),
        np.concatenate([detail[has], np.full(len(below_min), None, dtype=object)]),
    )


@pytest.mark.parametrize("seed", range(6))
def test_not_treated_with_reason_codes_is_the_object_array_version(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    cut = int(rng.integers(0, n + 1))
    everyone = np.array([f"C{i}" for i in range(n)], dtype=object)
    reachable = rng.random(n) < 0.8
    lost = reachable & (rng.random(n) < 0.2)
    winner_of = np.where(lost, rng.choice(np.array(["a", "b"], dtype=object), n), None).astype(object)
    active = np.flatnonzero(reachable & ~lost & (rng.random(n) < 0.9))
    allocation = ["channel_full", "not_worth_cost", "control_unallocated"]
    codes = np.zeros(n, dtype=np.int8)
    named = np.full(n, None, dtype=object)
    for code in allocation:
        rows = active[rng.random(len(active)) < 0.2]
        codes[rows] = _REASON_CODES[code]
        named[rows] = code
    below_min = np.array([f"B{i}" for i in range(int(rng.integers(0, 5)))], dtype=object)
    got = _not_treated(everyone, codes, reachable, lost, winner_of, active, cut, below_min)
    want = _object_not_treated(everyone, named, reachable, lost, winner_of, active, cut, below_min)
    for column, expected in zip((got.customer_id, got.reason, got.detail), want, strict=True):
        assert column.dtype == object and column.tolist() == expected.tolist()
    assert set(_REASON_CODES) == set(NOT_TREATED) and _REASON_NAMES[0] is None


@pytest.mark.parametrize("seed", range(4))
def test_nobody_exploring_is_the_full_exploration_step_with_nobody_drawn(seed):
    """With every rate 0 ``_explore`` returns at once; the full step, forced by a rate above 0 on a
    customer without a channel (who cannot explore), gives the same channels and propensities."""
    rng = np.random.default_rng(seed)
    n = 2_000
    k = rng.integers(0, 4, n)  # 0 to 3 eligible channels
    customer = np.repeat(np.arange(n), k)
    channel = np.concatenate([rng.permutation(3)[:j] for j in k]).astype(np.int64)
    options = Options(customer, channel.copy(), rng.normal(5, 3, len(customer)), channel)
    first = np.searchsorted(customer, np.arange(n))
    chosen = np.where((k > 0) & (rng.random(n) < 0.7), first, -1)
    draws = rng.random(n), rng.random(n)

    fast = _Allocated.of(options, chosen)
    fast.propensity[:] = np.nan  # whatever was there before is overwritten
    fast_moved = _explore(fast, options, np.zeros(n), *draws, [None, None, None])

    full = _Allocated.of(options, chosen)
    rates = np.zeros(n)
    rates[np.flatnonzero(chosen < 0)[:1]] = 0.5  # not allocated: explores nothing, propensity 1
    assert rates.any()
    full_moved = _explore(full, options, rates, *draws, [None, None, None])

    assert not fast_moved.any() and not full_moved.any()
    for name in ("channel", "pool", "value", "propensity"):
        assert np.array_equal(getattr(fast, name), getattr(full, name), equal_nan=name == "value"), name
    assert (fast.propensity == 1.0).all()


@pytest.mark.parametrize("seed", range(6))
def test_combined_key_order_is_the_lexsort(seed):
    rng = np.random.default_rng(seed)
    n, n_minor = int(rng.integers(0, 3_000)), int(rng.integers(1, 40))
    major = rng.integers(0, 1 + seed * 7, n)  # few distinct values: long runs of equal keys
    minor = rng.integers(0, n_minor, n)
    if seed % 2:  # the options' usual shape: sorted runs
        major, minor = np.sort(major), np.sort(minor)
    assert np.array_equal(_by(major, minor, n_minor), np.lexsort((minor, major)))


def _isin_canonical_ties(cand, assigned, customer, pool, gain) -> None:
    """``_canonical_ties`` as it was: the busy customers by an ``isin`` and each pool's arcs by a mask, per pool."""
    cust = customer[cand]
    for q in np.unique(pool[cand][assigned]):
        busy = np.isin(cust, cust[assigned])
        mine = np.flatnonzero(pool[cand] == q)
        swappable = mine[assigned[mine] | ~busy[mine]]
        order = swappable[np.lexsort((cust[swappable], -gain[swappable]))]
        g = gain[order]
        start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        size = np.diff(np.r_[start, len(order)])
        n_assigned = np.add.reduceat(assigned[order].astype(np.int64), start) if len(order) else start
        split = (n_assigned > 0) & (n_assigned < size)
        for s, n, a in zip(start[split].tolist(), size[split].tolist(), n_assigned[split].tolist(), strict=True):
            group = order[s : s + n]
            assigned[group] = False
            assigned[group[:a]] = True


@pytest.mark.parametrize("seed", range(8))
def test_canonical_ties_are_the_isin_version(seed):
    """Random candidate arcs (customer, then pool order, as ``_fallback`` passes them) with gains of few
    values and at most one assigned arc per customer: the same swaps as the version with ``isin``."""
    rng = np.random.default_rng(seed)
    n_customers, n_pools = int(rng.integers(1, 300)), int(rng.integers(1, 6))
    arcs = np.array([(c, p) for c in range(n_customers) for p in range(n_pools) if rng.random() < 0.6], dtype=np.int64)
    if not len(arcs):
        return
    customer, pool = arcs[:, 0] * 3, arcs[:, 1]  # customer indices with gaps
    gain = rng.integers(1, 4, len(arcs)).astype(float) / 2
    assigned = np.zeros(len(arcs), dtype=bool)
    for c in np.unique(customer):
        mine = np.flatnonzero(customer == c)
        if rng.random() < 0.5:
            assigned[rng.choice(mine)] = True
    cand = np.arange(len(arcs))
    got, want = assigned.copy(), assigned.copy()
    _canonical_ties(cand, got, customer, pool, gain[cand])
    _isin_canonical_ties(cand, want, customer, pool, gain[cand])
    assert np.array_equal(got, want)
    if seed == 0:
        assert not np.array_equal(got, assigned)  # the case does swap


@pytest.mark.parametrize("share", [0.0, 0.3, 0.9])
def test_split_arms_are_the_where_of_arm_names(share):
    from orchestrator.db.tables import Arm
    from orchestrator.targeting.control import control_mask
    from orchestrator.targeting.selection import Candidates, split

    ids = [f"C{i}" for i in range(500)]
    spec = SimpleNamespace(
        control=SimpleNamespace(share=share, salt="s", stratify_by_score=False),
        variants={},
        channels=SimpleNamespace(names=lambda: ["email"]),
    )
    arms = split(spec, Candidates(ids, None, ["G1"])).contacts.arm
    control = control_mask(ids, share, "s")
    want = np.where(control, Arm.CONTROL.value, Arm.TREATMENT.value).astype(object)
    assert arms.dtype == object and arms[:-1].tolist() == want.tolist() and arms[-1] == Arm.GLOBAL_CONTROL.value
    assert all(type(a) is str for a in arms)


def test_extra_columns_stay_numbers_where_the_query_gives_numbers():
    """The selection keeps the eligibility flags as numbers (planning reads them as ``> 0``, as it read the
    objects before) and anything else, such as a territory's text, as objects."""
    from orchestrator.targeting.selection import _column

    frame = pd.DataFrame.from_records([(1, "T1", 1), (0, None, None)], columns=["flag", "territory", "gap"])
    flags = _column(frame["flag"])
    assert flags.dtype == np.int64 and flags.tolist() == [1, 0]
    assert _column(frame["territory"]).dtype == object and _column(frame["territory"])[0] == "T1"
    before = frame["gap"].to_numpy(dtype=object)
    assert np.array_equal(np.asarray(_column(frame["gap"]), dtype=float) > 0, np.asarray(before, dtype=float) > 0)
