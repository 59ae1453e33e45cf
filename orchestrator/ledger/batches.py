"""Webhook batches in the ledger: fixed before the first try, delivered exactly once.

A task list sent to a channel system is a row of ``dispatch_batches``. Its contacts are
assigned to it (``contacts.batch_id``) in ONE transaction before anything is POSTed, and
its ``webhook_id`` is generated once and stored, so every try and every later run sends
the same batch under the same id. The receiver treats a repeated ``webhook-id`` as a
redelivery (Standard Webhooks), so a run killed after the receiver accepted a batch but
before the ledger knew it resends a batch the receiver already has, which it ignores:
every task arrives exactly once.

When the receiver answers 2xx, the batch becomes ``delivered`` and its contacts ``sent`` in
one transaction. A permanent rejection (4xx other than 429) makes the batch ``dead``: the
dead-letter store, listed by ``campaign dlq list``; its contacts are ``failed`` with the
reason until ``campaign dlq retry`` reopens it. Transient failures (timeouts, 5xx, 429
after all retries) leave it ``open`` for the next run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

import sqlalchemy as sa

from orchestrator.db.tables import BatchStatus, Campaign, Contact, ContactStatus, DispatchBatch, Wave, table_of, utcnow
from orchestrator.ledger import contacts as ledger

batches = table_of(DispatchBatch)
contacts = table_of(Contact)
waves = table_of(Wave)
campaigns = table_of(Campaign)

DEAD_LETTER = "dead letter: "


@dataclass(frozen=True, slots=True)
class BatchRef:
    id: int
    webhook_id: str
    assignee: str | None
    size: int


def assign_batches(
    engine: sa.Engine, wave_id: int, channel: str, endpoint: str, batch_size: int, *, per_assignee: bool = False
) -> int:
    """Put the wave's pending, unbatched contacts of ``channel`` into new batches; returns how many batches.

    ``per_assignee`` keeps each batch to one rep (visit lists). Best expected value first.
    All in one transaction: a crash leaves either no new batches or all of them.
    """
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(contacts.c.id, contacts.c.assignee)
            .where(
                contacts.c.wave_id == wave_id,
                contacts.c.channel == channel,
                contacts.c.status == ContactStatus.PENDING,
                contacts.c.batch_id.is_(None),
            )
            .order_by(
                contacts.c.assignee if per_assignee else sa.literal(0),
                sa.func.coalesce(contacts.c.expected_value, 0).desc(),
                contacts.c.id,
            )
        ).all()
        if not rows:
            return 0
        seq = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(batches.c.seq), 0)).where(
                batches.c.wave_id == wave_id, batches.c.channel == channel
            )
        ).scalar_one()
        now = utcnow()
        planned: list[tuple[str, str | None, list[int]]] = []
        groups = groupby(rows, key=lambda r: r.assignee) if per_assignee else [(None, rows)]
        for assignee, group in groups:
            ids = [r.id for r in group]
            for start in range(0, len(ids), batch_size):
                planned.append((f"msg_{uuid.uuid4().hex}", assignee, ids[start : start + batch_size]))
        conn.execute(
            batches.insert(),
            [
                {
                    "wave_id": wave_id,
                    "channel": channel,
                    "endpoint": endpoint,
                    "assignee": assignee,
                    "seq": seq + i + 1,
                    "webhook_id": webhook_id,
                    "size": len(ids),
                    "status": BatchStatus.OPEN,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, (webhook_id, assignee, ids) in enumerate(planned)
            ],
        )
        id_of = _ids_by_webhook(conn, wave_id, channel)
        conn.execute(
            contacts.update().where(contacts.c.id == sa.bindparam("cid")).values(batch_id=sa.bindparam("bid")),
            [{"cid": cid, "bid": id_of[webhook_id]} for webhook_id, _a, ids in planned for cid in ids],
        )
    return len(planned)


def _ids_by_webhook(conn: sa.Connection, wave_id: int, channel: str) -> dict[str, int]:
    rows = conn.execute(
        sa.select(batches.c.webhook_id, batches.c.id).where(batches.c.wave_id == wave_id, batches.c.channel == channel)
    )
    return {webhook_id: batch_id for webhook_id, batch_id in rows}


def open_batches(engine: sa.Engine, wave_id: int, channel: str) -> list[BatchRef]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(batches.c.id, batches.c.webhook_id, batches.c.assignee, batches.c.size)
            .where(batches.c.wave_id == wave_id, batches.c.channel == channel, batches.c.status == BatchStatus.OPEN)
            .order_by(batches.c.seq)
        ).all()
    return [BatchRef(*row) for row in rows]


def batch_rows(engine: sa.Engine, batch_id: int, customer_table: sa.Table) -> ledger.ContactChunk:
    """The batch's pending contacts joined with their customer rows, in contact order."""
    query = (
        ledger.contact_rows(customer_table)
        .where(contacts.c.batch_id == batch_id, contacts.c.status == ContactStatus.PENDING)
        .order_by(contacts.c.id)
    )
    with engine.connect() as conn:
        return ledger.contact_chunk(conn.execute(query))


