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

Waves whose attribution window has not closed by ``as_of`` are left out (their outcomes are
not final), as are waves without a snapshot; ``TrainingSet.notes`` says which and why.
``split_by_time`` validates on the latest waves, so a model is judged on waves that came after
the ones it learned from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

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
) -> TrainingSet:
    """The training set of ``campaigns``' waves; see the module docstring.

    ``outcome`` names the success outcome of imported historical results (e.g. ``visit``).
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
                }
            )
            snapshot["customer_id"] = snapshot["customer_id"].astype(str)
            joined = labels.merge(snapshot, on="customer_id", how="inner", validate="one_to_one")
            if len(joined) < len(labels):
                result.notes.append(
                    f"{campaign} wave {key}: {len(labels) - len(joined)} contacts without a snapshot row"
                )
            parts.append(joined)
            result.waves.append((campaign, key, day))
    if parts:
        result.frame = pd.concat(parts, ignore_index=True)
    return result


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
