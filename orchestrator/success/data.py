"""The data success control works on: one row per contact of a campaign, with what came of it.

``contact_frame`` reads a campaign's contacts (treatment and control; the global control is
not part of a campaign's comparison) and joins, per contact, in aggregate queries:

* its response events, classified per channel by ``orchestrator.rules.outcomes`` (response,
  conversion and its value), counted only within the attribution window after the wave date;
* imported conversions attributed to the wave (``conversions.attributed``), treated and
  control alike;
* for imported historical results, the named outcome columns.

A contact's window ends early at the customer's next contact by the same campaign (a later
wave in which the customer is treated or control again): waves closer together than the
window would otherwise count a conversion for several waves, and a wave's lift would include
the effect of the contacts after it. Treated and control customers are selected again alike
(control customers count as virtual contacts for the frequency caps), so the cut keeps the
comparison fair; the column ``window_cut`` marks the contacts concerned and ``frame.attrs["notes"]``
says how many there are.

``with_customer_columns`` adds columns of the customer table as they were at selection time
(the wave's snapshot, ``orchestrator.ledger.snapshots``): covariates for the regression
adjustment and the columns of ``campaign report --by``.

The frame is what ``orchestrator.success.report.build_report`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from orchestrator.db.tables import Arm, ContactStatus, ResponseEvent, table_of
from orchestrator.ledger import contacts as ledger
from orchestrator.responses.conversions import attributed, attributed_rows
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
    recorded = found  # every outcome of these waves, before the windows cut them
    dates = {wid: day for wid, _k, day in wave_list}
    keys = {wid: key for wid, key, _d in wave_list}
    frame["campaign"] = campaign
    frame["wave"] = frame["wave_id"].map(keys)
    frame["wave_date"] = pd.to_datetime(frame["wave_id"].map(dates))
    start = frame.set_index("contact_id")["wave_date"].dt.tz_localize("UTC")
    next_contact = _next_contact(engine, campaign, frame)
    end = start + pd.Timedelta(days=measure.window_days)
    cut = next_contact.notna() & (next_contact < end)
    end = end.where(~cut, next_contact)
    if measure.outcome is not None:  # imported results: no window
        cut[:] = False

    responded = pd.Series(False, index=frame["contact_id"])
    converted = pd.Series(False, index=frame["contact_id"])
    revenue = pd.Series(0.0, index=frame["contact_id"])
    first = pd.Series(pd.NaT, index=frame["contact_id"], dtype="datetime64[ns, UTC]")
    if len(found):
        found["occurred_at"] = pd.to_datetime(found["occurred_at"], utc=True)
        found = found[found["contact_id"].isin(frame["contact_id"])]
        since = found["occurred_at"] - found["contact_id"].map(start)
        imported = found["channel"] == IMPORTED
        inside = imported | ((since >= pd.Timedelta(0)) & (found["occurred_at"] < found["contact_id"].map(end)))
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
        conv = _conversions(engine, wave_list, measure, end if cut.any() else None)
        if conv:
            hit = pd.Index([cid for cid in conv if cid in converted.index])
            converted.loc[hit] = True
            when = pd.to_datetime(pd.Series({cid: conv[cid][2] for cid in hit}, dtype="object"), utc=True)
            first.loc[hit] = pd.concat([first.loc[hit], when], axis=1).min(axis=1)
            if measure.value == "conversions":
                revenue.loc[hit] += pd.Series({cid: conv[cid][1] for cid in hit})
    frame.attrs.update(_outcome_stamp(engine, recorded, wave_list, measure))
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
    frame["window_cut"] = frame["contact_id"].map(cut).fillna(False).astype(bool)
    n_cut = int(frame["window_cut"].sum())
    frame.attrs["notes"] = (
        [
            f"{n_cut:,} contacts' success windows end early, at the customer's next contact by this campaign "
            f"(waves closer together than the {measure.window_days}-day window): each conversion counts for one "
            f"wave, and a wave's lift is the campaign's effect until its customers' next contact"
        ]
        if n_cut
        else []
    )
    return frame


def _next_contact(engine: sa.Engine, campaign: str, frame: pd.DataFrame) -> pd.Series:
    """Per contact id of ``frame``: the date of the customer's next wave of the campaign (NaT: none), UTC."""
    every = campaign_waves(engine, campaign)
    if len(every) < 2:
        return pd.Series(pd.NaT, index=frame["contact_id"], dtype="datetime64[ns, UTC]")
    c = ledger.contacts
    with engine.connect() as conn:
        everyone = pd.read_sql(
            sa.select(c.c.wave_id, c.c.customer_id).where(
                c.c.wave_id.in_([w[0] for w in every]), c.c.arm.in_([Arm.TREATMENT.value, Arm.CONTROL.value])
            ),
            conn,
        )
    day_of = {wid: pd.Timestamp(day) for wid, _k, day in every}
    everyone["day"] = everyone["wave_id"].map(day_of)
    days = everyone[["customer_id", "day"]].drop_duplicates().sort_values(["customer_id", "day"], kind="stable")
    days["next"] = days.groupby("customer_id")["day"].shift(-1)
    following = days.set_index(["customer_id", "day"])["next"]
    mine = pd.MultiIndex.from_arrays([frame["customer_id"], frame["wave_id"].map(day_of)])
    nxt = pd.Series(following.reindex(mine).to_numpy(), index=frame["contact_id"])
    return pd.to_datetime(nxt).dt.tz_localize("UTC")