def mark_delivered(
    engine: sa.Engine, batch_id: int, outcomes: Iterable[ledger.Outcome], channel: str, http_status: int | None
) -> None:
    """The receiver accepted the batch: batch delivered, contacts sent (and skipped ones skipped), at once."""
    _finish(engine, batch_id, BatchStatus.DELIVERED, list(outcomes), channel, http_status, None)


def mark_dead(
    engine: sa.Engine,
    batch_id: int,
    outcomes: Iterable[ledger.Outcome],
    channel: str,
    http_status: int | None,
    reason: str,
) -> None:
    """The receiver rejected the batch for good: into the dead-letter store, contacts failed with the reason."""
    outcomes = [
        ledger.Outcome(o.contact_id, "permanent", DEAD_LETTER + reason, o.message_id) if o.outcome != "skipped" else o
        for o in outcomes
    ]
    _finish(engine, batch_id, BatchStatus.DEAD, outcomes, channel, http_status, reason)


def mark_transient(engine: sa.Engine, batch_id: int, reason: str) -> None:
    """A run could not deliver the batch (receiver down, timeouts): it stays open, the reason is kept."""
    with engine.begin() as conn:
        conn.execute(
            batches.update()
            .where(batches.c.id == batch_id)
            .values(attempts=batches.c.attempts + 1, detail=reason, updated_at=utcnow())
        )


def _finish(engine, batch_id, status, outcomes: list[ledger.Outcome], channel, http_status, detail) -> None:
    now = utcnow()
    with engine.begin() as conn:
        changed = conn.execute(
            batches.update()
            .where(batches.c.id == batch_id, batches.c.status == BatchStatus.OPEN)
            .values(
                status=status,
                http_status=http_status,
                detail=detail,
                attempts=batches.c.attempts + 1,
                updated_at=now,
                delivered_at=now if status == BatchStatus.DELIVERED else None,
            )
        ).rowcount
        if changed:
            ledger.mark_results_in(conn, outcomes, channel)


# --- dead-letter store -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    batch_id: int
    campaign: str
    wave: str
    wave_id: int
    channel: str
    endpoint: str
    assignee: str | None
    size: int
    http_status: int | None
    reason: str | None
    at: object


def dead_letters(engine: sa.Engine, *, campaign: str | None = None) -> list[DeadLetter]:
    query = (
        sa.select(
            batches.c.id,
            campaigns.c.name,
            waves.c.key,
            waves.c.id,
            batches.c.channel,
            batches.c.endpoint,
            batches.c.assignee,
            batches.c.size,
            batches.c.http_status,
            batches.c.detail,
            batches.c.updated_at,
        )
        .join_from(batches, waves, waves.c.id == batches.c.wave_id)
        .join(campaigns, campaigns.c.id == waves.c.campaign_id)
        .where(batches.c.status == BatchStatus.DEAD)
        .order_by(batches.c.id)
    )
    if campaign is not None:
        query = query.where(campaigns.c.name == campaign)
    with engine.connect() as conn:
        return [DeadLetter(*row) for row in conn.execute(query)]


def reopen(engine: sa.Engine, batch_ids: Sequence[int]) -> int:
    """Put dead batches back to ``open`` and their dead-lettered contacts back to ``pending``."""
    if not batch_ids:
        return 0
    now = utcnow()
    with engine.begin() as conn:
        n = conn.execute(
            batches.update()
            .where(batches.c.id.in_(list(batch_ids)), batches.c.status == BatchStatus.DEAD)
            .values(status=BatchStatus.OPEN, updated_at=now)
        ).rowcount
        conn.execute(
            contacts.update()
            .where(
                contacts.c.batch_id.in_(list(batch_ids)),
                contacts.c.status == ContactStatus.FAILED,
                contacts.c.detail.like(DEAD_LETTER + "%"),
            )
            .values(status=ContactStatus.PENDING, updated_at=now)
        )
    return n


def batch_counts(engine: sa.Engine, wave_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(batches.c.status, sa.func.count()).where(batches.c.wave_id == wave_id).group_by(batches.c.status)
        ).all()
    counts = {s.value: 0 for s in BatchStatus}
    counts.update({status: n for status, n in rows})
    return counts
