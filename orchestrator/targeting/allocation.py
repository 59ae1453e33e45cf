"""Channel allocation: each customer gets at most one option (a channel in a capacity pool).

Contract (pure functions over numpy columns, no database, no per-customer Python objects):

- An *option* ``k`` offers customer ``customer[k]`` a contact through pool ``pool[k]`` worth
  ``value[k]`` (expected value: score x value - cost; may be negative). A pool is what a
  capacity is counted in: ``email`` (often unlimited), ``call_center`` (tasks per day),
  ``field_force:<territory>`` (reps x visits per rep per day), ... A customer has at most one
  option per pool.
- Options with ``value < min_value`` are never chosen (not worth contacting); ``min_value`` must
  be >= 0, since not contacting a customer is worth 0.
- ``allocate(..., overflow="fallback")`` returns an allocation of **maximal total value** within
  the capacities (exact, up to 1e-6 per chosen option; see docs/allocation.md): a customer whose
  best pool is full falls back to another eligible pool when that is part of the optimum.
- ``allocate(..., overflow="wait")`` only gives customers their own best option; per capacitated
  pool the highest values win, the others are ``OVER_CAPACITY`` and wait for the next run.
- Same input, same output. Ties: a customer's best option among equal values is the one with
  the lower pool index; among customers of equal value (or equal gain) for a pool the lower
  customer index wins (see "Ties" in docs/allocation.md for the exact scope in fallback mode).

The algorithm (docs/allocation.md has the proofs): unlimited pools need no optimisation, each
customer's best eligible unlimited option is their *baseline*; for the capacitated pools only
the gain over the baseline matters, only the K highest gains per pool can be part of an
optimum (K = the capacities summed), and the pruned assignment problem is solved exactly as an
integral min-cost flow (OR-tools ``SimpleMinCostFlow``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np
from ortools.graph.python import min_cost_flow

__all__ = ["Allocation", "AllocationStatus", "COST_SCALE", "allocate"]

COST_SCALE = 1_000_000
"""Gains enter the min-cost flow as integers in units of 1 / COST_SCALE (micro-units)."""

_COST_LIMIT = 2**62  # |cost| x (nodes + 1) must stay below this (OR-tools scales costs by nodes + 1)


class AllocationStatus(IntEnum):
    """Per customer outcome; ``Allocation.status`` holds these codes as int8."""

    ASSIGNED = 0
    OVER_CAPACITY = 1  # had a worthwhile option, lost to capacity (with overflow="wait": waits)
    NOT_WORTH = 2  # has options, all below min_value
    NO_OPTION = 3  # has no option at all


@dataclass(frozen=True)
class Allocation:
    """The result of ``allocate``; arrays are indexed by customer (``option``, ``pool``, ``status``) or pool."""

    option: np.ndarray  # int64 per customer: the chosen option index, or -1
    pool: np.ndarray  # int64 per customer: the pool of the chosen option, or -1
    status: np.ndarray  # int8 per customer: an AllocationStatus code
    pool_counts: np.ndarray  # int64 per pool: customers allocated to it
    total_value: float  # sum of the chosen options' values

    def chosen_pool(self) -> np.ndarray:
        """The pool of each customer's chosen option, -1 where none was chosen."""
        return self.pool

    def count(self, status: AllocationStatus) -> int:
        """How many customers have ``status``."""
        return int(np.count_nonzero(self.status == int(status)))

    def status_names(self) -> np.ndarray:
        """The status of each customer as a lower-case name (``assigned``, ``over_capacity``, ...)."""
        names = np.array([s.name.lower() for s in AllocationStatus], dtype=object)
        return names[self.status]


