"""Sending a recorded wave: e-mail through the send journal, task channels through ledger batches.

``send_pending`` delivers every pending contact of a wave on each of its channels, one
process at a time (the journal's lock):

* e-mail: chunks of pending contacts (keyset paging) are rendered and sent; each accepted
  message is journalled before the chunk's bulk ledger update, so a killed run resumes with
  exactly the unsent contacts (``_recover``); hard bounces go to the suppression list;
* call center, field force, webhook: ``orchestrator.dispatch`` fixes the batches in the
  ledger and delivers them under their stored ``webhook-id``.

Contacts that could not be delivered stay pending (``WaveIncomplete``); rejected task lists
go to the dead-letter store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from channels import channel_class
from channels.base import Channel, DeliveryError, DeliveryResult, PermanentDeliveryError
from orchestrator import batches, ledger
from orchestrator.customer_table import ID_COLUMN, customer_table
from orchestrator.database import connect
from orchestrator.dispatch import dispatch_channel
from orchestrator.journal import SendJournal
from orchestrator.models import WaveStatus
from orchestrator.prepared import EMAIL, PreparedWave, message_builder, task_builder
from orchestrator.progress import progress
from orchestrator.settings import Settings
from orchestrator.snapshots import ensure_snapshot
from orchestrator.suppressions import suppress_hard_bounces

CHANNEL = EMAIL


class WaveIncomplete(RuntimeError):
    """Some contacts could not be sent in this run; they stay pending for the next one."""


ChannelFactory = Callable[[Settings, PreparedWave], Channel]
TaskChannelFactory = Callable[[Settings, PreparedWave, str], Channel]


def default_channel(settings: Settings, prepared: PreparedWave) -> Channel:
    email = prepared.spec.channels.email
    return channel_class(CHANNEL)(settings.smtp, sender=email.sender, reply_to=email.reply_to)


def endpoint_key(prepared: PreparedWave, channel: str) -> str:
    """The settings key of the endpoint a task channel posts to: the channel, or the webhook's name."""
    return prepared.spec.channels.webhook.endpoint if channel == "webhook" else channel


def default_task_channel(settings: Settings, prepared: PreparedWave, channel: str) -> Channel:
    key = endpoint_key(prepared, channel)
    endpoint = settings.webhooks.endpoints.get(key)
    if endpoint is None:
        env = f"CAMPAIGN_WEBHOOKS_ENDPOINTS__{key.upper()}"
        raise PermanentDeliveryError(f"no endpoint '{key}' is configured for channel {channel}; set {env}__URL and {env}__SECRET")
    return channel_class(channel)(endpoint, settings.webhooks, name=key)


def journal_path(settings: Settings, wave_id: int) -> Path:
    return settings.paths.data_dir / "journal" / f"wave-{wave_id}.log"


def send_pending(
    settings: Settings,
    prepared: PreparedWave,
    wave: ledger.WaveRef,
    channel_factory: ChannelFactory = default_channel,
    task_channel_factory: TaskChannelFactory = default_task_channel,
) -> int:
    """Send every pending contact of the wave on each of its channels; returns how many were sent in this call.

    Raises ``WaveIncomplete`` when contacts remain pending (channel unreachable, transient
    failures); they are sent by the next run. One process at a time sends a wave (a lock).
    """
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    ensure_snapshot(engine, settings, wave.id)  # a run killed between recording and its snapshot
    ledger.set_wave_status(engine, wave.id, WaveStatus.SENDING)
    sent_now = 0
    failures: list[str] = []
    with SendJournal(journal_path(settings, wave.id)) as journal:
        if prepared.spec.channels.email is not None:
            sent, failure = _send_email(settings, prepared, wave, engine, table, journal, channel_factory)
            sent_now += sent
            if failure:
                failures.append(failure)
        for channel in prepared.spec.channels.names():
            if channel == EMAIL:
                continue
            sent, failure = _dispatch_tasks(settings, prepared, wave, engine, table, channel, task_channel_factory)
            sent_now += sent
            if failure:
                failures.append(failure)
    remaining = ledger.wave_counts(engine, wave.id)["pending"]
    dead = batches.batch_counts(engine, wave.id)["dead"]
    ledger.set_wave_status(engine, wave.id, WaveStatus.INCOMPLETE if remaining or dead else WaveStatus.COMPLETED)
    if remaining or dead:
        reasons = "; ".join(failures) if failures else "transient delivery failures"
        parts = []
        if remaining:
            parts.append(f"{remaining} contact(s) of wave '{wave.key}' are still unsent ({reasons}); they stay pending: run the wave again to send them")
        if dead:
            parts.append(f"{dead} task list(s) were rejected by the receiver: see `campaign dlq list`, fix, then `campaign dlq retry`")
        raise WaveIncomplete("; ".join(parts))
    return sent_now


