"""Target-group selection: audience, lists, contact policy, global control, scores, split.

Every filter that can run in the database runs there as one SQL condition over the
customer table (bound parameters, no per-customer queries). ``funnel`` counts how many
customers remain after each filter in ONE scan (cumulative ``SUM(CASE ...)``), which
``campaign explain`` and ``campaign run --dry-run`` print. Scores are computed on column
batches of the customers left after the SQL filters; the control split and A/B variants
are salted hashes (``orchestrator.targeting.control``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml

from orchestrator.customers.table import ID_COLUMN, frame_of_query
from orchestrator.db.tables import Arm
from orchestrator.execution.chunks import Mapper, in_process
from orchestrator.execution.chunks import split as split_chunks
from orchestrator.rules.condition_parser import All, condition_to_data
from orchestrator.rules.conditions import compile_audience
from orchestrator.rules.kinds.email import KIND as EMAIL_KIND
from orchestrator.rules.spec import CampaignSpec, ScoresSpec
from orchestrator.targeting import control as groups
from orchestrator.targeting.frame import ContactFrame

CHANNEL = EMAIL_KIND.name  # the channel of a single-channel selection (no planning)
_ARMS = np.array([Arm.TREATMENT.value, Arm.CONTROL.value], dtype=object)  # by control flag


class WaveBlocked(RuntimeError):
    """The wave date is a blocked day of the contact policy: nobody is contacted."""


@dataclass(frozen=True)
class FunnelStep:
    stage: str  # audience, lists, policy, global control, score, control, variant
    label: str
    remaining: int
    removed: int


@dataclass
class Candidates:
    """Customers left after every filter and the score cut, before the control split."""

    ids: list[str]
    scores: np.ndarray | None
    global_control: list[str]  # held out of every campaign by the contact policy
    funnel: list[FunnelStep] = field(default_factory=list)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # asked-for columns, aligned with ids
    global_extra: dict[str, np.ndarray] = field(default_factory=dict)  # the same, aligned with global_control
    # per-channel effects of a channel uplift model: (n, channels of the campaign), NaN where unknown
    effects: np.ndarray | None = None
    # how uncertain each effect is (``ChannelUpliftModel.spread_frame``), when ``learning.optimism`` asks for it
    spread: np.ndarray | None = None
    # the scored customers after a ``top``/``top_percent`` cut, best first: planning takes the next best
    # of them when a cycle's arbitration takes customers of the cut away (``planning.plan_cycle``)
    reserve: Candidates | None = None
    # scored customers a ``min_score`` cut removed (not in the reserve): the ledger's "below score cut" reason
    below_min: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    # the scoring model's feature columns, read in the selection query and aligned with ids (``score_and_cut``
    # scores them and drops them); None when there is no model or the chunks read them by id
    features: pd.DataFrame | None = None

    def with_reserve(self) -> Candidates:
        """The candidates followed by their reserve (one frame; ``reserve`` None)."""
        if self.reserve is None:
            return self
        more = self.reserve
        scores = None if self.scores is None else np.concatenate([np.asarray(self.scores), np.asarray(more.scores)])
        effects = None if self.effects is None else np.concatenate([self.effects, np.asarray(more.effects)])
        spread = None if self.spread is None else np.concatenate([self.spread, np.asarray(more.spread)])
        return Candidates(
            self.ids + more.ids,
            scores,
            self.global_control,
            list(self.funnel),
            {k: np.concatenate([v, more.extra[k]]) for k, v in self.extra.items()},
            self.global_extra,
            effects,
            spread,
            below_min=self.below_min,
        )

    def subset(self, mask: np.ndarray, id_array: np.ndarray | None = None) -> Candidates:
        """The candidates where ``mask`` is true (global control and funnel kept as they are; the list of ids
        is shared, not copied, when every candidate is kept). ``id_array``: the ids as an object array, when
        the caller has it (not converted again)."""
        index = np.flatnonzero(mask)
        if len(index) == len(self.ids):
            ids = self.ids
        else:
            ids = (np.asarray(self.ids, dtype=object) if id_array is None else id_array)[index].tolist()
        return Candidates(
            ids,
            None if self.scores is None else np.asarray(self.scores)[index],
            self.global_control,
            list(self.funnel),
            {k: v[index] for k, v in self.extra.items()},
            self.global_extra,
            None if self.effects is None else self.effects[index],
            None if self.spread is None else self.spread[index],
        )


@dataclass
class Selection:
    """The customers a wave contacts (or holds out) and the funnel that led to them.

    ``contacts`` holds each customer's arm, variant (treated customers only) and score (NaN
    without a model); ``split`` puts everyone on the campaign's first channel, planning
    (``planning.plan_cycle``) allocates the channels.
    """

    contacts: ContactFrame
    funnel: list[FunnelStep] = field(default_factory=list)

    def count(self, arm: str) -> int:
        return self.contacts.count(arm)


def named_conditions(
    spec: CampaignSpec, table: sa.Table, policy, *, as_of: date, conn: sa.Connection
) -> list[tuple[str, str, sa.ColumnElement[bool]]]:
    """``(stage, label, condition)`` of every SQL filter, in funnel order."""
    steps: list[tuple[str, str, sa.ColumnElement[bool]]] = []
    audience = spec.audience
    if isinstance(audience, All):
        for part in audience.conditions:
            steps.append(("audience", _label(part), compile_audience(part, table, as_of=as_of)))
    elif audience is not None:
        steps.append(("audience", _label(audience), compile_audience(audience, table, as_of=as_of)))
    steps.extend(("lists", label, cond) for label, cond in list_conditions(spec, table, conn))
    if policy is not None:
        channels = spec.channels.names()
        if len(channels) == 1:
            steps.extend(("policy", label, cond) for label, cond in channel_policy(policy, channels[0], as_of, table))
        else:  # several channels: the policy must allow at least one of them (each is checked per channel later)
            allowed = sa.or_(
                *(sa.and_(sa.true(), *(c for _l, c in channel_policy(policy, ch, as_of, table))) for ch in channels)
            )
            steps.append(("policy", f"contact policy allows one of {', '.join(channels)}", allowed))
    return steps


def channel_policy(policy, channel: str, as_of: date, table: sa.Table) -> list[tuple[str, sa.ColumnElement[bool]]]:
    """The contact policy's named conditions for contacting on ``channel``."""
    from orchestrator.targeting.policy import policy_filters

    return policy_filters(policy, channel=channel, as_of=as_of, customer_table=table)