def allocate(
    customer: np.ndarray,
    pool: np.ndarray,
    value: np.ndarray,
    capacities: Sequence[int | None],
    *,
    n_customers: int,
    overflow: Literal["fallback", "wait"] = "fallback",
    min_value: float = 0.0,
) -> Allocation:
    """Assign each customer at most one option, maximising the total value within the pool capacities.

    ``customer``, ``pool`` and ``value`` are aligned arrays, one entry per option: the customer
    index in ``[0, n_customers)``, the pool index in ``[0, len(capacities))`` and the expected
    value. ``capacities[p]`` is how many customers pool ``p`` takes (``None``: unlimited). See the
    module docstring for ``overflow`` and ``min_value``; raises ``ValueError`` on invalid input.
    """
    customer, pool, value, caps = _validate(customer, pool, value, capacities, n_customers, overflow, min_value)
    n_pools = len(caps)
    unlimited = caps < 0  # -1 encodes None
    eligible = np.flatnonzero(value >= min_value)

    if overflow == "wait":
        chosen = _wait(customer, pool, value, caps, eligible, n_customers)
    else:
        chosen = _fallback(customer, pool, value, caps, unlimited, eligible, n_customers)

    return _result(customer, pool, value, chosen, eligible, n_customers, n_pools)


# --- validation ---------------------------------------------------------------------------------


def _validate(customer, pool, value, capacities, n_customers, overflow, min_value):
    if overflow not in ("fallback", "wait"):
        raise ValueError(f"overflow must be 'fallback' or 'wait'. Got {overflow!r} instead.")
    if isinstance(n_customers, bool) or not isinstance(n_customers, (int, np.integer)) or n_customers < 0:
        raise ValueError(f"n_customers must be an int >= 0. Got {n_customers!r} instead.")
    if isinstance(min_value, bool) or not isinstance(min_value, (int, float, np.integer, np.floating)):
        raise ValueError(f"min_value must be a number. Got {min_value!r} instead.")
    if not np.isfinite(min_value) or min_value < 0:
        raise ValueError(
            f"min_value must be a finite number >= 0 (not contacting is worth 0, so an option "
            f"below 0 is never part of the optimum). Got {min_value!r} instead."
        )
    caps = _capacity_array(capacities)
    customer, pool, value = _option_arrays(customer, pool, value)
    if not (len(customer) == len(pool) == len(value)):
        raise ValueError(
            f"customer, pool and value must have one entry per option, the same length. "
            f"Got {len(customer)}, {len(pool)} and {len(value)} instead."
        )
    if len(customer):
        _check_range("customer", customer, n_customers, "n_customers")
        _check_range("pool", pool, len(caps), "len(capacities)")
        bad = np.flatnonzero(~np.isfinite(value))
        if len(bad):
            raise ValueError(f"value must be finite. Got {value[bad[0]]} at option {bad[0]} ({len(bad)} such options).")
        key = customer * len(caps) + pool
        order = np.argsort(key, kind="stable")
        dup = np.flatnonzero(key[order[1:]] == key[order[:-1]])
        if len(dup):
            a, b = order[dup[0]], order[dup[0] + 1]
            raise ValueError(
                f"each customer may have at most one option per pool: options {a} and {b} both give "
                f"customer {customer[a]} pool {pool[a]} ({len(dup)} duplicates). Keep the better one of each pair."
            )
    return customer, pool, value, caps


def _capacity_array(capacities) -> np.ndarray:
    """``capacities`` as int64, -1 for unlimited (``None``); each an int >= 0 or ``None``."""
    caps = np.empty(len(capacities), dtype=np.int64)
    for p, cap in enumerate(capacities):
        if cap is None:
            caps[p] = -1
        elif isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < 0:
            raise ValueError(f"capacities[{p}] must be an int >= 0 or None (unlimited). Got {cap!r} instead.")
        else:
            caps[p] = cap
    return caps