def _dispatch_tasks(settings, prepared, wave, engine, table, channel: str, factory: TaskChannelFactory) -> tuple[int, str | None]:
    pending = _pending_count(engine, wave.id, channel)
    if not pending and not batches.open_batches(engine, wave.id, channel):
        return 0, None
    builder = task_builder(settings, prepared, channel, wave.id)
    try:
        adapter = factory(settings, prepared, channel)
    except DeliveryError as exc:
        return 0, str(exc)
    with progress(f"send {channel}", pending) as advance, adapter:
        result = dispatch_channel(
            engine, table, wave.id, channel, endpoint_key(prepared, channel), builder, adapter,
            batch_size=settings.webhooks.batch_size, concurrency=settings.webhooks.concurrency, advance=advance,
        )
    return result.sent, result.failure


def _pending_count(engine: sa.Engine, wave_id: int, channel: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(
                ledger.contacts.c.wave_id == wave_id, ledger.contacts.c.channel == channel, ledger.contacts.c.status == "pending"
            )
        ).scalar_one()


def _send_email(settings, prepared, wave, engine, table, journal: SendJournal, channel_factory) -> tuple[int, str | None]:
    """Send the wave's pending e-mails chunk by chunk, journalling each accepted message."""
    builder = message_builder(settings, prepared, wave.id)
    sent_now = 0
    failure: DeliveryError | None = None
    _recover(engine, journal)
    pending = _pending_count(engine, wave.id, EMAIL)
    if not pending:
        return 0, None
    with progress("send email", pending) as advance, channel_factory(settings, prepared) as channel:
        for rows in ledger.pending_contacts(engine, wave.id, table, settings.database.chunk_size, channel=EMAIL):
            messages, skipped = builder.build(rows)
            results: list[DeliveryResult] = []

            def on_result(result: DeliveryResult) -> None:
                journal.append(result)
                results.append(result)
                advance(1)

            try:
                channel.send(messages, on_result=on_result)
            except DeliveryError as exc:  # the channel as a whole failed: stop, keep the rest pending
                failure = exc
            outcomes = skipped + [ledger.Outcome(r.contact_id, r.outcome, r.detail, r.provider_id) for r in results]
            ledger.mark_results(engine, outcomes, EMAIL)
            journal.clear()
            bounced = {r.contact_id for r in results if r.hard_bounce}
            if bounced:  # the address does not exist: no campaign writes to it again
                suppress_hard_bounces(
                    engine, [row[ID_COLUMN] for row in rows if row["_contact_id"] in bounced], source=f"hard bounce, wave {wave.id}"
                )
            advance(len(skipped))
            sent_now += sum(1 for r in results if r.outcome == "sent")
            if failure is not None:
                break
    return sent_now, None if failure is None else str(failure)


def _recover(engine: sa.Engine, journal: SendJournal) -> None:
    """Mark deliveries journalled by a run that was killed before it could update the ledger."""
    entries = journal.entries()
    if entries:
        outcomes = [ledger.Outcome(cid, "sent", "recovered from send journal", mid or None) for cid, mid in entries.items()]
        ledger.mark_results(engine, outcomes, CHANNEL)
    journal.clear()
