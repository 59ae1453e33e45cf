"""Every campaign at a glance (``campaign status``): last wave, next wave, open contacts, open windows, result.

``campaign_overview(settings, next_waves=, schedule_note=, as_of=)`` returns one ``CampaignStatus`` per
campaign in the ledger or in the rules folder, in name order, from a few grouped queries (no
per-contact rows) and one success report per campaign that has waves:

* ``last_wave``: the newest wave that got past selection (its key, status, when it was recorded);
* ``pending`` / ``failed`` / ``dead_lettered``: treated contacts still to send (the next run of
  their wave sends them), failed for good, and in task lists the receiver rejected
  (``campaign dlq list``);
* ``open_windows``: waves whose success window has not closed by ``as_of`` (default today), with
  the day it closes: their results are provisional;
* ``lift``: the headline of the success report (absolute lift in points with its 95% interval,
  and whether it is significant), or why there is none;
* ``next_wave``: from ``next_waves`` (campaign -> (time, deployment), read from the Prefect API by
  the caller); a campaign not in it is "not scheduled"; when the caller could not ask Prefect,
  ``schedule_note`` says why and the next wave is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from orchestrator.db.engine import connect
from orchestrator.db.tables import Arm, BatchStatus, DispatchBatch, WaveStatus, table_of
from orchestrator.ledger import contacts as ledger
from orchestrator.settings import Settings

__all__ = ["CampaignStatus", "Lift", "OpenWindow", "campaign_overview"]


@dataclass(frozen=True)
class OpenWindow:
    wave: str
    closes: str  # ISO date


@dataclass(frozen=True)
class Lift:
    """The overall result: absolute lift (a share, 0.021 = 2.1 points) with its 95% interval."""

    headline: str
    absolute: float | None = None
    low: float | None = None
    high: float | None = None
    significant: bool = False
    provisional: bool = False  # a success window is still open


@dataclass
class CampaignStatus:
    campaign: str
    waves: int = 0
    last_wave: str | None = None
    last_wave_status: str | None = None
    last_wave_recorded: datetime | None = None
    next_wave: datetime | None = None
    next_wave_deployment: str | None = None
    next_wave_note: str = "not scheduled"
    pending: int = 0
    failed: int = 0
    dead_lettered: int = 0
    open_windows: list[OpenWindow] = field(default_factory=list)
    lift: Lift | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("last_wave_recorded", "next_wave"):
            value = data[key]
            data[key] = None if value is None else value.isoformat()
        return data


def _rules_campaigns(rules_dir: Path) -> list[str]:
    """Names (``name:``) of the campaign files in the rules folder, read without validating them."""
    names = []
    for path in sorted({*rules_dir.glob("*.yaml"), *rules_dir.glob("*.yml")}):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            names.append(data["name"])
    return names


def campaign_overview(
    settings: Settings,
    *,
    next_waves: Mapping[str, tuple[datetime | None, str]] | None = None,
    schedule_note: str | None = None,
    as_of: date | None = None,
) -> list[CampaignStatus]:
    """One ``CampaignStatus`` per campaign (see the module docstring)."""
    engine = connect(settings)
    as_of = as_of or date.today()
    c, w, k = ledger.campaigns, ledger.waves, ledger.contacts
    batches = table_of(DispatchBatch)
    with engine.connect() as conn:
        wave_rows = conn.execute(
            sa.select(c.c.name, w.c.key, w.c.status, w.c.recorded_at, w.c.created_at)
            .join_from(w, c, c.c.id == w.c.campaign_id)
            .order_by(c.c.name, w.c.created_at, w.c.id)
        ).all()
        contact_rows = conn.execute(
            sa.select(c.c.name, k.c.status, sa.func.count())
            .join_from(k, w, w.c.id == k.c.wave_id)
            .join(c, c.c.id == w.c.campaign_id)
            .where(k.c.arm == Arm.TREATMENT.value, k.c.status.in_(["pending", "failed"]))
            .group_by(c.c.name, k.c.status)
        ).all()
        dead_rows = conn.execute(
            sa.select(c.c.name, sa.func.coalesce(sa.func.sum(batches.c.size), 0))
            .join_from(batches, w, w.c.id == batches.c.wave_id)
            .join(c, c.c.id == w.c.campaign_id)
            .where(batches.c.status == BatchStatus.DEAD.value)
            .group_by(c.c.name)
        ).all()
        known = [name for (name,) in conn.execute(sa.select(c.c.name))]
    names = sorted({*known, *_rules_campaigns(Path(settings.paths.rules_dir))})
    statuses = {name: CampaignStatus(name) for name in names}
    for name, key, status, recorded_at, created_at in wave_rows:
        s = statuses[name]
        if status == WaveStatus.SELECTING.value:  # not recorded (declined, or stopped before recording)
            continue
        s.waves += 1
        s.last_wave, s.last_wave_status, s.last_wave_recorded = key, status, recorded_at or created_at
    for name, status, n in contact_rows:
        setattr(statuses[name], status, int(n))
    for name, n in dead_rows:
        statuses[name].dead_lettered = int(n)
    for s in statuses.values():
        if next_waves is None:
            s.next_wave_note = f"unknown: {schedule_note or 'the Prefect API was not asked'}"
        elif s.campaign in next_waves:
            s.next_wave, s.next_wave_deployment = next_waves[s.campaign]
            s.next_wave_note = "scheduled" if s.next_wave is not None else "schedule paused or inactive"
        if s.waves:
            _add_result(settings, s, as_of)
    return list(statuses.values())


def _add_result(settings: Settings, status: CampaignStatus, as_of: date) -> None:
    """The success report's headline and open windows (in place); a report that cannot be built says why."""
    from orchestrator.success.campaign import build_campaign_report
    from orchestrator.success.data import CampaignNotFound
    from orchestrator.success.formatting import finite, headline

    try:
        report = build_campaign_report(settings, status.campaign, as_of=as_of)
        overall = report.overall()
    except (CampaignNotFound, LookupError, ValueError) as exc:
        status.lift = Lift(headline=f"no result: {exc}")
        return
    status.open_windows = [
        OpenWindow(s.key, s.window_closes)
        for s in report.by("wave")
        if s.window_closes is not None and date.fromisoformat(s.window_closes) > as_of
    ]
    lift = overall.absolute_lift
    status.lift = Lift(
        headline=headline(report),
        absolute=finite(lift.value),
        low=finite(lift.low),
        high=finite(lift.high),
        significant=bool(overall.significant),
        provisional=bool(status.open_windows),
    )