def _option_arrays(customer, pool, value) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``customer`` and ``pool`` as 1-D int64 arrays, ``value`` as a 1-D float64 array."""
    arrays = {}
    for name, arr, kind in (("customer", customer, "i"), ("pool", pool, "i"), ("value", value, "f")):
        a = np.asarray(arr)
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array (one entry per option). Got shape {a.shape} instead.")
        if kind == "i":
            if a.size == 0:
                a = a.astype(np.int64)
            elif a.dtype.kind not in "iu":
                raise ValueError(f"{name} must be an integer array. Got dtype {a.dtype} instead.")
            arrays[name] = a.astype(np.int64, copy=False)
        else:
            if a.size and a.dtype.kind not in "iuf":
                raise ValueError(f"value must be a numeric array. Got dtype {a.dtype} instead.")
            arrays[name] = a.astype(np.float64, copy=False)
    return arrays["customer"], arrays["pool"], arrays["value"]


def _check_range(name: str, arr: np.ndarray, bound: int, bound_name: str) -> None:
    bad = np.flatnonzero((arr < 0) | (arr >= bound))
    if len(bad):
        raise ValueError(
            f"{name} must be in [0, {bound_name}) = [0, {bound}). Got {arr[bad[0]]} at option {bad[0]} "
            f"({len(bad)} such options)."
        )


# --- overflow="wait" ----------------------------------------------------------------------------


def _best_per_customer(customer, pool, value, options: np.ndarray) -> np.ndarray:
    """Among ``options``, each customer's best one (highest value, then lowest pool); sorted by customer."""
    if len(options) == 0:
        return options
    order = options[np.lexsort((pool[options], -value[options], customer[options]))]
    c = customer[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = c[1:] != c[:-1]
    return order[first]


def _top(gain: np.ndarray, cust: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k entries ranked first by (gain descending, customer ascending)."""
    n = len(gain)
    if k >= n:
        return np.arange(n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    threshold = np.partition(gain, n - k)[n - k]  # the k-th largest gain
    above = np.flatnonzero(gain > threshold)
    tied = np.flatnonzero(gain == threshold)
    tied = tied[np.argsort(cust[tied], kind="stable")][: k - len(above)]
    return np.concatenate([above, tied])


def _wait(customer, pool, value, caps, eligible, n_customers) -> np.ndarray:
    chosen = np.full(n_customers, -1, dtype=np.int64)
    best = _best_per_customer(customer, pool, value, eligible)
    p = pool[best]
    free = caps[p] < 0
    chosen[customer[best[free]]] = best[free]
    limited = best[~free]
    if len(limited):
        by_pool = limited[np.argsort(pool[limited], kind="stable")]
        bounds = np.searchsorted(pool[by_pool], np.arange(len(caps) + 1))
        for q in range(len(caps)):
            mine = by_pool[bounds[q] : bounds[q + 1]]
            if len(mine):
                won = mine[_top(value[mine], customer[mine], int(caps[q]))]
                chosen[customer[won]] = won
    return chosen


# --- overflow="fallback" ------------------------------------------------------------------------


def _fallback(customer, pool, value, caps, unlimited, eligible, n_customers) -> np.ndarray:
    n_pools = len(caps)
    chosen = np.full(n_customers, -1, dtype=np.int64)
    base = np.zeros(n_customers)  # value of the baseline (0: not contacted)
    free = eligible[unlimited[pool[eligible]]]
    best = _best_per_customer(customer, pool, value, free)
    chosen[customer[best]] = best
    base[customer[best]] = value[best]

    # Capacitated options that beat the baseline, grouped by pool (then by customer: stable sort).
    limited = eligible[~unlimited[pool[eligible]]]
    gain_all = value[limited] - base[customer[limited]]
    limited = limited[(gain_all > 0) & (caps[pool[limited]] > 0)]
    limited = limited[_by(pool[limited], customer[limited], n_customers)]
    bounds = np.searchsorted(pool[limited], np.arange(n_pools + 1))
    sizes = np.diff(bounds)
    # Pruning lemma: K = how many customers all capacitated pools can take together.
    k = int(np.minimum(np.where(caps > 0, caps, 0), sizes).sum())
    kept = []
    for q in range(n_pools):
        mine = limited[bounds[q] : bounds[q + 1]]
        if len(mine):
            top = _top(value[mine] - base[customer[mine]], customer[mine], k)
            kept.append(mine[np.sort(top)])
    if kept:
        kept = [_prune(np.concatenate(kept), customer, pool, value - base[customer], caps)]
    if not kept:
        return _fill(customer, pool, caps, unlimited, eligible, chosen)
    cand = np.concatenate(kept)
    cand = cand[_by(customer[cand], pool[cand], n_pools)]  # arcs in customer, then pool order
    gain = value[cand] - base[customer[cand]]

    assigned = _solve_flow(customer[cand], pool[cand], gain, caps)
    _canonical_ties(cand, assigned, customer, pool, gain)
    won = cand[assigned]
    chosen[customer[won]] = won
    return _fill(customer, pool, caps, unlimited, eligible, chosen)


def _by(major: np.ndarray, minor: np.ndarray, n_minor: int) -> np.ndarray:
    """The order of ``np.lexsort((minor, major))`` (by ``major``, then ``minor``, then position) for
    integers ``0 <= minor < n_minor``: one stable sort of a combined key, fast on the runs the options
    come in."""
    return np.argsort(major * n_minor + minor, kind="stable")


def _prune(cand: np.ndarray, customer, pool, gain, caps, max_rounds: int = 20) -> np.ndarray:
    """The refined pruning lemma, repeated until nothing changes (docs/allocation.md, "Pruning").

    Pool p keeps its m_p best candidates (gain descending, customer ascending) with
    m_p = c_p + sum over other pools q of min(c_q, N[p, q]), N[p, q] = the customers that are
    candidates of both p and q: only those can be busy elsewhere. Each round uses the sets of the
    previous one; the sets only shrink.
    """
    n_pools = len(caps)
    for _ in range(max_rounds):
        cand = cand[_by(customer[cand], pool[cand], n_pools)]
        cust, pl = customer[cand], pool[cand]
        both = np.zeros(n_pools * n_pools, dtype=np.int64)
        for d in range(1, n_pools):
            same = np.flatnonzero(cust[d:] == cust[:-d])
            if len(same) == 0:
                break
            both += np.bincount(pl[same] * n_pools + pl[same + d], minlength=n_pools * n_pools)
            both += np.bincount(pl[same + d] * n_pools + pl[same], minlength=n_pools * n_pools)
        pair_counts = both.reshape(n_pools, n_pools)
        limit = caps + np.minimum(np.where(caps > 0, caps, 0)[None, :], pair_counts).sum(axis=1)
        sizes = np.bincount(pl, minlength=n_pools)
        if np.all((sizes <= limit) | (sizes == 0)):
            return cand
        by_pool = np.argsort(pl, kind="stable")
        bounds = np.searchsorted(pl[by_pool], np.arange(n_pools + 1))
        kept = []
        for q in range(n_pools):
            mine = cand[by_pool[bounds[q] : bounds[q + 1]]]
            if len(mine):
                kept.append(mine[np.sort(_top(gain[mine], customer[mine], int(limit[q])))])
        cand = np.concatenate(kept)
    return cand[_by(customer[cand], pool[cand], n_pools)]


def _solve_flow(cust: np.ndarray, pools: np.ndarray, gain: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Exact max-gain assignment of the candidate options as a min-cost flow; a mask over them."""
    customers, local = np.unique(cust, return_inverse=True)
    used_pools, pool_local = np.unique(pools, return_inverse=True)
    n_c, n_p = len(customers), len(used_pools)
    source, sink = 0, 1
    pool_node = 2 + np.arange(n_p)
    cust_node = 2 + n_p + np.arange(n_c)
    n_nodes = 2 + n_p + n_c
    scaled = np.rint(gain * COST_SCALE)
    worst = float(np.max(np.abs(scaled))) if len(scaled) else 0.0
    if worst * (n_nodes + 1) >= _COST_LIMIT:
        raise ValueError(
            f"values too large for an exact allocation at 1/{COST_SCALE:,} resolution: a gain of "
            f"{worst / COST_SCALE:.6g} with {n_nodes:,} flow nodes overflows 64-bit costs. "
            f"Express the values in larger units (e.g. thousands)."
        )
    n_opt = len(gain)
    tails = np.concatenate([np.full(n_c, source), cust_node[local], pool_node, [source]])
    heads = np.concatenate([cust_node, pool_node[pool_local], np.full(n_p, sink), [sink]])
    capacity = np.concatenate(
        [np.ones(n_c, dtype=np.int64), np.ones(n_opt, dtype=np.int64), caps[used_pools], [n_c]]
    ).astype(np.int64)
    cost = np.concatenate([np.zeros(n_c, dtype=np.int64), -scaled.astype(np.int64), np.zeros(n_p + 1, dtype=np.int64)])
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32), capacity, cost)
    flow.set_nodes_supplies(np.array([source, sink], dtype=np.int32), np.array([n_c, -n_c], dtype=np.int64))
    status = flow.solve()
    if status != flow.OPTIMAL:  # cannot happen: the bypass arc makes every instance feasible
        raise RuntimeError(f"the min-cost flow solver returned {status!r} instead of OPTIMAL")
    arcs = np.arange(n_c, n_c + n_opt)
    return np.asarray(flow.flows(arcs)) > 0


