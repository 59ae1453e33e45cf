"""Dispatching a wave's task channels (call center, field force, webhook): the ledger drives it.

``dispatch_channel`` first fixes the batches of every pending contact of the channel
(``batches.assign_batches``, one transaction), then delivers every open batch: it renders
the batch's tasks, POSTs them through the channel adapter with the batch's stored
``webhook_id`` as ``batch_key`` (several batches in flight, ``webhooks.concurrency``), and
records the outcome of each batch in one transaction (``batches.mark_*``). Only this
thread writes to the database; the POSTs run in a thread pool.

A killed run loses nothing and sends nothing twice: batches and their contacts are fixed
before the first POST, a batch is re-sent under the same ``webhook-id`` until the ledger
knows it was accepted, and the receiver ignores a ``webhook-id`` it already has.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import sqlalchemy as sa

from channels.base import Channel, DeliveryError, DeliveryResult, PermanentDeliveryError, TransientDeliveryError
from orchestrator.delivery.tasks import TaskBuilder
from orchestrator.execution.progress import Advance
from orchestrator.ledger import batches
from orchestrator.ledger import contacts as ledger
from orchestrator.rules.kinds import channel_kind


@dataclass
class DispatchResult:
    sent: int = 0
    skipped: int = 0
    dead_batches: int = 0
    delivered_batches: int = 0
    failure: str | None = None  # why the run stopped early (receiver unreachable), if it did
    dead_reasons: list[str] = field(default_factory=list)


def _no_progress(n: int = 1, failed: int = 0) -> None:
    """The ``advance`` when nobody watches."""


def dispatch_channel(
    engine: sa.Engine,
    customer_table: sa.Table,
    wave_id: int,
    channel_name: str,
    endpoint: str,
    builder: TaskBuilder,
    channel: Channel,
    *,
    batch_size: int,
    concurrency: int = 4,
    advance: Advance = _no_progress,
) -> DispatchResult:
    """Deliver every pending contact of ``channel_name`` in the wave; see the module docstring."""
    per_assignee = channel_kind(channel_name).per_assignee
    batches.assign_batches(engine, wave_id, channel_name, endpoint, batch_size, per_assignee=per_assignee)
    todo = batches.open_batches(engine, wave_id, channel_name)
    return deliver_batches(
        engine, customer_table, channel_name, todo, builder, channel, concurrency=concurrency, advance=advance
    )


def deliver_batches(
    engine: sa.Engine,
    customer_table: sa.Table,
    channel_name: str,
    todo: Iterable[batches.BatchRef],
    builder: TaskBuilder,
    channel: Channel,
    *,
    concurrency: int = 4,
    advance: Advance = _no_progress,
) -> DispatchResult:
    """Deliver batches fixed before (``batches.assign_batches``), ``concurrency`` in flight at once."""
    result = DispatchResult()
    in_flight: dict[Future, tuple[batches.BatchRef, list[ledger.Outcome]]] = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix=f"dispatch-{channel_name}") as pool:
        queue = iter(todo)
        while True:
            while result.failure is None and len(in_flight) < concurrency:
                batch = next(queue, None)
                if batch is None:
                    break
                rows = batches.batch_rows(engine, batch.id, customer_table)
                tasks, skipped = builder.build(rows)
                if not tasks:  # nothing left to send in it (all skipped): close it without a POST
                    batches.mark_delivered(engine, batch.id, skipped, channel_name, None)
                    result.skipped += len(skipped)
                    advance(len(skipped), failed=len(skipped))
                    continue
                future = pool.submit(_post, channel, tasks, batch.webhook_id)
                in_flight[future] = (batch, skipped)
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                batch, skipped = in_flight.pop(future)
                dead_before = result.dead_batches
                _record(engine, channel_name, batch, skipped, future, result)
                # a dead-lettered batch failed as a whole; a transient one stays pending (retried)
                advance(batch.size, failed=batch.size if result.dead_batches > dead_before else len(skipped))
    return result


def _post(channel: Channel, tasks, batch_key: str) -> list[DeliveryResult]:
    return list(channel.send(tasks, batch_key=batch_key).results)


def _record(
    engine, channel_name: str, batch: batches.BatchRef, skipped, future: Future, result: DispatchResult
) -> None:
    try:
        results: list[DeliveryResult] = future.result()
    except TransientDeliveryError as exc:
        batches.mark_transient(engine, batch.id, str(exc))
        result.failure = result.failure or str(exc)
        return
    except PermanentDeliveryError as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        skipped_ids = {o.contact_id for o in skipped}
        outcomes = [o for o in _contacts(engine, batch.id) if o.contact_id not in skipped_ids] + skipped
        batches.mark_dead(engine, batch.id, outcomes, channel_name, getattr(exc, "status", None), reason)
        result.dead_batches += 1
        result.dead_reasons.append(reason)
        return
    except DeliveryError as exc:  # pragma: no cover - every adapter raises one of the two above
        batches.mark_transient(engine, batch.id, str(exc))
        result.failure = result.failure or str(exc)
        return
    outcomes = [ledger.Outcome(r.contact_id, r.outcome, r.detail, r.provider_id) for r in results]
    if any(r.outcome == "permanent" for r in results):
        failed = next(r for r in results if r.outcome == "permanent")
        status, reason = failed.http_status, failed.reason or failed.detail or "rejected"
        batches.mark_dead(engine, batch.id, outcomes + skipped, channel_name, status, reason)
        result.dead_batches += 1
        result.dead_reasons.append(reason)
    elif any(r.outcome == "transient" for r in results):
        reason = next(r.detail for r in results if r.outcome == "transient") or "transient failure"
        batches.mark_transient(engine, batch.id, reason)
        result.failure = result.failure or reason
    else:
        batches.mark_delivered(engine, batch.id, outcomes + skipped, channel_name, None)
        result.delivered_batches += 1
        result.sent += len(results)
        result.skipped += len(skipped)


def _contacts(engine: sa.Engine, batch_id: int) -> list[ledger.Outcome]:
    with engine.connect() as conn:
        ids = conn.execute(
            sa.select(batches.contacts.c.id).where(
                batches.contacts.c.batch_id == batch_id, batches.contacts.c.status == "pending"
            )
        ).scalars()
        return [ledger.Outcome(cid, "permanent") for cid in ids]
