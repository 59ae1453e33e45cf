"""The contact ledger: campaigns, waves and one row per (wave, customer).

Contract:

* ``record_contacts`` writes a wave's treatment and control contacts in bulk, in ONE
  transaction, before anything is sent; a wave is recorded once (re-recording is a no-op).
* ``record_contacts`` takes the wave's ``ContactFrame`` (``orchestrator.targeting.frame``):
  customer, arm, variant, channel, assignee, score and expected value as equal-length columns.
* ``pending_contacts`` streams the treated contacts still to send in ``ContactChunk``s (keyset
  paging, joined with the customer table), so a resumed wave continues with exactly the unsent
  ones.
* ``mark_results`` writes a chunk's outcomes in bulk: contact status plus one delivery
  attempt row per try. Statuses only move forward: a ``sent`` contact never goes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from orchestrator.customers.table import ID_COLUMN
from orchestrator.db.bulk import bulk_insert, bulk_insert_arrow, raw_timestamp
from orchestrator.db.tables import (
    ArbitrationLoss,
    Arm,
    Campaign,
    Contact,
    ContactStatus,
    DeliveryAttempt,
    Wave,
    WaveStatus,
    table_of,
    utcnow,
)
from orchestrator.targeting.frame import ContactFrame

if TYPE_CHECKING:
    import pyarrow as pa

campaigns = table_of(Campaign)
waves = table_of(Wave)
contacts = table_of(Contact)
attempts = table_of(DeliveryAttempt)


@dataclass(frozen=True, slots=True)
class WaveRef:
    id: int
    campaign_id: int
    key: str
    status: str
    rules_sha256: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one contact in one try: ``sent``, ``transient``, ``permanent`` or ``skipped``."""

    contact_id: int
    outcome: str
    detail: str | None = None
    message_id: str | None = None


def ensure_campaign(engine: sa.Engine, name: str, description: str | None) -> int:
    """The id of campaign ``name``, created on first use (description kept up to date)."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(campaigns.c.id).where(campaigns.c.name == name)).first()
        if row is not None:
            conn.execute(campaigns.update().where(campaigns.c.id == row.id).values(description=description))
            return row.id
        return conn.execute(
            campaigns.insert().values(name=name, description=description, created_at=utcnow()).returning(campaigns.c.id)
        ).scalar_one()


def find_wave(engine: sa.Engine, campaign_id: int, key: str) -> WaveRef | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(waves.c.id, waves.c.campaign_id, waves.c.key, waves.c.status, waves.c.rules_sha256).where(
                waves.c.campaign_id == campaign_id, waves.c.key == key
            )
        ).first()
    return WaveRef(*row) if row else None


def wave_named(engine: sa.Engine, campaign: str, key: str) -> WaveRef | None:
    """The wave ``key`` of the campaign named ``campaign``, if it was opened."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(waves.c.id, waves.c.campaign_id, waves.c.key, waves.c.status, waves.c.rules_sha256)
            .join(campaigns, campaigns.c.id == waves.c.campaign_id)
            .where(campaigns.c.name == campaign, waves.c.key == key)
        ).first()
    return WaveRef(*row) if row else None


def open_wave(engine: sa.Engine, campaign_id: int, key: str, rules_sha256: str) -> WaveRef:
    """The wave ``key`` of a campaign, created in status ``selecting`` if it does not exist."""
    existing = find_wave(engine, campaign_id, key)
    if existing is not None:
        return existing
    try:
        with engine.begin() as conn:
            conn.execute(
                waves.insert().values(
                    campaign_id=campaign_id,
                    key=key,
                    status=WaveStatus.SELECTING,
                    rules_sha256=rules_sha256,
                    selected=0,
                    control=0,
                    created_at=utcnow(),
                )
            )
    except sa.exc.IntegrityError:  # created concurrently: use that one
        pass
    wave = find_wave(engine, campaign_id, key)
    assert wave is not None
    return wave


