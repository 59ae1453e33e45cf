"""Measuring targeting in a simulated world whose true effects are known: the engine's plan against
random targeting with the same contacts and an oracle that knows every customer's effect.

Used by the demo (after each wave) and by ``bench/learning_bench.py``. Everything is per customer of
the audience (``ids``, aligned arrays): each channel's true incremental effect, which channels the
customer is eligible for and (for the field force) its territory. A *pool* is what a budget counts:
``email``, ``call_center``, ``field_force:<territory>``.

- ``random_targeting``: the same number of contacts per pool, drawn at random among the eligible,
  one channel per customer, the most constrained pools first;
- ``oracle_targeting``: the budgets filled greedily by true ``effect x value - cost``, only where that
  is positive, one channel per customer;
- ``expected_buyers``: the sum of the true effects of the channels given (an expectation, not a draw).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["TargetingRatios", "expected_buyers", "oracle_targeting", "pool_of", "random_targeting"]

TERRITORIAL = "field_force"


def pool_of(channel: str, territory: str) -> str:
    """The budget a contact counts against."""
    return f"{TERRITORIAL}:{territory}" if channel == TERRITORIAL else channel


def expected_buyers(effects: Mapping[str, np.ndarray], index: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """The true effect of the channel each chosen customer (position ``index``) got; 0 without a channel."""
    out = np.zeros(len(index))
    for channel, effect in effects.items():
        mask = channels == channel
        out[mask] = np.asarray(effect)[index[mask]]
    return out


def random_targeting(
    counts: Mapping[str, int],
    eligible: Mapping[str, np.ndarray],
    territory: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``counts`` contacts per pool at random among the eligible: ``(positions, channels)``."""
    taken = np.zeros(len(territory), dtype=bool)
    chosen, channels = [], []
    for pool in sorted(counts, key=lambda p: (not p.startswith(TERRITORIAL), p != "call_center", p)):
        channel, _, key = pool.partition(":")
        if channel not in eligible:
            continue
        mask = eligible[channel] & ~taken
        if key:
            mask &= territory == key
        candidates = np.flatnonzero(mask)
        pick = rng.choice(candidates, size=min(counts[pool], len(candidates)), replace=False)
        taken[pick] = True
        chosen.append(pick)
        channels.append(np.full(len(pick), channel, dtype=object))
    if not chosen:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    return np.concatenate(chosen), np.concatenate(channels)


def oracle_targeting(
    budgets: Mapping[str, int],
    eligible: Mapping[str, np.ndarray],
    territory: np.ndarray,
    effects: Mapping[str, np.ndarray],
    values: Mapping[str, float],
    costs: Mapping[str, float],
) -> tuple[np.ndarray, np.ndarray]:
    """The budgets filled greedily by true net value (positive only): ``(positions, channels)``.
    A pool without a budget entry is unlimited."""
    who, which, net = [], [], []
    for channel, mask in eligible.items():
        index = np.flatnonzero(mask)
        gain = np.asarray(effects[channel])[index] * values[channel] - costs[channel]
        keep = gain > 0
        who.append(index[keep])
        which.append(np.full(int(keep.sum()), channel, dtype=object))
        net.append(gain[keep])
    if not who:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    order = np.argsort(-np.concatenate(net), kind="stable")
    customers, channels = np.concatenate(who)[order], np.concatenate(which)[order]
    left = dict(budgets)
    taken = np.zeros(len(territory), dtype=bool)
    chosen, chosen_channels = [], []
    for i, channel in zip(customers.tolist(), channels.tolist(), strict=True):
        pool = pool_of(channel, str(territory[i]))
        if taken[i] or (pool in left and left[pool] <= 0):
            continue
        taken[i] = True
        if pool in left:
            left[pool] -= 1
        chosen.append(i)
        chosen_channels.append(channel)
    return np.array(chosen, dtype=np.int64), np.array(chosen_channels, dtype=object)


@dataclass(frozen=True)
class TargetingRatios:
    """Expected incremental buyers of the engine's plan, of random targeting and of the oracle."""

    engine: float
    random: float
    oracle: float

    @property
    def to_random(self) -> float | None:
        return self.engine / self.random if self.random > 0 else None

    @property
    def to_oracle(self) -> float | None:
        return self.engine / self.oracle if self.oracle > 0 else None