def list_conditions(
    spec: CampaignSpec, table: sa.Table, conn: sa.Connection
) -> list[tuple[str, sa.ColumnElement[bool]]]:
    """Include/exclude lists of the rules file as one SQL condition (id files become temp tables on ``conn``)."""
    if not getattr(spec, "include", None) and not getattr(spec, "exclude", None):
        return []
    from orchestrator.rules.id_lists import list_condition

    condition = list_condition(spec, table, conn)
    return [] if condition is None else [("include/exclude lists", condition)]


def _label(condition) -> str:
    """The condition as the rules file writes it (YAML flow style), shortened for a table."""
    text = yaml.safe_dump(condition_to_data(condition), default_flow_style=True, width=10_000).strip()
    return text if len(text) <= 70 else text[:67] + "..."


def funnel_counts(
    conn: sa.Connection, table: sa.Table, steps: Sequence[tuple[str, str, sa.ColumnElement[bool]]]
) -> list[FunnelStep]:
    """Customers left after each step, cumulatively, in one scan of the customer table."""
    columns = [sa.func.count().label("total")]
    running: list[sa.ColumnElement[bool]] = []
    for i, (_stage, _label, cond) in enumerate(steps):
        running.append(cond)
        columns.append(sa.func.coalesce(sa.func.sum(sa.case((sa.and_(*running), 1), else_=0)), 0).label(f"s{i}"))
    row = conn.execute(sa.select(*columns).select_from(table)).one()
    funnel = [FunnelStep("customers", "customer table", row.total, 0)]
    previous = row.total
    for i, (stage, label, _cond) in enumerate(steps):
        remaining = int(row[i + 1])
        funnel.append(FunnelStep(stage, label, remaining, previous - remaining))
        previous = remaining
    return funnel


def _add(funnel: list[FunnelStep], stage: str, label: str, remaining: int) -> None:
    previous = funnel[-1].remaining if funnel else remaining
    funnel.append(FunnelStep(stage, label, remaining, previous - remaining))


def check_day(policy, as_of: date) -> None:
    """Raise ``WaveBlocked`` when ``as_of`` is a blocked day of the contact policy."""
    if policy is not None:
        from orchestrator.targeting.policy import blocked_day

        reason = blocked_day(policy, as_of)
        if reason:
            raise WaveBlocked(
                f"{as_of.isoformat()} is a blocked day of the contact policy ({reason}); nobody is contacted"
            )


