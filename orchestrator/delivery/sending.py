"""Sending a recorded wave: e-mail through the send journal, task channels through ledger batches.

``send_pending`` delivers every pending contact of a wave on each of its channels, one run
at a time (the wave's lock file). The work is cut into chunk tasks of ``execution.chunk_size``
contacts that a ``Mapper`` runs here or on a Dask cluster (``orchestrator.execution.chunks``):

* e-mail: disjoint ranges of pending contact ids (``send_email_chunk``). Each chunk renders
  and sends its contacts in pages (keyset paging); each accepted message is appended to the
  chunk's own journal before the page's bulk ledger update, so a killed run resumes with
  exactly the unsent contacts: the next run first marks every journalled message sent
  (``_recover``), whatever chunks it then cuts. Hard bounces go to the suppression list;
* call center, field force, webhook (every kind whose ``delivery`` is ``"batches"``):
  ``orchestrator.ledger.batches`` fixes the batches in the ledger (one transaction) before any
  chunk runs; each chunk delivers a group of them under
  their stored ``webhook-id`` (``deliver_chunk``).

Contacts that could not be delivered stay pending (``WaveIncomplete``); rejected task lists
go to the dead-letter store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from channels.base import Channel, DeliveryError, DeliveryResult
from orchestrator.customers.table import ID_COLUMN, customer_table
from orchestrator.db.engine import connect
from orchestrator.db.tables import WaveStatus
from orchestrator.delivery.dispatch import deliver_batches
from orchestrator.delivery.prepared import EMAIL, PreparedWave, message_builder, task_builder
from orchestrator.execution.chunks import Mapper, id_ranges, in_process
from orchestrator.execution.progress import Advance, counted_elsewhere, progress
from orchestrator.ledger import batches
from orchestrator.ledger import contacts as ledger
from orchestrator.ledger.journal import SendJournal
from orchestrator.ledger.snapshots import ensure_snapshot_in_background
from orchestrator.ledger.suppressions import suppress_hard_bounces
from orchestrator.rules.kinds import channel_kind
from orchestrator.rules.policy_spec import PolicySpec
from orchestrator.rules.windows import SendWindow, campaign_zone, customer_zones, waiting_until
from orchestrator.settings import Settings

CHANNEL = EMAIL
RENDER_BATCH = 1_000  # contacts rendered and handed to the channel at once, within a page of the ledger


class WaveIncomplete(RuntimeError):
    """Some contacts could not be sent in this run; they stay pending for the next one."""


ChannelFactory = Callable[[Settings, PreparedWave], Channel]
TaskChannelFactory = Callable[[Settings, PreparedWave, str], Channel]


def default_channel(settings: Settings, prepared: PreparedWave) -> Channel:
    """The e-mail adapter of the wave, as its kind makes it from the settings."""
    return channel_kind(CHANNEL).make_adapter(settings, prepared.spec.channels.section(CHANNEL))


def endpoint_key(prepared: PreparedWave, channel: str) -> str:
    """The settings key of the endpoint a task channel posts to: the channel, or its section's endpoint."""
    return channel_kind(channel).endpoint_key(prepared.spec.channels.section(channel))


def default_task_channel(settings: Settings, prepared: PreparedWave, channel: str) -> Channel:
    """The adapter of a task channel, as its kind makes it from the settings (``PermanentDeliveryError``
    when its endpoint is not configured)."""
    return channel_kind(channel).make_adapter(settings, prepared.spec.channels.section(channel))


def journal_path(settings: Settings, wave_id: int) -> Path:
    """The wave's lock file (and the journal of runs before chunked sending)."""
    return settings.paths.data_dir / "journal" / f"wave-{wave_id}.log"


def chunk_journal_dir(settings: Settings, wave_id: int) -> Path:
    """The folder of the wave's e-mail chunk journals."""
    return settings.paths.data_dir / "journal" / f"wave-{wave_id}"


def chunk_journal_path(settings: Settings, wave_id: int, first_contact: int) -> Path:
    """The send journal of the e-mail chunk starting at contact ``first_contact``."""
    return chunk_journal_dir(settings, wave_id) / f"email-{first_contact}.log"


@dataclass
class ChunkResult:
    """What one chunk task sent: counted into the wave's total; ``failure`` when it stopped early."""

    sent: int = 0
    handled: int = 0  # contacts whose outcome the ledger now has (sent, failed, skipped, ...)
    failure: str | None = None
    pid: int = field(default_factory=os.getpid)