def record_contacts(
    engine: sa.Engine,
    wave_id: int,
    frame: ContactFrame,
    *,
    planned_for: date | None = None,
    before_commit: Callable[[], object] | None = None,
) -> tuple[int, int]:
    """Write the wave's contacts in one transaction; returns (treated, held out) counts.

    ``frame`` holds one contact per customer: treated contacts start ``pending``, the others
    ``control``; channel, assignee (rep or endpoint), expected value and the arm and channel
    propensities come from allocation (its ``pool`` is not recorded). ``planned_for`` is the
    day whose channel capacity the contacts use. Does nothing (and returns the recorded counts)
    when the wave was recorded before. ``before_commit`` is called once the rows are written, inside
    the transaction: if it raises, nothing is recorded.
    """
    with engine.begin() as conn:
        # the wave row, locked until the commit: the ledger has no foreign key to waves (migration 0011_17),
        # so this is what keeps every contact's wave there; a concurrent recording of the wave waits here
        wave = conn.execute(
            sa.select(waves.c.status, waves.c.selected, waves.c.control).where(waves.c.id == wave_id).with_for_update()
        ).first()
        if wave is None:
            raise ValueError(f"There is no wave {wave_id} to record contacts of. Open it first with open_wave.")
        if wave.status not in (WaveStatus.SELECTING, WaveStatus.FAILED):
            return wave.selected - wave.control, wave.control
        now = raw_timestamp(conn, utcnow())
        day = (
            None if planned_for is None else (planned_for.isoformat() if conn.dialect.name == "sqlite" else planned_for)
        )
        treated = frame.treated
        n_held_out = len(frame) - int(np.count_nonzero(treated))

        def rows():
            for cid, arm, is_treated, variant, ch, score, value, p_arm, p_channel, assignee, eligible in zip(
                frame.customer_id.tolist(),
                frame.arm.tolist(),
                treated.tolist(),
                frame.variant.tolist(),
                frame.channel.tolist(),
                _floats(frame.score),
                _floats(frame.expected_value),
                _floats(frame.arm_propensity),
                _floats(frame.channel_propensity),
                frame.assignee.tolist(),
                frame.eligible.tolist(),
                strict=True,
            ):
                status = ContactStatus.PENDING if is_treated else ContactStatus.CONTROL
                yield (
                    wave_id,
                    cid,
                    str(arm),
                    variant,
                    ch,
                    score,
                    value,
                    p_arm,
                    p_channel,
                    eligible,
                    assignee,
                    day,
                    status,
                    0,
                    now,
                    now,
                )

        columns = [
            "wave_id",
            "customer_id",
            "arm",
            "variant",
            "channel",
            "score",
            "expected_value",
            "arm_propensity",
            "channel_propensity",
            "eligible_channels",
            "assignee",
            "planned_for",
            "status",
            "attempts",
            "created_at",
            "updated_at",
        ]
        if conn.dialect.name == "postgresql":  # COPY of the columns as CSV written by pyarrow: no Python per row;
            # the times left to the database's default, the transaction's time (parsing them was 0.17 s a wave)
            table = _ledger_table(frame, wave_id, planned_for)
            assert table.column_names == columns[: -len(_TIMES)], "the Arrow rows must have the columns of rows()"
            total = bulk_insert_arrow(conn, contacts.name, table)
        else:
            total = bulk_insert(conn, contacts.name, columns, rows())
        if before_commit is not None:
            before_commit()
        conn.execute(
            waves.update()
            .where(waves.c.id == wave_id)
            .values(status=WaveStatus.RECORDED, selected=total, control=n_held_out, recorded_at=utcnow())
        )
    return total - n_held_out, n_held_out


_TIMES = ("created_at", "updated_at")  # the last columns of ``rows()``; the COPY leaves them to the database


def _ledger_table(frame: ContactFrame, wave_id: int, planned_for: date | None) -> pa.Table:
    """The contact rows ``record_contacts`` writes, as an Arrow table (NaN and None become NULL), without the
    times (``_TIMES``)."""
    import pyarrow as pa

    n = len(frame)
    day = (
        pa.nulls(n, pa.date32())
        if planned_for is None
        else pa.array(np.full(n, np.datetime64(planned_for, "D")), type=pa.date32())
    )

    def text(values: np.ndarray) -> pa.Array:
        return pa.array(values, type=pa.string(), from_pandas=True)

    def number(values: np.ndarray) -> pa.Array:
        return pa.array(np.asarray(values, dtype=np.float64), type=pa.float64(), from_pandas=True)

    return pa.table(
        {
            "wave_id": pa.array(np.full(n, wave_id, dtype=np.int64)),
            "customer_id": text(frame.customer_id),
            "arm": text(frame.arm.astype(str)),
            "variant": text(frame.variant),
            "channel": text(frame.channel),
            "score": number(frame.score),
            "expected_value": number(frame.expected_value),
            "arm_propensity": number(frame.arm_propensity),
            "channel_propensity": number(frame.channel_propensity),
            "eligible_channels": text(frame.eligible),
            "assignee": text(frame.assignee),
            "planned_for": day,
            "status": text(np.where(frame.treated, ContactStatus.PENDING.value, ContactStatus.CONTROL.value)),
            "attempts": pa.array(np.zeros(n, dtype=np.int64)),
        }
    )


