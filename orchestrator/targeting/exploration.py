"""Exploration: a share of the allocated customers gets a channel drawn among their eligible ones.

Contract (plain functions over numpy columns; ``planning.plan_cycle`` calls them, step 7 of its docstring):

- ``explore_rate(spec, candidates)``: the campaign's share ``e`` this wave (``learning.explore``, or
  ``learning.cold_start`` while no model gives per-channel effects);
- ``_draws``: two stable uniform draws per customer salted with (campaign, wave key): whether it explores
  and which channel, so a re-run of the wave draws the same;
- ``regret_weighted_rates`` / ``regret_scale`` / ``channel_draw_weights``: once a model gives values, each
  customer's rate and channel draw lean towards the channels the model sees as close to the best one,
  every eligible channel keeping a known, non-zero propensity;
- ``_explore``: moves the explorers within the pools' capacities (``_fitting_moves``) and sets every
  allocated customer's channel propensity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from orchestrator.rules.spec import CampaignSpec
from orchestrator.targeting.control import hash_positions
from orchestrator.targeting.selection import Candidates

if TYPE_CHECKING:
    from orchestrator.targeting.options import Options

UNIFORM_SHARE = 0.25
"""The part of an explorer's channel draw that stays uniform over its eligible channels once a model
gives values (the rest leans toward the channels the model sees as close to the best)."""


def explore_rate(spec: CampaignSpec, candidates: Candidates) -> float:
    """The campaign's exploration share this wave: ``learning.explore``, or while no model gives the
    campaign per-channel effects (a cold start: wave 1, or targeting without a channel uplift model)
    ``learning.cold_start`` if that is larger; 0 without a ``learning:`` section."""
    learning = spec.learning
    if candidates.effects is None and len(spec.channels.names()) > 1:
        return max(learning.explore, learning.cold_start)
    return learning.explore


def _draws(
    specs: Sequence[CampaignSpec], rates: Sequence[float], ids: Sequence[Sequence[str] | np.ndarray], wave_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per customer two stable uniform draws salted with (campaign, wave key): whether it explores and
    which channel; a re-run of the wave draws the same. A campaign's ids are read only where its rate is
    above 0 (else any sequence of the right length will do: its draws are all 1, nobody explores)."""
    draws = [
        (
            np.concatenate(
                [np.zeros(0)]
                + [
                    hash_positions(list(group), f"{s.name}\x00{wave_key}\x00{part}") if rate else np.ones(len(group))
                    for s, rate, group in zip(specs, rates, ids, strict=True)
                ]
            )
        )
        for part in ("explore", "explore-channel")
    ]
    return draws[0], draws[1]


def _regret(allocated: _Allocated, eligible: Options) -> tuple[np.ndarray, np.ndarray]:
    """Per treated customer, what a uniformly drawn eligible channel is expected to lose against the
    allocated one (its value minus the mean value of the eligible channels, at least 0), and whether
    the customer has another channel to explore at all."""
    n = len(allocated.channel)
    k = np.bincount(eligible.customer, minlength=n)
    total = np.bincount(eligible.customer, weights=np.nan_to_num(eligible.value), minlength=n)
    got = allocated.channel >= 0
    regret = np.where(got, np.maximum(np.nan_to_num(allocated.value) - total / np.maximum(k, 1), 0.0), 0.0)
    return regret, got & (k > 1)


def regret_scale(regret: np.ndarray, can_move: np.ndarray) -> float:
    """The typical regret of the customers who can explore: the median, or the mean of the positive
    regrets where the median is 0; 0 where every choice is a tie."""
    mine = regret[can_move]
    if not len(mine):
        return 0.0
    scale = float(np.median(mine))
    if scale <= 0:
        positive = mine[mine > 0]
        scale = float(positive.mean()) if len(positive) else 0.0
    return scale


