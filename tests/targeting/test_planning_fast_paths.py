"""The plan stage's shortcuts give what the plain computations give, on random cases.

Each test below states the plain computation the planning code used before its shortcut (a pandas
map per customer, the reasons as object arrays, the exploration step run in full) and checks the
shortcut against it, so a shortcut that drifts fails here rather than in a million-customer wave.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestrator.targeting.planning import (
    _REASON_CODES,
    _REASON_NAMES,
    NOT_TREATED,
    _Allocated,
    _explore,
    _not_treated,
    _Options,
    territory_pools,
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
    options = _Options(customer, channel.copy(), rng.normal(5, 3, len(customer)), channel)
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
