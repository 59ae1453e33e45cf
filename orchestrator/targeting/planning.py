"""Planning a cycle: arbitration, control split and channel allocation for one or more campaigns.

Order (every step column-oriented, no per-customer objects):

1. per campaign, its candidates come with one eligibility flag per channel (the channel's
   ``eligible:`` condition AND the contact policy for that channel, computed in the
   selection query) and, for the field force, the customer's territory;
2. the expected value of every eligible channel (``options.channel_values``) is ``score x value - cost``
   (score 1 without a model), or with a channel uplift model ``effect(channel, customer) x value - cost``
   per channel (``Candidates.effects``), where customers negative on every channel get no
   option; customers with no eligible channel drop out; with ``learning.optimism`` the cycle is
   planned once on these values and again with ``effect + optimism x spread`` for the channels
   whose pools the first plan left room in (``plan_cycle``);
3. ``arbitration.arbitrate`` gives each customer wanted by several campaigns to one;
4. each campaign draws its random control group among the customers it won
   (``selection.split``: stable salted hash, per score decile if asked);
5. the treated customers of ALL campaigns are allocated to channel pools jointly, since
   the pools (call center, reps' visits, e-mail limit) are shared (``allocation.allocate``:
   maximum total expected value within what is left of today's capacity);
6. the control group mirrors that allocation: each campaign's control customers are
   allocated by the same rule with capacities in proportion (``share / (1 - share)`` of
   what its treated customers got), so treated and control stay comparable per channel;
7. exploration (``orchestrator.targeting.exploration``; ``learning: {explore: e}``; while the
   campaign has no per-channel effects yet, ``learning.cold_start`` if larger): a share ``e`` of
   each campaign's allocated treated customers, chosen by a stable salted hash of (campaign,
   customer, wave key), get a channel drawn uniformly among their k eligible channels, within
   each pool's capacity (explorers leaving a pool make room for explorers drawn into it, so full
   pools explore too); once a model gives per-channel effects, each customer's rate leans towards
   customers whose channels the model sees as close (``regret_weighted_rates``: ``e`` on average,
   between ``e/4`` and ``3e``); the mirrored control group explores at ``e`` within its own
   capacities;
8. visits are spread over the reps of the territory, best customers first.

Every contact carries its propensities: ``arm_propensity`` (treatment 1 - control share,
control the control share, global control its share) and ``channel_propensity`` (treated and
control alike: ``1 - e + e/k`` for the allocated channel, ``e/k`` for an explored other one, with
the customer's own rate ``e``; 1 when ``e`` is 0 or the customer has one eligible channel; global
control 1).

Customers who lost arbitration, had no eligible or worthwhile channel, or found their
channel full (``overflow: wait``, or no fallback) are not recorded: a later wave can select
them again. The funnel gets one step per reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from orchestrator.db.tables import Arm
from orchestrator.rules.conditions import compile_audience
from orchestrator.rules.kinds import channel_kind, kinds
from orchestrator.rules.spec import CampaignSpec
from orchestrator.targeting.allocation import allocate
from orchestrator.targeting.arbitration import Arbitration, arbitrate
from orchestrator.targeting.capacity import Capacity, Pools, day_pools, pool_name
from orchestrator.targeting.exploration import (
    UNIFORM_SHARE,  # noqa: F401 - re-exported: planning's public names stay importable from here
    _Allocated,
    _draws,
    _explore,
    _regret,
    channel_draw_weights,
    explore_rate,
    regret_scale,
    regret_weighted_rates,
)
from orchestrator.targeting.frame import ContactFrame
from orchestrator.targeting.options import (
    ELIGIBLE,
    TERRITORY,
    Optimism,
    channel_values,
    concat_options,
    eligible_names,
    optimistic,
    option_sets,
)
from orchestrator.targeting.selection import Candidates, FunnelStep, Selection, channel_policy, split


def selection_columns(spec: CampaignSpec, policy, table: sa.Table, as_of: date) -> dict[str, sa.ColumnElement]:
    """SQL expressions the selection query computes for planning: eligibility per channel, territory."""
    columns: dict[str, sa.ColumnElement] = {}
    for name, channel in spec.channels.items():
        conditions = [cond for _label, cond in channel_policy(policy, name, as_of, table)] if policy is not None else []
        if channel.eligible is not None:
            conditions.append(compile_audience(channel.eligible, table, as_of=as_of))
        columns[ELIGIBLE + name] = sa.case((sa.and_(sa.true(), *conditions), 1), else_=0)
    for name, channel in spec.channels.items():
        territory_column = channel_kind(name).territory_column(channel)
        if territory_column is not None:
            columns[TERRITORY] = table.c[territory_column]
    return columns


NOT_TREATED = {
    "below_score_cut": "below the score cut (scores: min_score, top or top_percent)",
    "lost_arbitration": "lost to another campaign of the cycle (detail: which)",
    "no_eligible_channel": "no eligible channel (eligible: and the contact policy per channel) or none worth it",
    "channel_full": "treated, but every channel it could get was full: left for a later wave",
    "not_worth_cost": "treated, but no channel's expected value covers its cost",
    "control_unallocated": "control, but no room in the control group's mirrored allocation",
}
"""Reason codes of the selected customers a wave does not record as contacts (``orchestrator.ledger.reasons``)."""

_REASON_NAMES = np.array([None, *NOT_TREATED], dtype=object)
_REASON_CODES = {code: i for i, code in enumerate(_REASON_NAMES) if code is not None}  # planning's int8 codes


@dataclass
class NotTreated:
    """Column-wise: the campaign's candidates it does not record, each with a reason code (``NOT_TREATED``)
    and a detail (the winning campaign for ``lost_arbitration``, else None)."""

    customer_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    reason: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    detail: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __len__(self) -> int:
        return len(self.customer_id)

    def counts(self) -> dict[str, int]:
        return {str(code): int(n) for code, n in pd.Series(self.reason, dtype=object).value_counts().items()}


@dataclass
class CampaignPlan:
    """What one campaign records: its selection, whose ``contacts`` carry the allocated channel, the rep or
    endpoint, the expected value (NaN for global control) and the capacity pool of each customer."""

    spec: CampaignSpec
    selection: Selection
    lost_to: dict[str, int] = field(default_factory=dict)
    waiting: int = 0  # treated customers whose channel was full (overflow) this cycle
    channel_counts: dict[str, int] = field(default_factory=dict)  # treated per channel
    explored: int = 0  # treated customers moved to a randomly drawn other channel (learning.explore)
    # candidates of the campaign nobody contacts this wave (not recorded, not lost to another campaign of
    # the cycle): uncontacted customers whose outcomes teach a model the no-contact outcome
    passed_over: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    not_treated: NotTreated = field(default_factory=NotTreated)  # why each candidate not recorded was not

    @property
    def contacts(self) -> ContactFrame:
        return self.selection.contacts


def plan_cycle(
    specs: Sequence[CampaignSpec],
    candidates: Sequence[Candidates],
    capacity: Capacity,
    used: Mapping[tuple[str, str | None], int],
    *,
    taken: Mapping[str, str] | None = None,
    with_funnel: bool = False,
    wave_key: str = "",
    global_control_shares: Sequence[float] | None = None,
) -> list[CampaignPlan]:
    """Plan every campaign of a cycle; see the module docstring for the steps.

    ``wave_key`` salts the exploration draw (a re-run of the wave draws the same);
    ``global_control_shares`` (one per campaign, from its policy) is the arm propensity
    recorded for its global control contacts (NaN when not given).

    With ``learning.optimism`` the cycle is planned twice: first on the plain estimates, then with
    optimistic values for the channels whose pools that plan left room in (an unlimited pool always
    has room), so optimism fills idle capacity without displacing the best estimates from full pools.
    """
    endpoints = sorted(
        {
            (name, kind.endpoint_key(section))
            for s in specs
            for name, section in s.channels.items()
            if (kind := channel_kind(name)).pool == "endpoint"
        }
    )
    pools = day_pools(capacity, used, endpoints)
    args = (specs, candidates, pools, taken, with_funnel, wave_key, global_control_shares)
    plans, usage = _plan_once(*args, idle=None)
    if not any(optimistic(s, c) for s, c in zip(specs, candidates, strict=True)):
        return plans
    caps = np.array([-1 if c is None else c for c in pools.capacities], dtype=np.int64)
    idle = (caps < 0) | (usage < caps)
    if not idle.any():
        return plans
    return _plan_once(*args, idle=Optimism(pools.index(), idle))[0]


def _plan_once(
    specs: Sequence[CampaignSpec],
    candidates: Sequence[Candidates],
    pools: Pools,
    taken: Mapping[str, str] | None,
    with_funnel: bool,
    wave_key: str,
    global_control_shares: Sequence[float] | None,
    *,
    idle: Optimism | None,
) -> tuple[list[CampaignPlan], np.ndarray]:
    """One plan of the cycle, optimistic where ``idle`` says; with how many treated customers the
    allocation (before exploration) put into each pool."""
    index = pools.index()

    cut = [len(c.ids) for c in candidates]  # a score cut's customers come first, its reserve after them
    candidates = [c.with_reserve() for c in candidates]
    id_arrays = [np.asarray(c.ids, dtype=object) for c in candidates]  # converted once, used by position
    values = [channel_values(s, c, c.extra, len(c.ids), idle) for s, c in zip(specs, candidates, strict=True)]
    best = [np.where(np.isnan(v), -np.inf, v).max(axis=1) if v.shape[1] else np.full(len(v), -np.inf) for v in values]
    reachable = [np.isfinite(b) for b in best]
    arbitration, active, refilled, lost, winner_of = _arbitrate_and_refill(
        specs, id_arrays, best, reachable, cut, taken
    )
    reasons = [np.zeros(len(c.ids), dtype=np.int8) for c in candidates]  # per candidate position: _REASON_CODES

    # 3-4: each campaign's won customers, split into treated and control
    splits: list[tuple[Candidates, Selection, np.ndarray, np.ndarray | None]] = []
    best_won: list[np.ndarray] = []  # per campaign: the best value of each customer it won
    groups = zip(specs, candidates, values, reachable, arbitration.won, strict=True)
    for k, (spec, cand, v, ok, won) in enumerate(groups):
        funnel = list(cand.funnel)
        in_cut = int(ok[: cut[k]].sum())
        if with_funnel and (in_cut < cut[k] or any(ch.eligible is not None for _n, ch in spec.channels.items())):
            _step(funnel, "channels", "no eligible channel (eligible: and contact policy per channel)", in_cut)
        keep = active[k][won]
        kept_mask = np.zeros(len(cand.ids), dtype=bool)
        kept_mask[keep] = True
        mine = cand.subset(kept_mask, id_arrays[k])
        if with_funnel and (len(specs) > 1 or not won.all() or refilled[k]):
            losses = arbitration.lost(spec.name)
            label = (
                "lost to " + ", ".join(f"{w} ({n:,})" for w, n in sorted(losses.items()))
                if losses
                else "lost to other campaigns"
            )
            if refilled[k]:
                label += f"; {refilled[k]:,} next best after the score cut took their place"
            _step(funnel, "arbitration", label, len(mine.ids))
        mine.funnel = funnel
        selection = split(spec, mine, with_funnel=with_funnel)
        n_won = len(mine.ids)
        territories = mine.extra.get(TERRITORY)
        splits.append((mine, selection, v[keep], territories))
        best_won.append(best[k][keep])
        assert len(selection.contacts) == n_won + len(mine.global_control)

    # 5: treated customers of all campaigns, jointly
    treated_parts, eligible_parts, offsets, total = [], [], [], 0
    treated_of: list[np.ndarray] = []  # per campaign: treated (else control) among the customers it won
    for spec, (mine, selection, v, terr) in zip(specs, splits, strict=True):
        n_won = len(mine.ids)
        treated = selection.contacts.arm[:n_won] == Arm.TREATMENT.value
        treated_of.append(treated)
        idx = np.flatnonzero(treated)
        t_terr = None if terr is None else terr[idx]
        treated_options, eligible_options = option_sets(spec, v[idx], t_terr, index, total)
        treated_parts.append(treated_options)
        eligible_parts.append(eligible_options)
        offsets.append((total, idx))
        total += len(idx)
    options = concat_options(treated_parts)
    every = options if all(a is b for a, b in zip(treated_parts, eligible_parts, strict=True)) else None
    result = allocate(options.customer, options.pool, options.value, pools.capacities, n_customers=total)
    chosen = np.asarray(result.option)
    allocated = _Allocated.of(options, chosen)
    usage = np.bincount(allocated.pool[allocated.pool >= 0], minlength=len(pools.names))

    # 7: exploration among the allocated treated customers of all campaigns (the pools are shared)
    explore = [explore_rate(s, c) for s, c in zip(specs, candidates, strict=True)]
    treated_ids = [  # the ids only where they are hashed (a campaign that explores)
        np.asarray(mine.ids, dtype=object)[idx] if e else idx
        for e, (mine, *_r), (_st, idx) in zip(explore, splits, offsets, strict=True)
    ]
    rates = np.concatenate([np.zeros(0)] + [np.full(len(ids), e) for e, ids in zip(explore, treated_ids, strict=True)])
    every = concat_options(eligible_parts) if every is None else every
    regret, can_move = _regret(allocated, every) if any(explore) else (np.zeros(0), np.zeros(0, dtype=bool))
    leaning = np.zeros(len(every.customer), dtype=bool)  # options whose channel draw leans on the model's values
    scales = np.zeros(len(allocated.channel))
    for k, (start, idx) in enumerate(offsets):
        if explore[k] and candidates[k].effects is not None:  # a model's effects: explore where choices are close
            mine_at = slice(start, start + len(idx))
            rates[mine_at] = regret_weighted_rates(explore[k], regret[mine_at], can_move[mine_at])
            scales[mine_at] = regret_scale(regret[mine_at], can_move[mine_at])
            leaning |= (every.customer >= start) & (every.customer < start + len(idx))
    explore_at, channel_at = _draws(specs, explore, treated_ids, wave_key)
    weights = channel_draw_weights(every, len(allocated.channel), scales, leaning) if any(explore) else None
    moved = _explore(allocated, every, rates, explore_at, channel_at, pools.capacities, weights)

    plans: list[CampaignPlan] = []
    for k, (spec, (mine, selection, v, terr)) in enumerate(zip(specs, splits, strict=True)):
        start, idx = offsets[k]
        names = spec.channels.names()
        n_won = len(mine.ids)
        mine_of = slice(start, start + len(idx))
        channel_of = np.full(n_won, None, dtype=object)
        value_of = np.full(n_won, np.nan)
        pool_of = np.full(n_won, -1, dtype=np.int64)
        propensity_of = np.ones(n_won)
        got = allocated.channel[mine_of] >= 0
        channel_of[idx[got]] = np.array(names, dtype=object)[allocated.channel[mine_of][got]]
        value_of[idx[got]] = allocated.value[mine_of][got]
        pool_of[idx[got]] = allocated.pool[mine_of][got]
        propensity_of[idx] = allocated.propensity[mine_of]
        worth = best_won[k][idx] >= 0  # some eligible channel covers its cost
        waiting = int(np.count_nonzero(worth & ~got))
        keep_positions = active[k][arbitration.won[k]] if k < len(arbitration.won) else np.zeros(0, dtype=np.int64)
        reasons[k][keep_positions[idx[worth & ~got]]] = _REASON_CODES["channel_full"]
        reasons[k][keep_positions[idx[~worth & ~got]]] = _REASON_CODES["not_worth_cost"]

        # 6: control mirrors the treated allocation with proportional capacities
        control_idx = np.flatnonzero(~treated_of[k])  # split gives the won customers treatment or control
        if len(control_idx):
            share = spec.control.share
            ratio = share / (1 - share) if share < 1 else 0.0
            caps = _mirror_capacities(
                pools.capacities, np.bincount(pool_of[pool_of >= 0], minlength=len(pools.names)), ratio
            )
            c_opts, c_every = option_sets(spec, v[control_idx], None if terr is None else terr[control_idx], index)
            c_pick = np.asarray(
                allocate(c_opts.customer, c_opts.pool, c_opts.value, caps, n_customers=len(control_idx)).option
            )
            # ... and explores as the treated do (same draws per customer), so that every arm of every
            # channel has its no-contact comparison with the same channel propensities
            mirrored = _Allocated.of(c_opts, c_pick)
            c_ids = np.asarray(mine.ids, dtype=object)[control_idx] if explore[k] else control_idx
            c_at, c_channel_at = _draws([spec], [explore[k]], [c_ids], wave_key)
            _explore(mirrored, c_every, np.full(len(c_ids), explore[k]), c_at, c_channel_at, caps)
            c_got = mirrored.channel >= 0
            reasons[k][keep_positions[control_idx[~c_got]]] = _REASON_CODES["control_unallocated"]
            channel_of[control_idx[c_got]] = np.array(names, dtype=object)[mirrored.channel[c_got]]
            value_of[control_idx[c_got]] = mirrored.value[c_got]
            pool_of[control_idx[c_got]] = mirrored.pool[c_got]
            propensity_of[control_idx] = mirrored.propensity

        global_share = np.nan if global_control_shares is None else float(global_control_shares[k])
        kept = channel_of != None  # noqa: E711
        plan = _plan(spec, mine, selection, channel_of, kept, treated_of[k], value_of, pool_of, waiting, with_funnel)
        n_global = int(np.count_nonzero(plan.contacts.arm == Arm.GLOBAL_CONTROL.value))  # the last rows
        plan.selection = Selection(
            plan.contacts.replace(
                arm_propensity=np.where(
                    plan.contacts.arm == Arm.GLOBAL_CONTROL.value, global_share, plan.contacts.arm_propensity
                ),
                channel_propensity=np.concatenate([propensity_of[kept], np.ones(n_global)]),
            ),
            plan.selection.funnel,
        )
        plan.explored = int(np.count_nonzero(moved[mine_of]))
        plans.append(plan)
        plans[-1].lost_to = arbitration.lost(spec.name)
        everyone = id_arrays[k]
        recorded = np.zeros(len(everyone), dtype=bool)  # by candidate position: no string matching
        recorded[keep_positions[kept]] = True
        plans[-1].passed_over = everyone[~lost[k] & ~recorded]
        plans[-1].not_treated = _not_treated(
            everyone, reasons[k], reachable[k], lost[k], winner_of[k], active[k], cut[k], candidates[k].below_min
        )
    _assign_reps(plans, pools)
    return plans, usage


def _not_treated(
    everyone: np.ndarray,
    reason: np.ndarray,
    reachable: np.ndarray,
    lost: np.ndarray,
    winner_of: np.ndarray,
    active: np.ndarray,
    cut: int,
    below_min: np.ndarray,
) -> NotTreated:
    """The reason of every candidate position not recorded (column-wise), first match wins: lost to another
    campaign, below the score cut (the reserve nobody took), no eligible channel, then the allocation's.
    ``reason`` holds the allocation's reasons as ``_REASON_CODES`` (0: none)."""
    n = len(everyone)
    not_active = np.ones(n, dtype=bool)
    not_active[active] = False
    reason = reason.copy()
    reason[cut:][not_active[cut:]] = _REASON_CODES["below_score_cut"]
    reason[:cut][not_active[:cut] & ~reachable[:cut]] = _REASON_CODES["no_eligible_channel"]
    reason[lost] = _REASON_CODES["lost_arbitration"]
    has = np.flatnonzero(reason)
    return NotTreated(
        np.concatenate([everyone[has], np.asarray(below_min, dtype=object)]),
        np.concatenate([_REASON_NAMES[reason[has]], np.full(len(below_min), "below_score_cut", dtype=object)]),
        np.concatenate([winner_of[has], np.full(len(below_min), None, dtype=object)]),
    )


