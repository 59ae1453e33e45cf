"""A cycle's allocation options: per (customer, channel) of a campaign, its expected value and capacity pool.

Contract (plain functions over numpy columns, no per-customer objects; ``planning.plan_cycle`` calls
them, steps 2 and 5 of its docstring):

- ``ELIGIBLE + channel`` and ``TERRITORY``: the planning columns of the candidates (computed in the
  selection query, ``planning.selection_columns``): one eligibility flag per channel (read as ``> 0``)
  and the field force's territory;
- ``channel_values``: the expected value per (customer, channel), ``score x value - cost`` or with a channel
  uplift model ``effect(channel, customer) x value - cost``; NaN where the customer is not eligible
  (or, with effects, is negative on every channel); with ``learning.optimism`` (``optimistic``) the
  effect is optimistic on the pools the plain allocation left room in (``Optimism``);
- ``option_sets``: the ``Options`` rows (customer, pool, value, channel) the allocation weighs (with
  ``overflow: wait`` only each customer's best channel) and every eligible one (exploration draws
  among them); ``concat_options`` joins the options of several campaigns;
- ``territory_pools``: the pool index of each customer's territory, -1 where it has none;
- ``eligible_names``: per customer the channels it is eligible for, comma-separated (what a contact
  records as ``ContactFrame.eligible``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchestrator.rules.kinds import channel_kind
from orchestrator.rules.spec import CampaignSpec
from orchestrator.targeting.capacity import pool_name
from orchestrator.targeting.selection import Candidates

ELIGIBLE = "eligible:"
TERRITORY = "territory"


def _channel_pool(spec: CampaignSpec, name: str) -> str:
    """The capacity pool of channel ``name`` whose kind has no territory pools: one per channel or per endpoint."""
    kind = channel_kind(name)
    if kind.pool == "endpoint":
        return pool_name(name, kind.endpoint_key(spec.channels.section(name)))
    return name


def _eligible(name: str, extra: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Per customer whether it is eligible for channel ``name``: its flag (``> 0``) and, for a channel with
    territory pools, a territory."""
    if not n:
        return np.zeros(0, dtype=bool)
    ok = np.asarray(extra[ELIGIBLE + name], dtype=float) > 0
    if channel_kind(name).pool == "territory":
        ok &= np.asarray(extra[TERRITORY], dtype=object) != None  # noqa: E711 - elementwise
    return ok


def channel_values(
    spec: CampaignSpec,
    candidates: Candidates,
    extra: Mapping[str, np.ndarray],
    n: int,
    idle: Optimism | None = None,
) -> np.ndarray:
    """Expected value per (customer, channel of the campaign); NaN where not eligible.

    With per-channel effects (a channel uplift model, ``Candidates.effects``) the value of a channel is
    ``effect(channel, customer) x value - cost`` (the one score where the model does not know the
    channel), and customers whose value is negative on every eligible channel get no option at all.
    With ``learning.optimism`` and ``idle`` (the pools the plain allocation left room in) the effect of a
    channel whose pool is idle for the customer is optimistic: plus that many of its spreads
    (``Candidates.spread``).
    """
    scores = (
        np.ones(n) if candidates.scores is None else np.nan_to_num(np.asarray(candidates.scores, dtype=float), nan=0.0)
    )
    effects = candidates.effects
    names = spec.channels.names()
    if effects is not None and idle is not None and optimistic(spec, candidates):
        effects = effects.copy()
        for j, name in enumerate(names):  # the benefit of the doubt, where the plain allocation left room
            room = idle.room(_pool_ids(spec, name, extra.get(TERRITORY), idle.index, n))
            effects[room, j] += spec.learning.optimism * np.asarray(candidates.spread)[room, j]
    values = np.full((n, len(names)), np.nan)
    for j, (name, channel) in enumerate(spec.channels.items()):
        eligible = _eligible(name, extra, n)
        score = scores if effects is None else np.where(np.isnan(effects[:, j]), scores, effects[:, j])
        values[eligible, j] = score[eligible] * channel.value - channel.cost
    if effects is not None and n:
        values[~(np.nan_to_num(values, nan=-np.inf) >= 0).any(axis=1)] = np.nan  # sleeping dogs: left alone
    return values


def optimistic(spec: CampaignSpec, candidates: Candidates) -> bool:
    """Whether the campaign values channels optimistically (``learning.optimism`` and the effects' spread)."""
    return spec.learning.optimism > 0 and candidates.effects is not None and candidates.spread is not None