def send_pending(
    settings: Settings,
    prepared: PreparedWave,
    wave: ledger.WaveRef,
    channel_factory: ChannelFactory = default_channel,
    task_channel_factory: TaskChannelFactory = default_task_channel,
    mapper: Mapper = in_process,
) -> int:
    """Send every pending contact of the wave on each of its channels; returns how many were sent in this call.

    The work is cut into chunks of ``execution.chunk_size`` contacts, each run through
    ``mapper`` (``orchestrator.execution.chunks``): e-mail chunks are disjoint ranges of contact ids,
    each with its own send journal; task-channel chunks are groups of the batches fixed in
    the ledger before the first POST. Raises ``WaveIncomplete`` when contacts remain pending
    (channel unreachable, transient failures); they are sent by the next run. One run at a
    time sends a wave (a lock).
    """
    engine = connect(settings)
    # the snapshot record() started in the background, or one a killed run did not write: alongside the sending
    snapshot = ensure_snapshot_in_background(engine, settings, wave.id)
    try:
        return _send_pending(settings, prepared, wave, engine, channel_factory, task_channel_factory, mapper)
    finally:
        snapshot.wait()


def _send_pending(
    settings: Settings,
    prepared: PreparedWave,
    wave: ledger.WaveRef,
    engine: sa.Engine,
    channel_factory: ChannelFactory,
    task_channel_factory: TaskChannelFactory,
    mapper: Mapper,
) -> int:
    ledger.set_wave_status(engine, wave.id, WaveStatus.SENDING)
    try:
        return _send_channels(settings, prepared, wave, engine, channel_factory, task_channel_factory, mapper)
    except Exception as exc:
        if isinstance(exc, WaveIncomplete):
            raise
        # never left in 'sending': what was sent is recorded, the rest stays pending for the next run
        ledger.set_wave_status(engine, wave.id, WaveStatus.INCOMPLETE)
        pending = ledger.wave_counts(engine, wave.id)["pending"]
        first = str(exc).splitlines()[0][:500] if str(exc) else "no detail"
        raise WaveIncomplete(
            f"sending wave '{wave.key}' of {prepared.spec.name} stopped ({type(exc).__name__}: {first}); "
            f"{pending} contact(s) stay pending (wave status 'incomplete'). Fix the cause, then send them: "
            f"{_resume(prepared)}"
        ) from exc


def _resume(prepared: PreparedWave) -> str:
    return f"campaign run {prepared.spec.source} --wave {prepared.wave_key}"


def _send_channels(
    settings: Settings,
    prepared: PreparedWave,
    wave: ledger.WaveRef,
    engine: sa.Engine,
    channel_factory: ChannelFactory,
    task_channel_factory: TaskChannelFactory,
    mapper: Mapper,
) -> int:
    sent_now = 0
    failures: list[str] = []
    with SendJournal(journal_path(settings, wave.id)) as journal:  # the wave's lock
        _recover(engine, journal)
        for path in sorted(chunk_journal_dir(settings, wave.id).glob("email-*.log")):
            with SendJournal(path) as chunk_journal:  # busy: a chunk task of a killed run still sends
                _recover(engine, chunk_journal)
            path.unlink()
        journal_first = sorted(prepared.spec.channels.names(), key=lambda n: channel_kind(n).delivery != "journal")
        for channel in journal_first:
            calls: list[tuple]
            work: Callable[..., ChunkResult]
            if channel_kind(channel).delivery == "journal":
                calls = [
                    (settings, prepared, wave, first, last, channel_factory)
                    for first, last in _pending_ranges(engine, wave.id, settings.execution.chunk_size)
                ]
                work = send_email_chunk
            else:
                if _task_channel_waits(engine, settings, prepared, wave.id, channel):
                    continue
                calls = [
                    (settings, prepared, wave, channel, todo, task_channel_factory)
                    for todo in _batch_groups(settings, prepared, engine, wave.id, channel)
                ]
                work = deliver_chunk
            if not calls:
                continue
            with progress(f"send {channel}", _pending_count(engine, wave.id, channel)) as advance:
                for result in mapper(work, calls):
                    sent_now += result.sent
                    if counted_elsewhere(result.pid):
                        advance(result.handled)
                    if result.failure and result.failure not in failures:
                        failures.append(result.failure)
    remaining = ledger.wave_counts(engine, wave.id)["pending"]
    dead = batches.batch_counts(engine, wave.id)["dead"]
    waiting, next_slot = ledger.waiting_counts(engine, wave.id, settings.execution.current_time())
    if waiting and remaining == waiting and not dead:  # nothing failed: the rest waits for its send window
        ledger.set_wave_status(engine, wave.id, WaveStatus.WAITING)
        return sent_now
    ledger.set_wave_status(engine, wave.id, WaveStatus.INCOMPLETE if remaining or dead else WaveStatus.COMPLETED)
    if remaining or dead:
        reasons = "; ".join(failures) if failures else "transient delivery failures"
        parts = []
        if waiting:
            parts.append(
                f"{waiting} contact(s) wait for their send window (the next opens at {next_slot:%Y-%m-%d %H:%M} UTC)"
            )
            remaining -= waiting
        if remaining:
            parts.append(
                f"{remaining} contact(s) of wave '{wave.key}' are still unsent ({reasons}); "
                f"they stay pending: run the wave again to send them ({_resume(prepared)})"
            )
        if dead:
            parts.append(
                f"{dead} task list(s) were rejected by the receiver: "
                "see `campaign dlq list`, fix, then `campaign dlq retry`"
            )
        raise WaveIncomplete("; ".join(parts))
    return sent_now