def filter_customers(
    engine: sa.Engine,
    spec: CampaignSpec,
    table: sa.Table,
    policy,
    *,
    as_of: date,
    with_funnel: bool = False,
    extra: Mapping[str, sa.ColumnElement] | None = None,
    features: Sequence[str] = (),
) -> Candidates:
    """Every filter that runs in the database (audience, lists, policy) as ONE query, then the global
    control group; raise ``WaveBlocked`` on a blocked day.

    ``extra`` names SQL expressions (e.g. channel eligibility) computed in the same query
    and returned aligned with the candidates in ``Candidates.extra``; ``features`` names columns
    (the scoring model's) read in the same query into ``Candidates.features``, so that the scores
    (``score_and_cut``, in chunks) need not read the customer table again.
    """
    check_day(policy, as_of)
    extra = dict(extra or {})
    features = list(features)
    with engine.connect() as conn:
        steps = named_conditions(spec, table, policy, as_of=as_of, conn=conn)
        funnel = funnel_counts(conn, table, steps) if with_funnel else []
        labels = [f"x{i}" for i in range(len(extra))]
        feature_labels = [f"f{i}" for i in range(len(features))]
        query = sa.select(
            table.c[ID_COLUMN],
            *(expr.label(label) for label, expr in zip(labels, extra.values(), strict=True)),
            *(table.c[name].label(label) for label, name in zip(feature_labels, features, strict=True)),
        ).order_by(table.c[ID_COLUMN])
        if steps:
            query = query.where(sa.and_(*(cond for _s, _l, cond in steps)))
        feature_frame = None
        if extra or features:  # one frame, not a Python loop per customer and column
            frame = frame_of_query(conn, query, ["id", *labels, *feature_labels])
            ids: list[str] = frame["id"].tolist()
            columns = {name: _column(frame[label]) for name, label in zip(extra, labels, strict=True)}
            if features:
                feature_frame = frame[feature_labels].set_axis(features, axis=1)
        else:
            ids = list(conn.execute(query).scalars())
            columns = {}

    global_mask = np.zeros(len(ids), dtype=bool)
    if policy is not None and getattr(policy, "global_control", None) is not None:
        from orchestrator.targeting.policy import is_global_control

        global_mask = is_global_control(ids, policy)
        _add(funnel, "global control", "held out of every campaign", len(ids) - int(global_mask.sum()))
    if global_mask.any():
        id_array = np.asarray(ids, dtype=object)
        held_out = id_array[global_mask].tolist()
        candidates = id_array[~global_mask].tolist()
        if feature_frame is not None:
            feature_frame = feature_frame[~global_mask].reset_index(drop=True)
    else:
        held_out, candidates = [], ids
    global_extra = {k: v[global_mask] for k, v in columns.items()}
    columns = {k: v[~global_mask] for k, v in columns.items()}
    return Candidates(candidates, None, held_out, funnel, columns, global_extra, features=feature_frame)


def _column(series: pd.Series) -> np.ndarray:
    """An ``extra`` column as a numpy array: numbers (the channels' eligibility flags) as they are, anything
    else (a territory's text, missing values) as objects."""
    if series.dtype.kind in "biuf":
        return series.to_numpy()
    return series.to_numpy(dtype=object)


def scoring_features(engine: sa.Engine, spec: CampaignSpec, table: sa.Table) -> list[str]:
    """The feature columns of the model the ``scores:`` section names, for the selection query to read
    (``filter_customers``); none without a model, or when the registry or the table cannot give them
    (the chunks then read them by id and report the problem)."""
    if spec.scores is None:
        return []
    from orchestrator.scoring.registry import ModelNotFound, get

    try:
        names = [str(f["name"]) for f in get(engine, spec.scores.model, spec.scores.version).features]
    except ModelNotFound:
        return []
    if ID_COLUMN in names or not all(name in table.c for name in names):
        return []
    return names