@dataclass(frozen=True)
class Optimism:
    """Where optimism applies: the pools (by index) the plain allocation of the cycle left room in."""

    index: Mapping[str, int]
    idle: np.ndarray  # bool per pool

    def room(self, pool_ids: np.ndarray) -> np.ndarray:
        return (pool_ids >= 0) & self.idle[np.maximum(pool_ids, 0)]


def _pool_ids(
    spec: CampaignSpec, name: str, territories: np.ndarray | None, pools: Mapping[str, int], n: int
) -> np.ndarray:
    """The pool index of channel ``name`` for each of ``n`` customers (-1: none, e.g. a territory without reps)."""
    if channel_kind(name).pool == "territory":  # territory -> its pool, as one vectorised lookup
        if territories is None:
            raise ValueError(f"{name} options need the customers' territories")
        prefix = pool_name(name, "")
        by_territory = {key[len(prefix) :]: index for key, index in pools.items() if key.startswith(prefix)}
        return territory_pools(territories, by_territory)
    return np.full(n, pools[_channel_pool(spec, name)], dtype=np.int64)


def eligible_names(spec: CampaignSpec, extra: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Per customer the campaign's channels it is eligible for, comma-separated in channel order
    (None for none): one code per customer, one string per distinct code."""
    names = spec.channels.names()
    if not n or not names:
        return np.full(n, None, dtype=object)
    code = np.zeros(n, dtype=np.int64)
    for j, name in enumerate(names):
        code |= _eligible(name, extra, n).astype(np.int64) << j
    table = np.array(
        [",".join(c for j, c in enumerate(names) if k >> j & 1) or None for k in range(1 << len(names))], dtype=object
    )
    return table[code]


@dataclass
class Options:
    """Allocation options of one group of customers: (customer, pool, value) rows."""

    customer: np.ndarray
    pool: np.ndarray
    value: np.ndarray
    channel: np.ndarray  # channel index in the campaign's channel list


def _options(
    spec: CampaignSpec,
    values: np.ndarray,
    territories: np.ndarray | None,
    pools: Mapping[str, int],
    offset: int = 0,
    *,
    every_eligible: bool = False,
) -> Options:
    """The customers' options; with ``overflow: wait`` only their best channel unless ``every_eligible``."""
    names = spec.channels.names()
    customers, pool_ids, vals, chans = [], [], [], []
    wait = spec.allocation.overflow == "wait" and not every_eligible
    best = np.full(len(values), -1)
    if wait and len(values):
        filled = np.where(np.isnan(values), -np.inf, values)
        best = np.where(np.isfinite(filled).any(axis=1), np.argmax(filled, axis=1), -1)
    for j, name in enumerate(names):
        rows = np.flatnonzero(~np.isnan(values[:, j]))
        if wait:
            rows = rows[best[rows] == j]
        keys = _pool_ids(spec, name, None if territories is None else territories[rows], pools, len(rows))
        known = keys >= 0  # a territory without reps has no visits to give
        rows, keys = rows[known], keys[known]
        customers.append(rows + offset)
        pool_ids.append(keys)
        vals.append(values[rows, j])
        chans.append(np.full(len(rows), j, dtype=np.int64))
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)  # noqa: E731
    return Options(cat(customers, np.int64), cat(pool_ids, np.int64), cat(vals, float), cat(chans, np.int64))


def territory_pools(territories: np.ndarray, by_territory: Mapping[str, int]) -> np.ndarray:
    """The pool index of each customer's territory (its text, as ``str``), -1 where the territory is missing
    (None or NaN) or has no pool: one lookup per distinct territory, not per customer."""
    codes, uniques = pd.factorize(np.asarray(territories, dtype=object))  # missing -> code -1
    lookup = np.array([by_territory.get(str(u), -1) for u in uniques] + [-1], dtype=np.int64)
    return lookup[codes]


def option_sets(
    spec: CampaignSpec, values: np.ndarray, territories: np.ndarray | None, pools: Mapping[str, int], offset: int = 0
) -> tuple[Options, Options]:
    """The options allocation weighs and every eligible option (for exploration): one set built once, since
    they differ only with ``overflow: wait`` (then the first keeps each customer's best channel)."""
    every = _options(spec, values, territories, pools, offset, every_eligible=True)
    if spec.allocation.overflow != "wait":
        return every, every
    return _options(spec, values, territories, pools, offset), every


def concat_options(parts: Sequence[Options]) -> Options:
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Options(empty, empty, np.zeros(0), empty)
    return Options(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("customer", "pool", "value", "channel")))