def _canonical_ties(cand, assigned, customer, pool, gain) -> None:
    """Among equal gains for a pool, give it to the lowest customer indices (value-neutral swaps).

    A customer assigned to pool p is exchanged with a candidate of p who has exactly the same gain
    for p and is not assigned to any capacitated pool (at their baseline): total value and every
    pool's count stay the same. Changes ``assigned`` in place.
    """
    cust, pools = customer[cand], pool[cand]
    customers, local = np.unique(cust, return_inverse=True)  # a flag per customer, not an isin per pool
    by_pool = np.argsort(pools, kind="stable")  # each pool's arcs, in arc order
    bounds = np.searchsorted(pools[by_pool], np.arange(int(pools.max(initial=-1)) + 2))
    for q in np.unique(pools[assigned]):
        busy_customer = np.zeros(len(customers), dtype=bool)
        busy_customer[local[assigned]] = True
        busy = busy_customer[local]  # customers with some capacitated assignment
        mine = by_pool[bounds[q] : bounds[q + 1]]
        swappable = mine[assigned[mine] | ~busy[mine]]
        order = swappable[np.lexsort((cust[swappable], -gain[swappable]))]
        g = gain[order]
        start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        size = np.diff(np.r_[start, len(order)])
        n_assigned = np.add.reduceat(assigned[order].astype(np.int64), start) if len(order) else start
        split = (n_assigned > 0) & (n_assigned < size)  # a tie between assigned and waiting customers
        for s, n, a in zip(start[split].tolist(), size[split].tolist(), n_assigned[split].tolist(), strict=True):
            group = order[s : s + n]  # sorted by customer: the lowest indices win
            assigned[group] = False
            assigned[group[:a]] = True