def send_window(prepared: PreparedWave, channel: str) -> SendWindow | None:
    """The channel's send window from the campaign's policy, or None (any time)."""
    policy = prepared.policy
    if not isinstance(policy, PolicySpec) or channel not in policy.send_windows:
        return None
    return SendWindow.from_spec(policy.send_windows[channel])


def _task_channel_waits(
    engine: sa.Engine, settings: Settings, prepared: PreparedWave, wave_id: int, channel: str
) -> bool:
    """True when the task channel's window is closed now (in the campaign's zone): its pending contacts then wait.

    Task lists go to a call center or the field force, whose working hours and days are the
    campaign's (one zone for the whole channel); the tasks are delivered by the first run in the window.
    """
    window = send_window(prepared, channel)
    if window is None:
        return False
    zone = campaign_zone(prepared.policy if isinstance(prepared.policy, PolicySpec) else None)
    opens = window.next_open(settings.execution.current_time(), zone)
    if opens is None:
        return False
    ledger.mark_channel_waiting(engine, wave_id, channel, opens, f"waiting for the {channel} window {window.text}")
    return True


def _hold_outside_window(
    engine: sa.Engine, chunk: ledger.ContactChunk, window: SendWindow | None, prepared: PreparedWave, now: datetime
) -> tuple[ledger.ContactChunk, int]:
    """The contacts of ``chunk`` whose window is open now, and how many others now wait (marked in the ledger).

    Each contact's window is evaluated in its own time zone (``orchestrator.rules.windows.customer_zones``).
    """
    if window is None:
        return chunk, 0
    zone = campaign_zone(prepared.policy if isinstance(prepared.policy, PolicySpec) else None)
    waits = waiting_until(window, customer_zones(chunk.customers, zone), now)
    keep = [i for i, w in enumerate(waits) if w is None]
    if len(keep) == len(chunk):
        return chunk, 0
    held = [(chunk.contact_ids[i], w) for i, w in enumerate(waits) if w is not None]
    ledger.mark_waiting(engine, held, f"waiting for the email window {window.text}")
    kept = ledger.ContactChunk(
        [chunk.customers[i] for i in keep],
        [chunk.contact_ids[i] for i in keep],
        [chunk.variants[i] for i in keep],
        [chunk.assignees[i] for i in keep],
    )
    return kept, len(held)


def _pending_ranges(engine: sa.Engine, wave_id: int, size: int) -> list[tuple[int, int]]:
    query = sa.select(ledger.contacts.c.id).where(
        ledger.contacts.c.wave_id == wave_id, ledger.contacts.c.channel == EMAIL, ledger.contacts.c.status == "pending"
    )
    with engine.connect() as conn:
        return id_ranges(conn, query, size)


def _batch_groups(settings, prepared, engine, wave_id: int, channel: str) -> list[list[batches.BatchRef]]:
    """Fix the batches of the channel's pending contacts (one transaction), then group the open ones by chunk size."""
    batches.assign_batches(
        engine,
        wave_id,
        channel,
        endpoint_key(prepared, channel),
        settings.webhooks.batch_size,
        per_assignee=channel_kind(channel).per_assignee,
    )
    groups: list[list[batches.BatchRef]] = []
    size = 0
    for batch in batches.open_batches(engine, wave_id, channel):
        if not groups or size + batch.size > settings.execution.chunk_size:
            groups.append([])
            size = 0
        groups[-1].append(batch)
        size += batch.size
    return groups