MAX_REFILLS = 50
"""Rounds of arbitration and refilling at most (each round only takes customers away; it ends far sooner)."""


def _arbitrate_and_refill(
    specs: Sequence[CampaignSpec],
    ids: Sequence[np.ndarray],
    best: Sequence[np.ndarray],
    reachable: Sequence[np.ndarray],
    cut: Sequence[int],
    taken: Mapping[str, str] | None,
) -> tuple[Arbitration, list[np.ndarray], list[int], list[np.ndarray], list[np.ndarray]]:
    """Arbitrate, and let every campaign that lost customers of its score cut take the next best of its
    reserve in their place, until nobody loses anyone new (so a cycle of campaigns with ``top:`` cuts
    still fills what the cuts asked for). Returns the last arbitration (with every loss counted), each
    campaign's arbitrated positions, how many came from its reserve, the lost positions and their winners."""
    wanted = [int(ok[:n].sum()) for ok, n in zip(reachable, cut, strict=True)]
    lost = [np.zeros(len(ok), dtype=bool) for ok in reachable]
    winner_of = [np.full(len(ok), None, dtype=object) for ok in reachable]
    losses: dict[tuple[str, str], int] = {}
    for _round in range(MAX_REFILLS):
        active = [np.flatnonzero(ok & ~gone)[:n] for ok, gone, n in zip(reachable, lost, wanted, strict=True)]
        result = arbitrate(
            [s.name for s in specs],
            [s.priority for s in specs],
            [every[rows] for every, rows in zip(ids, active, strict=True)],
            [b[rows] for b, rows in zip(best, active, strict=True)],
            taken,
        )
        refill = False
        for k, (rows, won) in enumerate(zip(active, result.won, strict=True)):
            if (~won).any():
                lost[k][rows[~won]] = True
                if k < len(result.winners):
                    winner_of[k][rows[~won]] = result.winners[k][~won]
                # a campaign with more reachable customers than it keeps now takes the next of them
                refill = refill or int((reachable[k] & ~lost[k]).sum()) > int(won.sum())
        for pair, n in result.losses.items():
            losses[pair] = losses.get(pair, 0) + n
        if not refill:
            break
    refilled = [int(np.count_nonzero(rows >= n)) for rows, n in zip(active, cut, strict=True)]
    return Arbitration(result.won, losses), active, refilled, lost, winner_of


