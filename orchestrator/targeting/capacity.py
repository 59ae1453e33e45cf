"""Channel capacities: how many contacts each channel can take per day, shared by all campaigns.

``rules/capacity.yaml`` (optional; a channel it does not mention is unlimited, except the
field force, which needs its reps)::

    call_center:
      tasks_per_day: 2000          # call tasks the call center takes per day
    field_force:
      visits_per_rep_per_day: 6    # visits one sales rep makes per day
      reps: reps.csv               # rep_id, territory[, name][, visits_per_day]; relative to this file
    email:
      per_day: 200000              # optional limit of e-mails per day
    webhook:
      crm: {per_day: 10000}        # per endpoint name

Capacity is per day: contacts of every campaign planned for the wave's date (treated,
pending or sent) use it up, so a second wave on the same day gets what is left. The pools
allocation fills follow each channel kind's ``pool`` (``orchestrator.rules.kinds``): ``email``,
``call_center``, ``field_force:<territory>`` (the reps of a territory together) and
``webhook:<endpoint>``; the ledger's ``assignee`` of a contact is its rep (field force) or
endpoint (webhook).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.db.tables import Arm, Contact, ContactStatus, table_of
from orchestrator.errors import Problem, ValidationFailed
from orchestrator.rules.kinds import channel_kind, kinds
from orchestrator.rules.yaml_source import model_problems, parse_yaml, read_text_file

CAPACITY_FILE = "capacity.yaml"
contacts = table_of(Contact)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DailyLimit(_Spec):
    per_day: int | None = Field(None, strict=True, ge=0, description="Contacts per day; omitted = unlimited.")


class CallCenterCapacity(_Spec):
    tasks_per_day: int = Field(
        strict=True, ge=0, le=10_000_000, description="Call tasks the call center takes per day."
    )


class FieldForceCapacity(_Spec):
    visits_per_rep_per_day: int = Field(strict=True, ge=0, le=1000, description="Visits one rep makes per day.")
    reps: str = Field(min_length=1, description="CSV file of reps: rep_id, territory[, name][, visits_per_day].")


class CapacitySpec(_Spec):
    """The capacity file, validated."""

    email: DailyLimit | None = Field(None, description="Limit of e-mails per day.")
    call_center: CallCenterCapacity | None = Field(None, description="Call center capacity.")
    field_force: FieldForceCapacity | None = Field(None, description="Sales reps and their visits per day.")
    webhook: dict[str, DailyLimit] = Field(default_factory=dict, description="Limits per webhook endpoint name.")


@dataclass(frozen=True, slots=True)
class Rep:
    rep_id: str
    territory: str
    visits_per_day: int
    name: str | None = None


@dataclass(frozen=True)
class Capacity:
    """Capacity file and reps, read and checked; ``None`` fields mean unlimited / no reps."""

    spec: CapacitySpec
    reps: tuple[Rep, ...] = ()
    source: Path | None = None

    def per_day(self, channel: str, endpoint: str | None = None) -> int | None:
        """Daily limit of a channel without territories; ``None`` = unlimited.

        The kind's ``daily_limit`` attribute of the channel's section of the capacity file (of
        the endpoint's entry for per-endpoint pools); a kind the file has no section for is
        unlimited.
        """
        kind = channel_kind(channel)
        if kind.pool == "territory" or kind.daily_limit is None:
            raise ValueError(f"channel {channel!r} has no single daily limit")
        section = getattr(self.spec, channel, None)
        if kind.pool == "endpoint":
            section = (section or {}).get(endpoint or "")
        return None if section is None else getattr(section, kind.daily_limit)

    def reps_by_territory(self) -> dict[str, list[Rep]]:
        out: dict[str, list[Rep]] = {}
        for rep in self.reps:
            out.setdefault(rep.territory, []).append(rep)
        return out


UNLIMITED = Capacity(CapacitySpec())


def load_capacity(rules_dir: Path, channels: Collection[str] | None = None) -> Capacity:
    """``rules_dir/capacity.yaml`` and its reps file; unlimited if the file does not exist.

    With ``channels`` (the channels the campaigns of a wave use) the reps file is read only
    when one of them is a territory channel (the field force): a campaign that does not visit
    needs no reps file. Raises ``ValidationFailed`` naming file, line and field of every problem.
    """
    path = Path(rules_dir) / CAPACITY_FILE
    if not path.exists():
        return UNLIMITED
    text, problems = read_text_file(path, "capacity file")
    spec = None
    if text is not None:
        document, problems = parse_yaml(text, str(path))
        if document is not None:
            data = document.data
            if not isinstance(data, dict):
                problems.append(
                    document.positions.problem((), "the capacity file needs keys such as call_center, field_force")
                )
            else:
                try:
                    spec = CapacitySpec.model_validate(data)
                except ValidationError as exc:
                    problems += model_problems(exc, CapacitySpec, document.positions)
    if problems or spec is None:
        raise ValidationFailed(problems)
    reps: tuple[Rep, ...] = ()
    visits = channels is None or any(channel_kind(name).pool == "territory" for name in channels)
    if spec.field_force is not None and visits:
        reps = tuple(load_reps(path.parent / spec.field_force.reps, spec.field_force.visits_per_rep_per_day))
    return Capacity(spec, reps, path)


REP_COLUMNS = ("rep_id", "territory")


def load_reps(path: Path, default_visits: int) -> list[Rep]:
    """Reps from a CSV file with a header; every bad row is reported with its line number."""
    text, problems = read_text_file(path, "reps file")
    if text is None:
        raise ValidationFailed(problems)
    file = str(path)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REP_COLUMNS if c not in header]
    if missing:
        raise ValidationFailed(
            [
                Problem(
                    file,
                    1,
                    1,
                    f"the reps file needs the columns {', '.join(REP_COLUMNS)}; missing {', '.join(missing)}",
                )
            ]
        )
    reps: list[Rep] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        rep_id, territory = row.get("rep_id", ""), row.get("territory", "")
        if not rep_id or not territory:
            problems.append(Problem(file, line, None, "rep_id and territory must not be empty"))
            continue
        if rep_id in seen:
            problems.append(Problem(file, line, None, f"rep '{rep_id}' is listed twice (first on line {seen[rep_id]})"))
            continue
        seen[rep_id] = line
        visits = default_visits
        if row.get("visits_per_day"):
            try:
                visits = int(row["visits_per_day"])
                if visits < 0:
                    raise ValueError
            except ValueError:
                problems.append(
                    Problem(file, line, None, f"visits_per_day '{row['visits_per_day']}' is not a whole number >= 0")
                )
                continue
        reps.append(Rep(rep_id, territory, visits, row.get("name") or None))
    if problems:
        raise ValidationFailed(problems)
    return reps


# --- what is left today ------------------------------------------------------------------


def used_capacity(engine: sa.Engine, day: date) -> dict[tuple[str, str | None], int]:
    """Treated contacts planned for ``day`` that are pending or sent, by (channel, assignee)."""
    query = (
        sa.select(contacts.c.channel, contacts.c.assignee, sa.func.count())
        .where(
            contacts.c.planned_for == day,
            contacts.c.arm == Arm.TREATMENT.value,
            contacts.c.status.in_([ContactStatus.PENDING, ContactStatus.SENT]),
        )
        .group_by(contacts.c.channel, contacts.c.assignee)
    )
    with engine.connect() as conn:
        return {(channel, assignee): n for channel, assignee, n in conn.execute(query)}


@dataclass(frozen=True)
class Pools:
    """Allocation pools for one day: names, remaining capacity (None = unlimited), reps left."""

    names: list[str]
    capacities: list[int | None]
    rep_room: dict[str, list[tuple[str, int]]]  # territory -> [(rep_id, visits left)] in rep order

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}


def pool_name(channel: str, key: str | None = None) -> str:
    return channel if key is None else f"{channel}:{key}"


def day_pools(
    capacity: Capacity, used: Mapping[tuple[str, str | None], int], endpoints: Sequence[tuple[str, str]] = ()
) -> Pools:
    """The pools of a day with what ``used`` (``used_capacity``) leaves of them.

    Per the channel kinds' ``pool``: one pool per ``"channel"`` kind, one per ``(kind,
    endpoint)`` of ``endpoints`` for ``"endpoint"`` kinds, one per territory of the reps for
    ``"territory"`` kinds (the reps' visits left in ``rep_room``).
    """
    names: list[str] = []
    caps: list[int | None] = []

    def used_by(channel: str) -> int:
        return sum(n for (ch, _a), n in used.items() if ch == channel)

    for kind in kinds():
        if kind.pool == "channel":
            limit = capacity.per_day(kind.name)
            names.append(kind.name)
            caps.append(None if limit is None else max(0, limit - used_by(kind.name)))
    for channel, endpoint in endpoints:
        limit = capacity.per_day(channel, endpoint)
        names.append(pool_name(channel, endpoint))
        caps.append(None if limit is None else max(0, limit - used.get((channel, endpoint), 0)))
    rep_room: dict[str, list[tuple[str, int]]] = {}
    for kind in kinds():
        if kind.pool != "territory":
            continue
        for territory, reps in sorted(capacity.reps_by_territory().items()):
            room = [(r.rep_id, max(0, r.visits_per_day - used.get((kind.name, r.rep_id), 0))) for r in reps]
            rep_room[territory] = room
            names.append(pool_name(kind.name, territory))
            caps.append(sum(n for _rep, n in room))
    return Pools(names, caps, rep_room)