def score_and_cut(
    settings, spec: CampaignSpec, table: str, candidates: Candidates, *, mapper: Mapper = in_process
) -> Candidates:
    """Score the candidates in chunks of ``execution.chunk_size`` (one ``mapper`` call each) and keep
    those the ``scores:`` section asks for, best first; unchanged without a ``scores:`` section.

    With ``candidates.features`` (read by the selection query) the model is loaded and checked against
    the customer table once, and each chunk scores its slice of those columns; without them each chunk
    reads its customers' features by id."""
    if spec.scores is None:
        return candidates
    from orchestrator.scoring.customers import (
        checked_model,
        score_chunk_by_channel,
        score_chunk_of_features,
        score_order,
    )

    model, version = spec.scores.model, spec.scores.version
    channels = spec.channels.names()
    size = settings.execution.chunk_size
    spread = spec.learning.optimism > 0  # the effects' spread, for optimistic channel values (planning)
    features = candidates.features
    positions: np.ndarray | None = None  # where each scored customer is among the candidates (None: the same)
    fitted = None
    if features is not None:
        fitted = checked_model(settings, model, version, table)
        if list(fitted.features_) != list(features.columns):  # a new champion since the selection query
            features = None
    if features is not None:
        frames = [features.iloc[start : start + size] for start in range(0, len(features), size)]
        parts = list(mapper(score_chunk_of_features, [(settings, fitted, frame, channels, spread) for frame in frames]))
        scored_ids = np.asarray(candidates.ids, dtype=object)
    else:
        chunks = split_chunks(candidates.ids, size)
        id_parts = list(
            mapper(score_chunk_by_channel, [(settings, model, version, table, c, channels, spread) for c in chunks])
        )
        parts = [(scores, effects, spreads) for _i, scores, effects, spreads in id_parts]
        scored_ids = (
            np.concatenate([ids for ids, *_rest in id_parts]) if id_parts else np.empty(0, dtype=object)
        ).astype(object)
        positions = pd.Index(candidates.ids).get_indexer(pd.Index(scored_ids))
    scored = np.concatenate([s for s, *_rest in parts]) if parts else np.empty(0, dtype=np.float64)
    by_channel = bool(parts) and all(effects is not None for _s, effects, _d in parts)
    scored_effects = np.concatenate([e for _s, e, _d in parts if e is not None]) if by_channel else None
    with_spread = by_channel and all(d is not None for _s, _e, d in parts)
    scored_spread = np.concatenate([d for _s, _e, d in parts if d is not None]) if with_spread else None
    s = spec.scores
    # best first, ties by id: n_ordered pass min_score, the first n_kept of them the whole cut (top, top_percent)
    order, n_ordered, n_kept = score_order(
        scored_ids, scored, min_score=s.min_score, top=s.top, top_percent=s.top_percent
    )

    def part(take: slice, funnel: list[FunnelStep]) -> Candidates:
        rows = order[take]
        effects = None if scored_effects is None else scored_effects[rows]  # column-wise, by position
        spreads = None if scored_spread is None else scored_spread[rows]
        columns = candidates.extra
        if columns:
            keep = rows if positions is None else positions[rows]
            columns = {k: v[keep] for k, v in columns.items()}
        return Candidates(
            scored_ids[rows].tolist(),
            scored[rows],
            candidates.global_control,
            funnel,
            columns,
            candidates.global_extra,
            effects,
            spreads,
        )

    funnel = list(candidates.funnel)
    _add(funnel, "score", _score_label(s), n_kept)
    kept = part(slice(0, n_kept), funnel)
    if n_kept < n_ordered:
        kept.reserve = part(slice(n_kept, n_ordered), [])
    if n_ordered < len(scored_ids):  # removed by min_score (or without a score), column-wise
        below = np.ones(len(scored_ids), dtype=bool)
        below[order[:n_ordered]] = False
        kept.below_min = scored_ids[below]
    return kept


def split(spec: CampaignSpec, candidates: Candidates, *, with_funnel: bool = False) -> Selection:
    """Draw the random control group (per score decile if asked) and the A/B variants."""
    ids, scores, funnel = candidates.ids, candidates.scores, list(candidates.funnel)
    share, salt = spec.control.share, spec.control.salt or spec.name
    if spec.control.stratify_by_score and scores is not None:
        control = groups.stratified_control_mask(ids, share, salt, groups.score_deciles(scores))
    else:
        control = groups.control_mask(ids, share, salt)
    if with_funnel:
        _add(funnel, "control", f"random control group ({share:.0%}) held out", len(ids) - int(control.sum()))

    variants = np.full(len(ids), None, dtype=object)
    if spec.variants:
        treated_idx = np.flatnonzero(~control)
        assigned = groups.assign_variants(
            [ids[i] for i in treated_idx], {k: v.share for k, v in spec.variants.items()}, salt
        )
        variants[treated_idx] = assigned
        if with_funnel:
            for name in spec.variants:
                funnel.append(FunnelStep("variant", f"variant {name}", int(np.count_nonzero(assigned == name)), 0))

    held_out = candidates.global_control
    arms = _ARMS[control.astype(np.intp)]  # one lookup, not fixed-width strings converted one by one
    all_arms = np.concatenate([arms, np.full(len(held_out), Arm.GLOBAL_CONTROL.value, dtype=object)])
    all_variants = np.concatenate([variants, np.full(len(held_out), None, dtype=object)])
    all_scores = (
        None if scores is None else np.concatenate([np.asarray(scores, dtype=float), np.full(len(held_out), np.nan)])
    )
    names = spec.channels.names()
    arm_propensity = np.concatenate([np.where(control, share, 1 - share), np.full(len(held_out), np.nan)])
    contacts = ContactFrame.of(
        ids + held_out if held_out else ids,
        all_arms,
        variant=all_variants,
        channel=names[0] if names else None,
        score=all_scores,
        arm_propensity=arm_propensity,
    )
    return Selection(contacts, funnel)


def _score_label(s: ScoresSpec) -> str:
    parts = [f"model {s.model}" + (f" v{s.version}" if s.version else "")]
    if s.min_score is not None:
        parts.append(f"score >= {s.min_score:g}")
    if s.top is not None:
        parts.append(f"top {s.top:,}")
    if s.top_percent is not None:
        parts.append(f"top {s.top_percent:g}%")
    return ", ".join(parts)