def _mirror_capacities(capacities: Sequence[int | None], treated: np.ndarray, ratio: float) -> list[int | None]:
    """Control capacities: ``ratio`` times the treated customers per pool, rounded by largest remainder
    (so a day of many small territories keeps the right total instead of rounding each to 0)."""
    limited = [p for p, cap in enumerate(capacities) if cap is not None]
    exact = np.array([treated[p] * ratio for p in limited], dtype=float)
    caps: list[int | None] = [None] * len(capacities)
    if not limited:
        return caps
    floors = np.floor(exact).astype(np.int64)
    extra = int(round(exact.sum())) - int(floors.sum())
    order = np.argsort(-(exact - floors), kind="stable")[: max(extra, 0)]
    floors[order] += 1
    for p, n in zip(limited, floors.tolist(), strict=True):
        caps[p] = n
    return caps


def _plan(spec, mine, selection, channel_of, got, treated, value_of, pool_of, waiting, with_funnel) -> CampaignPlan:
    """Keep the allocated customers (``got``: ``channel_of`` not None) and the global control group of one
    campaign; ``treated`` marks its treated customers among those it won (the others are its control)."""
    n_won = len(mine.ids)
    contacts = selection.contacts
    keep = np.concatenate([got, np.ones(len(contacts) - n_won, dtype=bool)])
    funnel = list(selection.funnel)
    allocated = int(np.count_nonzero(treated & got))
    if with_funnel and (allocated < int(treated.sum()) or len(spec.channels.names()) > 1):
        _step(funnel, "allocation", "treated left for a later wave: channel full or not worth its cost", allocated)
    best_channel = np.full(len(contacts) - n_won, None, dtype=object)
    if len(best_channel) and len(spec.channels.names()):
        best_channel[:] = spec.channels.names()[0]
    channels = np.concatenate([channel_of, best_channel])[keep]
    assignees = np.full(len(channels), None, dtype=object)
    for name, section in spec.channels.items():
        kind = channel_kind(name)
        if kind.pool == "endpoint":  # the assignee of a per-endpoint channel's contact is its endpoint
            assignees[channels == name] = kind.endpoint_key(section)
    kept = contacts.take(keep).replace(
        channel=channels,
        assignee=assignees,
        expected_value=np.concatenate([value_of, np.full(len(best_channel), np.nan)])[keep],
        pool=np.concatenate([pool_of, np.full(len(best_channel), -1, dtype=np.int64)])[keep],
        eligible=np.concatenate(  # computed for the kept customers only
            [eligible_names(spec, _rows(mine.extra, got), int(got.sum())), np.full(len(best_channel), None)]
        ),
    )
    plan = CampaignPlan(spec, Selection(kept, funnel), waiting=waiting)
    treated = kept.treated
    plan.channel_counts = {name: int(np.count_nonzero(treated & (channels == name))) for name in spec.channels.names()}
    return plan