def channel_draw_weights(
    eligible: Options, n: int, scales: np.ndarray, leaning: np.ndarray, uniform_share: float = UNIFORM_SHARE
) -> np.ndarray:
    """Per eligible option, the chance that an exploring customer draws its channel: uniform over the
    customer's ``k`` eligible channels where the model gives no values (``leaning`` False) or the
    customer's ``scales`` is 0; otherwise ``uniform_share / k`` plus ``1 - uniform_share`` times a
    softmax of the options' values at temperature ``scales`` (the typical regret), so an explorer
    mostly tries the channels the model sees as close to its best one, and every eligible channel
    keeps at least ``uniform_share / k`` (a known, non-zero propensity). Sums to 1 per customer."""
    customer = eligible.customer
    k = np.bincount(customer, minlength=n).astype(float)
    uniform = 1.0 / np.maximum(k[customer], 1.0)
    value = np.nan_to_num(eligible.value, nan=-np.inf)
    temperature = scales[customer]
    lean = leaning & (temperature > 0) & np.isfinite(value)
    if not lean.any():
        return uniform
    best = np.full(n, -np.inf)
    np.maximum.at(best, customer[lean], value[lean])
    z = np.zeros(len(customer))
    z[lean] = np.exp((value[lean] - best[customer[lean]]) / temperature[lean])
    total = np.bincount(customer, weights=z, minlength=n)
    leaned = np.where(total[customer] > 0, z / np.where(total[customer] > 0, total[customer], 1.0), uniform)
    by_customer = np.zeros(n, dtype=bool)
    by_customer[customer[lean]] = True
    return np.where(by_customer[customer], uniform_share * uniform + (1 - uniform_share) * leaned, uniform)


def regret_weighted_rates(rate: float, regret: np.ndarray, can_move: np.ndarray) -> np.ndarray:
    """Exploration rates that average ``rate`` over the customers who can explore, higher where the
    model sees the channels as close (exploring them costs little and tells most about the choice)
    and lower where the allocated channel is far ahead: weight ``m / (regret + m)`` with ``m`` the
    median regret, scaled to the mean ``rate``, kept within ``[rate / 4, min(3 rate, 1)]`` so every
    customer keeps a known, non-zero chance of every eligible channel (the recorded propensity)."""
    out = np.full(len(regret), rate)
    if not can_move.any() or rate <= 0:
        return out
    scale = regret_scale(regret, can_move)
    if scale <= 0:  # every choice is a tie: uniform
        return out
    weight = scale / (regret + scale)
    weighted = np.clip(rate * weight / weight[can_move].mean(), rate / 4, min(3 * rate, 1.0))
    return np.where(can_move, weighted, out)


@dataclass
class _Allocated:
    """Per treated customer (of all campaigns): channel index (-1: none), pool, value and channel propensity."""

    channel: np.ndarray
    pool: np.ndarray
    value: np.ndarray
    propensity: np.ndarray

    @classmethod
    def of(cls, options: Options, chosen: np.ndarray) -> _Allocated:
        got = chosen >= 0
        channel = np.full(len(chosen), -1, dtype=np.int64)
        pool = np.full(len(chosen), -1, dtype=np.int64)
        value = np.full(len(chosen), np.nan)
        channel[got] = options.channel[chosen[got]]
        pool[got] = options.pool[chosen[got]]
        value[got] = options.value[chosen[got]]
        return cls(channel, pool, value, np.ones(len(chosen)))