def _fill(customer, pool, caps, unlimited, eligible, chosen) -> np.ndarray:
    """Uncontacted customers whose eligible option in a pool with room is worth exactly 0 take it.

    In an optimum a pool with room holds every uncontacted customer with a positive option there,
    so only zero-value options (with ``min_value == 0``) are left: taking them keeps the total
    value and contacts the customer, as ``min_value`` says they are worth it. Lowest pool index
    first, then lowest customer index.
    """
    counts = np.bincount(pool[chosen[chosen >= 0]], minlength=len(caps))
    room = np.where(unlimited, 0, caps - counts)
    if not room.any():
        return chosen
    left = eligible[(chosen[customer[eligible]] < 0) & (room[pool[eligible]] > 0)]
    if not len(left):
        return chosen
    left = left[np.lexsort((customer[left], pool[left]))]
    for q in np.unique(pool[left]):
        mine = left[pool[left] == q]
        mine = mine[chosen[customer[mine]] < 0][: room[q]]
        chosen[customer[mine]] = mine
    return chosen


# --- the result ---------------------------------------------------------------------------------


def _result(customer, pool, value, chosen, eligible, n_customers, n_pools) -> Allocation:
    status = np.full(n_customers, AllocationStatus.NO_OPTION, dtype=np.int8)
    status[customer] = AllocationStatus.NOT_WORTH
    status[customer[eligible]] = AllocationStatus.OVER_CAPACITY
    got = chosen >= 0
    status[got] = AllocationStatus.ASSIGNED
    chosen_pool = np.full(n_customers, -1, dtype=np.int64)
    chosen_pool[got] = pool[chosen[got]]
    return Allocation(
        option=chosen,
        pool=chosen_pool,
        status=status,
        pool_counts=np.bincount(chosen_pool[got], minlength=n_pools).astype(np.int64),
        total_value=float(np.sum(value[chosen[got]])) if got.any() else 0.0,
    )
