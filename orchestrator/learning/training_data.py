"""Training sets from what happened: point-in-time snapshots joined with attributed outcomes.

``training_frame`` takes the waves of one or more campaigns (our own and imported historical
results), and for every treated and control contact joins

* the customer's features as they were at selection time (``orchestrator.ledger.snapshots``),
* ``treatment`` (1 treated, 0 random control) and ``outcome`` (1 if the contact succeeded as
  the campaign's ``success:`` defines it, from ``orchestrator.success.data``),
* ``campaign``, ``wave``, ``wave_date``, ``channel``,
* ``arm_propensity`` and ``channel_propensity``: the probabilities with which the contact got
  its arm and its channel, as recorded in the ledger (NaN for contacts recorded before they
  were), so a learner can weight by their inverse, and ``eligible_channels``: the channels the
  customer could have got (comma-separated; None before they were recorded), so an off-policy
  evaluation knows which choices another policy had.

With ``passed_over=True`` (channel uplift models) each of our own waves also adds the customers
it passed over (``passed_over`` true, not treated, no channel): their outcomes are the
no-contact outcome of customers chosen by their columns alone, so an outcome model learns what
customers do uncontacted from many more rows than the random control group has. They are not
a random group: evaluation and success control leave them out.

Waves whose attribution window has not closed by ``as_of`` are left out (their outcomes are
not final), as are waves without a snapshot; ``TrainingSet.notes`` says which and why.
``split_by_time`` validates on the latest waves, so a model is judged on waves that came after
the ones it learned from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from orchestrator.db.tables import Arm
from orchestrator.ledger.snapshots import read_snapshot
from orchestrator.rules.outcomes import load_outcomes
from orchestrator.settings import Settings
from orchestrator.success.data import CampaignNotFound, Measure, campaign_waves, contact_frame

META = (
    "campaign",
    "wave",
    "wave_date",
    "channel",
    "treatment",
    "outcome",
    "arm_propensity",
    "channel_propensity",
    "eligible_channels",
    "passed_over",
)
"""Columns of a training frame that are not features."""


@dataclass
class TrainingSet:
    frame: pd.DataFrame  # features + META
    waves: list[tuple[str, str, date]] = field(default_factory=list)  # (campaign, wave, date) used
    notes: list[str] = field(default_factory=list)

    @property
    def window(self) -> tuple[str | None, str | None]:
        days = sorted(d for _c, _w, d in self.waves)
        return (days[0].isoformat(), days[-1].isoformat()) if days else (None, None)


def measure_of(settings: Settings, campaign: str) -> Measure:
    """The campaign's ``success:`` definition (its rules file), or the imported results' default."""
    from orchestrator.rules.loader import find_campaign_file, load_campaign

    path = find_campaign_file(settings.paths.rules_dir, campaign)
    if path is None:
        return Measure()
    s = load_campaign(path, columns=None).success
    return Measure(goal=s.goal, window_days=s.window_days, product=s.product, value=s.value)


def training_frame(
    engine: sa.Engine,
    settings: Settings,
    campaigns: Sequence[str],
    *,
    as_of: date | None = None,
    outcome: str | None = None,
    passed_over: bool = False,
) -> TrainingSet:
    """The training set of ``campaigns``' waves; see the module docstring.

    ``outcome`` names the success outcome of imported historical results (e.g. ``visit``);
    ``passed_over`` adds the customers each wave passed over (``passed_over_rows``).
    """
    as_of = as_of or date.today()
    outcomes = load_outcomes(settings.paths.rules_dir)
    parts: list[pd.DataFrame] = []
    result = TrainingSet(pd.DataFrame())
    for campaign in campaigns:
        measure = measure_of(settings, campaign)
        if outcome is not None:
            measure = Measure(goal="conversion", outcome=outcome)
        try:
            waves = campaign_waves(engine, campaign)
        except CampaignNotFound as exc:
            result.notes.append(str(exc))
            continue
        for wave_id, key, day in waves:
            imported = measure.outcome is not None
            if not imported and day + timedelta(days=measure.window_days) > as_of:
                result.notes.append(
                    f"{campaign} wave {key}: its {measure.window_days}-day window is still open; left out"
                )
                continue
            snapshot = read_snapshot(settings, wave_id)
            if snapshot is None:
                result.notes.append(f"{campaign} wave {key}: no feature snapshot; left out")
                continue
            outcomes_frame = contact_frame(engine, campaign, outcomes, measure, waves=[key])
            success = outcomes_frame["converted"] if measure.goal == "conversion" else outcomes_frame["responded"]
            labels = pd.DataFrame(
                {
                    "customer_id": outcomes_frame["customer_id"].astype(str),
                    "campaign": campaign,
                    "wave": key,
                    "wave_date": pd.Timestamp(day),
                    "channel": outcomes_frame["channel"],
                    "treatment": (outcomes_frame["arm"] == Arm.TREATMENT.value).astype("int8"),
                    "outcome": success.astype("int8"),
                    "arm_propensity": outcomes_frame["arm_propensity"].astype(float),
                    "channel_propensity": outcomes_frame["channel_propensity"].astype(float),
                    "eligible_channels": outcomes_frame["eligible_channels"],
                    "passed_over": False,
                }
            )
            snapshot["customer_id"] = snapshot["customer_id"].astype(str)
            joined = labels.merge(snapshot, on="customer_id", how="inner", validate="one_to_one")
            if len(joined) < len(labels):
                result.notes.append(
                    f"{campaign} wave {key}: {len(labels) - len(joined)} contacts without a snapshot row"
                )
            parts.append(joined)
            if passed_over and not imported and measure.goal == "conversion":
                extra = passed_over_rows(engine, settings, campaign, wave_id, key, day, measure)
                if extra is not None:
                    parts.append(extra)
            result.waves.append((campaign, key, day))
    if parts:
        result.frame = pd.concat(parts, ignore_index=True)
    return result


def passed_over_rows(
    engine: sa.Engine, settings: Settings, campaign: str, wave_id: int, key: str, day: date, measure: Measure
) -> pd.DataFrame | None:
    """The customers a wave passed over (``ledger.snapshots.write_passed_over``) as training rows: not
    treated, no channel, no propensities, ``passed_over`` true, the outcome whether they converted in the
    wave's window (the same conversions that count for the control group). ``None`` without that snapshot."""
    from datetime import UTC, datetime, time

    from orchestrator.customers.table import among_ids
    from orchestrator.ledger.snapshots import ID_CHUNK, read_passed_over
    from orchestrator.responses.conversions import conversions

    found = read_passed_over(settings, wave_id)
    if found is None:
        return None
    snapshot, _share = found
    ids = snapshot["customer_id"].astype(str)
    start = datetime.combine(day, time(), tzinfo=UTC)
    end = start + timedelta(days=measure.window_days)
    bought: set[str] = set()
    with engine.connect() as conn:
        query = sa.select(conversions.c.customer_id).where(
            among_ids(conversions.c.customer_id, conn.dialect.name),
            conversions.c.occurred_at >= start,
            conversions.c.occurred_at < end,
        )
        if measure.product is not None:
            query = query.where(conversions.c.product == measure.product)
        for begin in range(0, len(ids), ID_CHUNK):
            bought.update(str(c) for c in conn.execute(query, {"ids": list(ids[begin : begin + ID_CHUNK])}).scalars())
    rows = pd.DataFrame(
        {
            "customer_id": ids,
            "campaign": campaign,
            "wave": key,
            "wave_date": pd.Timestamp(day),
            "channel": None,
            "treatment": np.zeros(len(ids), dtype="int8"),
            "outcome": ids.isin(bought).astype("int8"),
            "arm_propensity": np.nan,
            "channel_propensity": np.nan,
            "eligible_channels": None,
            "passed_over": True,
        }
    )
    return rows.merge(snapshot.assign(customer_id=ids), on="customer_id", how="inner", validate="one_to_one")


def features_of(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """The feature columns of a training frame (not META, not the id, not ``exclude``)."""
    return [c for c in frame.columns if c not in META and c != "customer_id" and c not in exclude]


def split_by_time(frame: pd.DataFrame, validation_share: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Train on the earlier waves, validate on the latest ones (about ``validation_share`` of the rows).

    With a single wave date there is nothing later to validate on: ``(frame, None)``.
    """
    dates = sorted(frame["wave_date"].unique())
    if len(dates) < 2:
        return frame, None
    counts = frame.groupby("wave_date").size().reindex(dates)
    cumulative = counts[::-1].cumsum()[::-1] / len(frame)  # share of rows on or after each date
    later = [d for d in dates[1:] if cumulative[d] <= max(validation_share, cumulative[dates[-1]])]
    cut = later[0] if later else dates[-1]
    return frame[frame["wave_date"] < cut].reset_index(drop=True), frame[frame["wave_date"] >= cut].reset_index(
        drop=True
    )