def _explore(
    allocated: _Allocated,
    eligible: Options,
    rates: np.ndarray,
    explore_at: np.ndarray,
    channel_at: np.ndarray,
    capacities: Sequence[int | None],
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Move explored customers to a drawn eligible channel within the pools' capacity (in place).

    A customer explores when ``explore_at < rate``; the drawn channel is the one of its eligible
    options (in channel order) whose cumulative ``weights`` (per option, summing to 1 per customer;
    uniform if None: the ``floor(channel_at * k)``-th of the k) first exceed ``channel_at``. Explorers leaving a
    pool free its room for explorers drawn into it, so exploration works when every pool is
    full: moves are accepted, then the moves into a pool over its capacity are undone, latest
    ``explore_at`` first, until every pool fits (undoing a move refills the pool it came from, so
    this repeats; it ends, at the latest, with the allocation as it was). Sets every allocated
    customer's channel propensity and returns the mask of the moved ones.
    """
    n = len(allocated.channel)
    if not np.any(rates > 0):  # nobody explores: every channel propensity is 1 (1 - 0 + 0 x own)
        allocated.propensity[:] = 1.0
        return np.zeros(n, dtype=bool)
    got = allocated.channel >= 0
    k = np.bincount(eligible.customer, minlength=n)
    if weights is None:
        weights = 1.0 / np.maximum(k[eligible.customer], 1)
    order = np.lexsort((eligible.channel, eligible.customer))  # each customer's options, in channel order
    sorted_customer = eligible.customer[order]
    first = np.searchsorted(sorted_customer, np.arange(n))
    cumulative = np.cumsum(weights[order])
    before = np.concatenate([[0.0], cumulative])[first]  # the weights of earlier customers' options
    own = np.zeros(n)  # the weight of the allocated channel's option
    for t in range(int(k.max()) if len(k) else 0):
        at = np.minimum(first + t, len(order) - 1)
        here = got & (t < k) & (eligible.channel[order[at]] == allocated.channel)
        own[here] = weights[order[at[here]]]
    allocated.propensity[:] = np.where(got & (k > 0), 1 - rates + rates * own, 1.0)
    explorers = np.flatnonzero(got & (explore_at < rates) & (k > 0))
    moved = np.zeros(n, dtype=bool)
    if not len(explorers):
        return moved
    nth = np.zeros(len(explorers), dtype=np.int64)  # options whose cumulative weight stays at or below the draw
    for t in range(int(k[explorers].max()) - 1):
        upto = cumulative[np.minimum(first[explorers] + t, len(cumulative) - 1)] - before[explorers]
        nth += (t < k[explorers] - 1) & (upto <= channel_at[explorers])
    row = order[first[explorers] + nth]
    other = eligible.channel[row] != allocated.channel[explorers]
    explorers, row = explorers[other], row[other]
    accepted = _fitting_moves(
        allocated.pool[got], allocated.pool[explorers], eligible.pool[row], explore_at[explorers], capacities
    )
    explorers, row = explorers[accepted], row[accepted]
    allocated.channel[explorers] = eligible.channel[row]
    allocated.pool[explorers] = eligible.pool[row]
    allocated.value[explorers] = eligible.value[row]
    allocated.propensity[explorers] = rates[explorers] * weights[row]
    moved[explorers] = True
    return moved


def _fitting_moves(
    occupied: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    priority: np.ndarray,
    capacities: Sequence[int | None],
) -> np.ndarray:
    """Which moves (``source`` pool -> ``target`` pool) can all be made without a pool exceeding its
    capacity, given the pools of the customers before the moves (``occupied``): every move at first;
    then, while a pool is over, its incoming moves with the highest ``priority`` value are dropped."""
    size = len(capacities)
    limited = np.array([cap is not None for cap in capacities], dtype=bool)
    caps = np.array([cap if cap is not None else 0 for cap in capacities], dtype=np.int64)
    before = np.bincount(occupied, minlength=size)
    accepted = np.ones(len(source), dtype=bool)
    by_target = np.lexsort((-priority, target))  # within a target pool: the latest drawn first
    sorted_target = target[by_target]
    while True:
        occupancy = (
            before - np.bincount(source[accepted], minlength=size) + np.bincount(target[accepted], minlength=size)
        )
        excess = np.where(limited, occupancy - caps, 0)
        if not (excess > 0).any():
            return accepted
        live = accepted[by_target]
        rank = np.cumsum(live) - live  # among the accepted moves into the same pool, latest first
        rank -= np.concatenate([[0], np.cumsum(live)])[np.searchsorted(sorted_target, sorted_target, side="left")]
        drop = live & (rank < excess[sorted_target])
        accepted[by_target[drop]] = False