def deliver_chunk(
    settings: Settings,
    prepared: PreparedWave,
    wave: ledger.WaveRef,
    channel: str,
    todo: list[batches.BatchRef],
    factory: TaskChannelFactory = default_task_channel,
) -> ChunkResult:
    """Deliver one group of a task channel's batches (a chunk task); the batches were fixed before."""
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    builder = task_builder(settings, prepared, channel, wave.id)
    try:
        adapter = factory(settings, prepared, channel)
    except DeliveryError as exc:
        return ChunkResult(failure=str(exc))
    handled = 0
    with progress(f"send {channel}", sum(b.size for b in todo)) as advance, adapter:

        def count(n: int = 1, failed: int = 0) -> None:
            nonlocal handled
            handled += n
            advance(n, failed=failed)

        result = deliver_batches(
            engine, table, channel, todo, builder, adapter, concurrency=settings.webhooks.concurrency, advance=count
        )
    return ChunkResult(sent=result.sent, handled=handled, failure=result.failure)


def _pending_count(engine: sa.Engine, wave_id: int, channel: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(
                ledger.contacts.c.wave_id == wave_id,
                ledger.contacts.c.channel == channel,
                ledger.contacts.c.status == "pending",
            )
        ).scalar_one()


class _Journalled:
    """The ``on_result`` callback of an e-mail chunk: journals each result, collects it in ``results`` and counts it.

    ``report_all`` takes the results the channel learnt at once (``channels.base.report_all``) and
    journals them with one write.
    """

    def __init__(self, journal: SendJournal, results: list[DeliveryResult], advance: Advance):
        self.journal = journal
        self.results = results
        self.advance = advance

    def __call__(self, result: DeliveryResult) -> None:
        self.journal.append(result)
        self.results.append(result)
        self.advance(1, failed=int(result.outcome != "sent"))

    def report_all(self, results: Sequence[DeliveryResult]) -> None:
        self.journal.report_all(results)
        self.results += results
        self.advance(len(results), failed=sum(1 for r in results if r.outcome != "sent"))


def send_email_chunk(
    settings: Settings,
    prepared: PreparedWave,
    wave: ledger.WaveRef,
    first: int,
    last: int,
    channel_factory: ChannelFactory = default_channel,
) -> ChunkResult:
    """Send the pending e-mails with contact ids ``first..last`` (a chunk task), journalling each accepted message.

    The chunk's own journal is locked while it sends, so a chunk never runs twice at once,
    and is recovered first, so a retried chunk sends only what is still unsent.
    """
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    builder = message_builder(settings, prepared, wave.id)
    window = send_window(prepared, EMAIL)
    now = settings.execution.current_time()
    done = ChunkResult()
    failure: DeliveryError | None = None
    with SendJournal(chunk_journal_path(settings, wave.id, first)) as journal:
        _recover(engine, journal)
        pending = ledger.pending_contacts(
            engine, wave.id, table, settings.database.chunk_size, channel=EMAIL, id_range=(first, last)
        )
        with progress("send email", last - first + 1) as advance, channel_factory(settings, prepared) as channel:
            for whole in pending:
                chunk, held = _hold_outside_window(engine, whole, window, prepared, now)
                advance(held)
                done.handled += held
                results: list[DeliveryResult] = []
                skipped: list[ledger.Outcome] = []
                for part in chunk.slices(RENDER_BATCH):  # rendered messages held a slice at a time
                    messages, part_skipped = builder.build(part)
                    skipped += part_skipped
                    try:
                        channel.send(messages, on_result=_Journalled(journal, results, advance))
                    except DeliveryError as exc:  # the channel as a whole failed: stop, keep the rest pending
                        failure = exc
                        break
                outcomes = skipped + [ledger.Outcome(r.contact_id, r.outcome, r.detail, r.provider_id) for r in results]
                ledger.mark_results(engine, outcomes, EMAIL)
                journal.clear()
                bounced = {r.contact_id for r in results if r.hard_bounce}
                if bounced:  # the address does not exist: no campaign writes to it again
                    suppress_hard_bounces(
                        engine,
                        [
                            customer[ID_COLUMN]
                            for customer, contact_id in zip(chunk.customers, chunk.contact_ids, strict=True)
                            if contact_id in bounced
                        ],
                        source=f"hard bounce, wave {wave.id}",
                        channel=EMAIL,
                    )
                advance(len(skipped), failed=len(skipped))  # invalid address, render error: not sent
                done.sent += sum(1 for r in results if r.outcome == "sent")
                done.handled += len(outcomes)
                if failure is not None:
                    break
    if failure is None:
        journal.path.unlink(missing_ok=True)
    else:
        done.failure = str(failure)
    return done


def _recover(engine: sa.Engine, journal: SendJournal) -> None:
    """Mark deliveries journalled by a run that was killed before it could update the ledger."""
    entries = journal.entries()
    if entries:
        outcomes = [
            ledger.Outcome(cid, "sent", "recovered from send journal", mid or None) for cid, mid in entries.items()
        ]
        ledger.mark_results(engine, outcomes, CHANNEL)
    journal.clear()