def _outcome_stamp(engine: sa.Engine, found: pd.DataFrame, wave_list, measure: Measure) -> dict:
    """``outcome_events``: outcomes recorded for the waves (events, and imported conversions since the
    first wave for our own waves); ``data_as_of``: when the newest of them occurred (ISO, UTC) or None."""
    from orchestrator.responses.conversions import conversions

    times = [pd.to_datetime(found["occurred_at"], utc=True).max()] if len(found) else []
    n = len(found)
    if measure.outcome is None and wave_list:
        first = min(day for _w, _k, day in wave_list)
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        with engine.connect() as conn:
            count, newest = conn.execute(
                sa.select(sa.func.count(), sa.func.max(conversions.c.occurred_at)).where(
                    conversions.c.occurred_at >= since
                )
            ).one()
        n += int(count or 0)
        if newest is not None:
            times.append(pd.to_datetime(newest, utc=True))
    known = [t for t in times if not pd.isna(t)]
    newest_time = max(known).tz_convert("UTC").isoformat(timespec="minutes") if known else None
    return {"outcome_events": n, "data_as_of": newest_time}


def _conversions(engine: sa.Engine, wave_list, measure: Measure, end: pd.Series | None):
    """Attributed conversions per contact id: (count, amount, first time); with ``end``, only those before it."""
    waves = [(wid, day) for wid, _k, day in wave_list]
    if end is None:
        return attributed(engine, waves, measure.window_days, product=measure.product)
    rows = pd.DataFrame(
        attributed_rows(engine, waves, measure.window_days, product=measure.product),
        columns=["contact_id", "amount", "occurred_at"],
    )
    if not len(rows):
        return {}
    rows["occurred_at"] = pd.to_datetime(rows["occurred_at"], utc=True)
    rows = rows[rows["occurred_at"] < rows["contact_id"].map(end)]
    grouped = rows.groupby("contact_id").agg(
        n=("amount", "size"), amount=("amount", "sum"), first=("occurred_at", "min")
    )
    return {
        int(cid): (int(n), float(amount), first.to_pydatetime())
        for cid, n, amount, first in grouped.itertuples(index=True, name=None)
    }


def with_customer_columns(settings, frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with ``columns`` of each contact's customer row as of its wave (the wave's snapshot).

    Returns the frame (new columns NaN where a wave has no snapshot or the snapshot lacks the
    column) and notes saying which waves miss them.
    """
    from orchestrator.ledger.snapshots import read_snapshot

    if not columns:
        return frame, []
    frame = frame.copy()
    parts: list[pd.DataFrame] = []
    missing_waves: list[str] = []
    lacking: dict[str, list[str]] = {}
    for wave_id, wave in frame[["wave_id", "wave"]].drop_duplicates().itertuples(index=False, name=None):
        snapshot = read_snapshot(settings, int(wave_id))
        if snapshot is None:
            missing_waves.append(str(wave))
            continue
        have = [c for c in columns if c in snapshot.columns]
        for c in columns:
            if c not in snapshot.columns:
                lacking.setdefault(c, []).append(str(wave))
        part = snapshot[["customer_id", *have]].copy()
        part["customer_id"] = part["customer_id"].astype(str)
        part["wave_id"] = int(wave_id)
        parts.append(part)
    if parts:
        joined = pd.concat(parts, ignore_index=True)
        keys = pd.MultiIndex.from_arrays([frame["wave_id"].astype(int), frame["customer_id"].astype(str)])
        joined = joined.set_index(["wave_id", "customer_id"])
        joined = joined[~joined.index.duplicated()]
        for column in columns:
            frame[column] = joined[column].reindex(keys).to_numpy() if column in joined.columns else np.nan
    else:
        for column in columns:
            frame[column] = np.nan
    notes = []
    if missing_waves:
        notes.append(f"waves {', '.join(missing_waves)} have no snapshot: their {', '.join(columns)} are unknown")
    for column, waves in lacking.items():
        if len(waves) == frame["wave_id"].nunique() - len(missing_waves) and parts:
            known = sorted({c for p in parts for c in p.columns} - {"customer_id", "wave_id"})
            from orchestrator.errors import did_you_mean

            notes.append(f"'{column}' is in no snapshot of these waves{did_you_mean(column, known) or ''}")
        elif waves:
            notes.append(f"'{column}' is missing from the snapshots of waves {', '.join(waves)}")
    return frame, notes


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


__all__ = ["CampaignNotFound", "Measure", "campaign_waves", "channel_costs", "contact_frame", "with_customer_columns"]