def _floats(values: np.ndarray) -> list[float | None]:
    """Python floats for the database, None for NaN."""
    return [None if v != v else v for v in values.astype(float).tolist()]


@dataclass(frozen=True, eq=False)
class ContactChunk:
    """Contacts handed to the message and task builders: customer rows plus the contact fields, in parallel.

    ``customers`` hold exactly the customer table's columns (what templates see);
    ``contact_ids`` are ledger ids (0 where nothing is recorded yet: render checks and
    previews), ``variants`` the A/B variant (or None) and ``assignees`` the rep or endpoint
    (or None) of each contact.
    """

    customers: list[dict[str, Any]]
    contact_ids: list[int]
    variants: list[str | None]
    assignees: list[str | None]

    def __post_init__(self) -> None:
        n = len(self.customers)
        columns: dict[str, Sequence[object]] = {
            "contact_ids": self.contact_ids,
            "variants": self.variants,
            "assignees": self.assignees,
        }
        wrong = {k: len(v) for k, v in columns.items() if len(v) != n}
        if wrong:
            got = ", ".join(f"{k}: {v}" for k, v in wrong.items())
            raise ValueError(f"A ContactChunk needs one value per customer row ({n}). Got {got}.")

    def __len__(self) -> int:
        return len(self.customers)

    def slices(self, size: int) -> Iterator[ContactChunk]:
        """The chunk in consecutive parts of at most ``size`` contacts (itself when it is no larger)."""
        if len(self) <= size:
            yield self
            return
        for start in range(0, len(self), size):
            end = start + size
            yield ContactChunk(
                self.customers[start:end],
                self.contact_ids[start:end],
                self.variants[start:end],
                self.assignees[start:end],
            )

    @classmethod
    def unrecorded(cls, customers: list[dict[str, Any]], variants: Sequence[str | None]) -> ContactChunk:
        """Customers not in the ledger yet (contact id 0, no assignee), e.g. to check or preview rendering."""
        return cls(customers, [0] * len(customers), list(variants), [None] * len(customers))


_CONTACT_FIELDS = 3  # contact id, variant, assignee: the first columns of ``contact_rows``


def contact_rows(customer_table: sa.Table) -> sa.Select:
    """Contacts joined with their customer row: contact id, variant and assignee, then the customer columns.

    Read its results with ``contact_chunk``.
    """
    return sa.select(
        contacts.c.id.label("contact_id_"),
        contacts.c.variant.label("variant_"),
        contacts.c.assignee.label("assignee_"),
        *customer_table.c,
    ).join_from(contacts, customer_table, customer_table.c[ID_COLUMN] == contacts.c.customer_id, isouter=True)


def contact_chunk(result: sa.CursorResult) -> ContactChunk:
    """The rows of a ``contact_rows`` query as one ``ContactChunk``."""
    keys = list(result.keys())[_CONTACT_FIELDS:]
    rows = result.all()
    return ContactChunk(
        customers=[dict(zip(keys, row[_CONTACT_FIELDS:], strict=True)) for row in rows],
        contact_ids=[row[0] for row in rows],
        variants=[row[1] for row in rows],
        assignees=[row[2] for row in rows],
    )


def pending_contacts(
    engine: sa.Engine,
    wave_id: int,
    customer_table: sa.Table,
    chunk_size: int,
    *,
    channel: str | None = None,
    id_range: tuple[int, int] | None = None,
) -> Iterator[ContactChunk]:
    """Chunks of pending treated contacts (of ``channel``, if given) joined with their customer row.

    Keyset paging by contact id, so contacts marked while iterating are not skipped or repeated.
    ``id_range`` (inclusive) limits it to the contacts of one chunk task.
    """
    last_id = 0 if id_range is None else id_range[0] - 1
    while True:
        query = (
            contact_rows(customer_table)
            .where(contacts.c.wave_id == wave_id, contacts.c.status == ContactStatus.PENDING, contacts.c.id > last_id)
            .order_by(contacts.c.id)
            .limit(chunk_size)
        )
        if channel is not None:
            query = query.where(contacts.c.channel == channel)
        if id_range is not None:
            query = query.where(contacts.c.id <= id_range[1])
        with engine.connect() as conn:
            chunk = contact_chunk(conn.execute(query))
        if not len(chunk):
            return
        last_id = chunk.contact_ids[-1]
        yield chunk


