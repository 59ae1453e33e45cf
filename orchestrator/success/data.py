"""The data success control works on: one row per contact of a campaign, with what came of it.

``contact_frame`` reads a campaign's contacts (treatment and control; the global control is
not part of a campaign's comparison) and joins, per contact, in aggregate queries:

* its response events, classified per channel by ``orchestrator.rules.outcomes`` (response,
  conversion and its value), counted only within the attribution window after the wave date;
* imported conversions attributed to the wave (``conversions.attributed``), treated and
  control alike;
* for imported historical results, the named outcome columns.

The frame is what ``orchestrator.success.report.build_report`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from orchestrator.db.tables import Arm, ContactStatus, ResponseEvent, table_of
from orchestrator.ledger import contacts as ledger
from orchestrator.responses.conversions import attributed
from orchestrator.responses.results_import import CHANNEL as IMPORTED
from orchestrator.rules.outcomes import Outcomes

events = table_of(ResponseEvent)


class CampaignNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Measure:
    """What counts: the goal, the window, and for imported results the outcome columns."""

    goal: Literal["response", "conversion"] = "conversion"
    window_days: int = 30
    product: str | None = None
    value: str = "conversions"  # conversions | outcomes
    outcome: str | None = None  # imported results: the binary outcome that is success
    revenue: str | None = None  # imported results: the monetary outcome


def wave_date(key: str, created_at: datetime) -> date:
    try:
        return date.fromisoformat(key)
    except ValueError:
        return created_at.date()


def campaign_waves(engine: sa.Engine, campaign: str, keys: list[str] | None = None) -> list[tuple[int, str, date]]:
    w, c = ledger.waves, ledger.campaigns
    query = (
        sa.select(w.c.id, w.c.key, w.c.created_at)
        .join_from(w, c, c.c.id == w.c.campaign_id)
        .where(c.c.name == campaign)
    )
    with engine.connect() as conn:
        if conn.execute(sa.select(c.c.id).where(c.c.name == campaign)).first() is None:
            names = list(conn.execute(sa.select(c.c.name)).scalars())
            from orchestrator.errors import did_you_mean

            raise CampaignNotFound(f"no campaign '{campaign}' in the ledger{did_you_mean(campaign, names) or ''}")
        rows = conn.execute(query.order_by(w.c.id)).all()
    waves = [(wid, key, wave_date(key, created)) for wid, key, created in rows]
    if keys:
        unknown = sorted(set(keys) - {k for _i, k, _d in waves})
        if unknown:
            raise CampaignNotFound(f"campaign '{campaign}' has no wave {', '.join(unknown)}")
        waves = [w for w in waves if w[1] in keys]
    return waves


def contact_frame(
    engine: sa.Engine,
    campaign: str,
    outcomes: Outcomes,
    measure: Measure,
    *,
    costs: dict[str, float] | None = None,
    waves: list[str] | None = None,
) -> pd.DataFrame:
    """One row per treated or control contact of ``campaign``; see the module docstring."""
    wave_list = campaign_waves(engine, campaign, waves)
    ids = [w[0] for w in wave_list]
    c = ledger.contacts
    with engine.connect() as conn:
        frame = pd.read_sql(
            sa.select(
                c.c.id.label("contact_id"),
                c.c.wave_id,
                c.c.customer_id,
                c.c.channel,
                c.c.variant,
                c.c.arm,
                c.c.score,
                c.c.status,
                c.c.arm_propensity,
                c.c.channel_propensity,
                c.c.eligible_channels,
            )
            .where(c.c.wave_id.in_(ids), c.c.arm.in_([Arm.TREATMENT.value, Arm.CONTROL.value]))
            .order_by(c.c.id),
            conn,
        )
        found = pd.read_sql(
            sa.select(events.c.contact_id, events.c.channel, events.c.type, events.c.value, events.c.occurred_at).where(
                events.c.wave_id.in_(ids)
            ),
            conn,
        )
    dates = {wid: day for wid, _k, day in wave_list}
    keys = {wid: key for wid, key, _d in wave_list}
    frame["campaign"] = campaign
    frame["wave"] = frame["wave_id"].map(keys)
    frame["wave_date"] = pd.to_datetime(frame["wave_id"].map(dates))
    start = frame.set_index("contact_id")["wave_date"].dt.tz_localize("UTC")

    responded = pd.Series(False, index=frame["contact_id"])
    converted = pd.Series(False, index=frame["contact_id"])
    revenue = pd.Series(0.0, index=frame["contact_id"])
    first = pd.Series(pd.NaT, index=frame["contact_id"], dtype="datetime64[ns, UTC]")
    if len(found):
        found["occurred_at"] = pd.to_datetime(found["occurred_at"], utc=True)
        found = found[found["contact_id"].isin(frame["contact_id"])]
        since = found["occurred_at"] - found["contact_id"].map(start)
        imported = found["channel"] == IMPORTED
        inside = imported | ((since >= pd.Timedelta(0)) & (since < pd.Timedelta(days=measure.window_days)))
        found = found[inside]
        is_response = _classified(found, outcomes, "response", measure.outcome)
        is_conversion = _classified(found, outcomes, "conversion", measure.outcome)
        for mask, target in ((is_response, responded), (is_conversion, converted)):
            hit = found.loc[mask, "contact_id"].unique()
            target.loc[hit] = True
        hits = found[is_response | is_conversion]
        if len(hits):
            earliest = hits.groupby("contact_id")["occurred_at"].min()
            first.loc[earliest.index] = earliest
        if measure.value == "outcomes" or measure.revenue is not None:
            money = found[_money(found, outcomes, measure)]
            sums = money.groupby("contact_id")["value"].sum()
            revenue.loc[sums.index] += sums.astype(float)
    if measure.outcome is None:  # our own waves: imported conversions count for treated and control alike
        conv = attributed(
            engine, [(wid, day) for wid, _k, day in wave_list], measure.window_days, product=measure.product
        )
        if conv:
            hit = pd.Index([cid for cid in conv if cid in converted.index])
            converted.loc[hit] = True
            when = pd.to_datetime(pd.Series({cid: conv[cid][2] for cid in hit}, dtype="object"), utc=True)
            first.loc[hit] = pd.concat([first.loc[hit], when], axis=1).min(axis=1)
            if measure.value == "conversions":
                revenue.loc[hit] += pd.Series({cid: conv[cid][1] for cid in hit})
    frame["responded"] = frame["contact_id"].map(responded).fillna(False).astype(bool)
    frame["converted"] = frame["contact_id"].map(converted).fillna(False).astype(bool)
    if measure.outcome is not None:  # imported results: the named outcome is success either way
        frame["converted"] = frame["responded"]
    frame["revenue"] = frame["contact_id"].map(revenue).fillna(0.0).astype(float)
    delay = frame["contact_id"].map(first) - frame["contact_id"].map(start)
    frame["days_to_response"] = delay.dt.total_seconds() / 86400.0
    costs = costs or {}
    contacted = (frame["arm"] == Arm.TREATMENT.value) & (frame["status"] == ContactStatus.SENT)
    frame["cost"] = np.where(contacted, frame["channel"].map(costs).fillna(0.0), 0.0)
    frame["score"] = frame["score"].astype(float)
    return frame


def _classified(found: pd.DataFrame, outcomes: Outcomes, kind: str, outcome: str | None) -> pd.Series:
    if outcome is not None:
        return found["type"] == outcome
    mask = pd.Series(False, index=found.index)
    for channel, group in found.groupby("channel", dropna=False):
        types = outcomes.types_of(channel if isinstance(channel, str) else None, kind)
        mask.loc[group.index] = group["type"].isin(types)
    return mask


def _money(found: pd.DataFrame, outcomes: Outcomes, measure: Measure) -> pd.Series:
    if measure.revenue is not None:
        return found["type"] == measure.revenue
    return _classified(found, outcomes, "conversion", None) & found["value"].notna()


def channel_costs(spec) -> dict[str, float]:
    """Cost per contact of each channel of a campaign's rules."""
    return {name: float(section.cost) for name, section in spec.channels.items()}


__all__ = ["CampaignNotFound", "Measure", "campaign_waves", "channel_costs", "contact_frame"]
