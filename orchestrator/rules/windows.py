"""Send windows: when a channel may contact a customer, in the customer's local time.

``SendWindow.from_spec(spec)`` turns a policy's ``send_windows`` entry (``window: "08:00-20:00"``,
``days: mon-fri``) into a rule, and ``next_open(now, zone)`` answers for one time zone: ``None``
when the window is open now, else the (UTC) start of its next slot. Contacts are grouped by
zone, so a chunk of thousands of customers costs one answer per distinct zone.

The customer's zone (``customer_zones``): the ``timezone`` column of the customer table when it
has one and the value is a known IANA name; else the ``country`` column (ISO 3166 alpha-2
code) when all the country's zones in the time zone database (``zone.tab``) keep one clock (``DE`` ->
Europe/Berlin; a country whose zones differ, such as ``US`` or ``ES`` with the Canaries, gets the
campaign's zone: give those customers a ``timezone``); else the campaign's zone (the policy's
``timezone``, default UTC).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.rules.policy_spec import WEEKDAYS, PolicySpec, SendWindowSpec

__all__ = ["COUNTRY_COLUMN", "TIMEZONE_COLUMN", "SendWindow", "campaign_zone", "country_zones", "customer_zones"]

TIMEZONE_COLUMN = "timezone"
"""Customer column with the customer's IANA time zone (optional)."""
COUNTRY_COLUMN = "country"
"""Customer column with the customer's ISO 3166 country code (optional; used when there is no time zone)."""


@dataclass(frozen=True)
class SendWindow:
    """Minutes ``start``..``end`` of the local day (end exclusive) on the weekdays ``days`` (0 = Monday)."""

    start: int = 0
    end: int = 24 * 60
    days: frozenset[int] = frozenset(range(7))
    text: str = "any time"

    @classmethod
    def from_spec(cls, spec: SendWindowSpec) -> SendWindow:
        start, end = 0, 24 * 60
        if spec.window:
            first, last = spec.window.split("-")
            start, end = _minutes(first), _minutes(last)
        days = frozenset(WEEKDAYS.index(d) for d in spec.days) if spec.days else frozenset(range(7))
        parts = [spec.window] if spec.window else []
        if spec.days and len(spec.days) < 7:
            parts.append(",".join(spec.days))
        return cls(start, end, days, " ".join(parts) or "any time")

    def is_open(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start <= minute < self.end

    def next_open(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """``None`` when the window is open at ``now`` in ``zone``, else the UTC time its next slot opens."""
        local = now.astimezone(zone)
        if self.is_open(local):
            return None
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens = datetime.combine(day, time(self.start // 60, self.start % 60), tzinfo=zone)
            if opens > local:
                return opens.astimezone(UTC)
        raise AssertionError("a window with at least one weekday opens within 8 days")  # pragma: no cover


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def campaign_zone(policy: PolicySpec | None) -> ZoneInfo:
    """The campaign's zone: the policy's ``timezone``, else UTC."""
    return ZoneInfo(policy.timezone) if policy is not None and policy.timezone else ZoneInfo("UTC")


@cache
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@cache
def country_zones() -> Mapping[str, str]:
    """ISO country code -> its zone (the first in ``zone.tab``), for the countries whose zones all keep one clock."""
    try:
        text = (resources.files("tzdata") / "zoneinfo" / "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        text = Path("/usr/share/zoneinfo/zone.tab").read_text(encoding="utf-8")
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            fields = line.split("\t")
            zones.setdefault(fields[0].upper(), []).append(fields[2])
    return {country: names[0] for country, names in zones.items() if _same_clock(names)}


def _same_clock(names: list[str]) -> bool:
    """Whether the zones keep the same UTC offsets in winter and summer (Europe/Berlin, Europe/Busingen: yes)."""
    instants = (datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC))
    offsets = set()
    for name in names:
        zone = _zone(name)
        if zone is None:
            return False
        offsets.add(tuple(instant.astimezone(zone).utcoffset() for instant in instants))
    return len(offsets) == 1


def customer_zones(rows: Sequence[Mapping[str, object]], default: ZoneInfo) -> list[ZoneInfo]:
    """The time zone of each customer row: its ``timezone``, else its country's single zone, else ``default``."""
    countries = country_zones()
    out: list[ZoneInfo] = []
    for row in rows:
        zone: ZoneInfo | None = None
        name = row.get(TIMEZONE_COLUMN)
        if isinstance(name, str) and name:
            zone = _zone(name)
        if zone is None:
            country = row.get(COUNTRY_COLUMN)
            if isinstance(country, str) and country.strip().upper() in countries:
                zone = _zone(countries[country.strip().upper()])
        out.append(zone or default)
    return out


def waiting_until(window: SendWindow, zones: Iterable[ZoneInfo], now: datetime) -> list[datetime | None]:
    """Per contact: ``None`` (send now) or when its window opens, computed once per distinct zone."""
    answers: dict[str, datetime | None] = {}
    out: list[datetime | None] = []
    for zone in zones:
        key = zone.key
        if key not in answers:
            answers[key] = window.next_open(now, zone)
        out.append(answers[key])
    return out