def mark_results(engine: sa.Engine, outcomes: Iterable[Outcome], channel: str) -> dict[str, int]:
    """Record one try per outcome and move contact statuses forward, in bulk."""
    outcomes = list(outcomes)
    if not outcomes:
        return {}
    with engine.begin() as conn:
        return mark_results_in(conn, outcomes, channel)


def mark_results_in(conn: sa.Connection, outcomes: Sequence[Outcome], channel: str) -> dict[str, int]:
    """``mark_results`` inside the caller's transaction."""
    if not outcomes:
        return {}
    now = utcnow()
    by_status: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_status.setdefault(o.outcome, []).append(o)
    bulk_insert(
        conn,
        attempts.name,
        ["contact_id", "channel", "outcome", "detail", "at"],
        ((o.contact_id, channel, o.outcome, o.detail, raw_timestamp(conn, now)) for o in outcomes),
    )
    pending_only = contacts.c.status == ContactStatus.PENDING
    sent = by_status.get("sent", [])
    if sent:
        conn.execute(
            contacts.update()
            .where(contacts.c.id == sa.bindparam("cid"), pending_only)
            .values(
                status=ContactStatus.SENT,
                message_id=sa.bindparam("mid"),
                attempts=contacts.c.attempts + 1,
                sent_at=now,
                updated_at=now,
                detail=None,
            ),
            [{"cid": o.contact_id, "mid": o.message_id} for o in sent],
        )
    for outcome, status in (("permanent", ContactStatus.FAILED), ("skipped", ContactStatus.SKIPPED)):
        items = by_status.get(outcome, [])
        if items:
            conn.execute(
                contacts.update()
                .where(contacts.c.id == sa.bindparam("cid"), pending_only)
                .values(status=status, detail=sa.bindparam("why"), attempts=contacts.c.attempts + 1, updated_at=now),
                [{"cid": o.contact_id, "why": o.detail} for o in items],
            )
    transient = by_status.get("transient", [])
    if transient:  # stays pending; the try and its reason are kept
        conn.execute(
            contacts.update()
            .where(contacts.c.id == sa.bindparam("cid"), pending_only)
            .values(detail=sa.bindparam("why"), attempts=contacts.c.attempts + 1, updated_at=now),
            [{"cid": o.contact_id, "why": o.detail} for o in transient],
        )
    return {k: len(v) for k, v in by_status.items()}


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def mark_waiting(engine: sa.Engine, waits: Sequence[tuple[int, datetime]], detail: str) -> None:
    """Pending contacts ``(contact_id, send_after)`` wait for their send window: they stay pending, with the time
    their next slot opens and ``detail`` (e.g. ``"waiting for the email window 08:00-20:00"``)."""
    if not waits:
        return
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            contacts.update()
            .where(contacts.c.id == sa.bindparam("cid"), contacts.c.status == ContactStatus.PENDING)
            .values(send_after=sa.bindparam("after"), detail=detail, updated_at=now),
            [{"cid": cid, "after": _utc(after)} for cid, after in waits],
        )


def mark_channel_waiting(engine: sa.Engine, wave_id: int, channel: str, send_after: datetime, detail: str) -> int:
    """Every pending contact of the wave on ``channel`` waits until ``send_after`` (one statement); returns how many."""
    with engine.begin() as conn:
        return conn.execute(
            contacts.update()
            .where(
                contacts.c.wave_id == wave_id,
                contacts.c.channel == channel,
                contacts.c.status == ContactStatus.PENDING,
            )
            .values(send_after=_utc(send_after), detail=detail, updated_at=utcnow())
        ).rowcount


def waiting_counts(engine: sa.Engine, wave_id: int, now: datetime) -> tuple[int, datetime | None]:
    """Pending contacts of the wave whose send window opens after ``now``, and the earliest such opening (UTC)."""
    with engine.connect() as conn:
        count, first = conn.execute(
            sa.select(sa.func.count(), sa.func.min(contacts.c.send_after)).where(
                contacts.c.wave_id == wave_id,
                contacts.c.status == ContactStatus.PENDING,
                contacts.c.send_after > _utc(now),
            )
        ).one()
    return count, (_utc(first) if first is not None else None)