def _rows(extra: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """The planning columns of ``extra`` (eligibility per channel, territory) at the rows where ``mask`` is true."""
    return {key: column[mask] for key, column in extra.items() if key.startswith(ELIGIBLE) or key == TERRITORY}


def _assign_reps(plans: Sequence[CampaignPlan], pools: Pools) -> None:
    """Spread each territory's treated visits over its reps by visits left, best value first."""
    index = pools.index()
    territorial = [kind.name for kind in kinds() if kind.pool == "territory"]
    assignees = [plan.contacts.assignee.copy() for plan in plans]
    # the treated contacts' pools, once and not per territory
    treated_pools = [np.where(plan.contacts.treated, plan.contacts.pool, -1) for plan in plans]
    for territory, room in pools.rep_room.items():
        p = next(index[pool] for name in territorial if (pool := pool_name(name, territory)) in index)
        picks: list[tuple[float, int, int]] = []  # (value, plan index, row)
        for k, plan in enumerate(plans):
            rows = np.flatnonzero(treated_pools[k] == p)
            picks.extend((-plan.contacts.expected_value[r], k, int(r)) for r in rows)
        picks.sort()
        # round-robin over reps: every rep gets its j-th visit before any rep gets its (j+1)-th
        slots = sorted((j, i, rep) for i, (rep, left) in enumerate(room) for j in range(left))
        for (_v, k, r), (_j, _i, rep) in zip(picks, slots, strict=False):
            assignees[k][r] = rep
    for plan, assignee in zip(plans, assignees, strict=True):
        plan.selection = Selection(plan.contacts.replace(assignee=assignee), plan.selection.funnel)


def _step(funnel: list[FunnelStep], stage: str, label: str, remaining: int) -> None:
    counted = [step for step in funnel if step.stage != "variant"]  # variant rows split the treated, not filter them
    previous = counted[-1].remaining if counted else remaining
    funnel.append(FunnelStep(stage, label, remaining, previous - remaining))