def set_wave_status(engine: sa.Engine, wave_id: int, status: WaveStatus) -> None:
    values: dict = {"status": status}
    if status in (WaveStatus.COMPLETED, WaveStatus.INCOMPLETE):
        values["finished_at"] = utcnow()
    with engine.begin() as conn:
        conn.execute(waves.update().where(waves.c.id == wave_id).values(**values))


def fail_unrecorded(engine: sa.Engine, wave_id: int) -> bool:
    """Mark a wave whose run stopped before its ledger was written ``failed`` (only from ``selecting``); True if so.

    Nothing of it was recorded; the next run of the wave selects it afresh.
    """
    with engine.begin() as conn:
        done = conn.execute(
            waves.update()
            .where(waves.c.id == wave_id, waves.c.status == WaveStatus.SELECTING)
            .values(status=WaveStatus.FAILED, finished_at=utcnow())
        )
    return bool(done.rowcount)


def wave_status(engine: sa.Engine, wave_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(waves.c.status).where(waves.c.id == wave_id)).scalar_one()


def arm_counts(engine: sa.Engine, wave_id: int) -> dict[str, int]:
    """Contacts of a wave per arm (``treatment``, ``control``, ``global_control``)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(contacts.c.arm, sa.func.count()).where(contacts.c.wave_id == wave_id).group_by(contacts.c.arm)
        ).all()
    counts = {arm.value: 0 for arm in Arm}
    counts.update({arm: n for arm, n in rows})
    return counts


def wave_counts(engine: sa.Engine, wave_id: int) -> dict[str, int]:
    """Contacts of a wave per status (``pending``, ``sent``, ``failed``, ``skipped``, ``control``)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(contacts.c.status, sa.func.count())
            .where(contacts.c.wave_id == wave_id)
            .group_by(contacts.c.status)
        ).all()
    counts = {status.value: 0 for status in ContactStatus}
    counts.update({status: n for status, n in rows})
    return counts


def cycle_customers(engine: sa.Engine, wave_key: str, *, exclude: Sequence[str] = ()) -> dict[str, str]:
    """Customers recorded (treated or control) under ``wave_key`` by campaigns not in ``exclude``.

    Returns customer -> campaign.
    """
    query = (
        sa.select(contacts.c.customer_id, campaigns.c.name)
        .join_from(contacts, waves, waves.c.id == contacts.c.wave_id)
        .join(campaigns, campaigns.c.id == waves.c.campaign_id)
        .where(waves.c.key == wave_key, contacts.c.arm != Arm.GLOBAL_CONTROL.value)
    )
    if exclude:
        query = query.where(campaigns.c.name.not_in(list(exclude)))
    with engine.connect() as conn:
        return {customer: campaign for customer, campaign in conn.execute(query)}


def record_losses(engine: sa.Engine, cycle: str, campaign: str, lost_to: dict[str, int]) -> None:
    """Keep how many customers ``campaign`` lost to each other campaign in ``cycle`` (replacing earlier counts)."""
    losses = table_of(ArbitrationLoss)
    with engine.begin() as conn:
        conn.execute(losses.delete().where(losses.c.cycle == cycle, losses.c.campaign == campaign))
        if lost_to:
            now = utcnow()
            conn.execute(
                losses.insert(),
                [
                    {"cycle": cycle, "campaign": campaign, "lost_to": w, "customers": n, "created_at": now}
                    for w, n in lost_to.items()
                ],
            )


def losses_of(engine: sa.Engine, cycle: str) -> list[tuple[str, str, int]]:
    """``(campaign, lost_to, customers)`` of a cycle."""
    losses = table_of(ArbitrationLoss)
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(losses.c.campaign, losses.c.lost_to, losses.c.customers)
                .where(losses.c.cycle == cycle)
                .order_by(losses.c.campaign, losses.c.lost_to)
            )
        ]


def channel_counts(engine: sa.Engine, wave_id: int) -> dict[str, dict[str, int]]:
    """Treated contacts of a wave per channel and status."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(contacts.c.channel, contacts.c.status, sa.func.count())
            .where(contacts.c.wave_id == wave_id, contacts.c.arm == Arm.TREATMENT.value)
            .group_by(contacts.c.channel, contacts.c.status)
        ).all()
    out: dict[str, dict[str, int]] = {}
    for channel, status, n in rows:
        out.setdefault(channel or "-", {})[status] = n
    return out
