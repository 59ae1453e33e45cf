"""One campaign wave as plain functions: prepare, select, split, render, record, send.

``flows/campaign_wave.py`` wires these into Prefect tasks in this order; each is a plain
function of the settings, testable without Prefect. Order and guarantees:

1. ``prepare`` validates the rules file against the customer table and the templates
   statically (unknown columns, undefined template variables, syntax errors): any error
   raises ``ValidationFailed`` and nothing is recorded or sent.
2. ``select_audience`` runs the audience as SQL in the database and returns the customer ids;
   ``split_control`` draws the stable random control group.
3. ``render_check`` renders a sample (a real run) or every treated message (a dry run).
4. ``record`` writes all contacts of the wave to the ledger in one transaction, before any
   send. A wave that is already recorded is never selected again.
5. ``send_pending`` renders and sends the pending contacts chunk by chunk, journalling each
   accepted message and marking the chunk in bulk, so a killed run resumes with exactly the
   unsent contacts and never sends twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from email.utils import parseaddr
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from itsdangerous import URLSafeSerializer

from channels import channel_class
from channels.base import Channel, DeliveryError, DeliveryResult, Outbound
from orchestrator import ledger
from orchestrator.conditions import compile_audience
from orchestrator.control import control_mask
from orchestrator.customer_table import ID_COLUMN, customer_columns, customer_table
from orchestrator.database import connect
from orchestrator.journal import SendJournal
from orchestrator.models import WaveStatus
from orchestrator.problems import Problem, ValidationFailed
from orchestrator.progress import progress
from orchestrator.settings import Settings
from orchestrator.spec import CampaignSpec
from orchestrator.templates import RenderError, TemplateSet
from orchestrator.validation import has_errors, validate_campaign

CHANNEL = "email"
RENDER_SAMPLE = 200


class WaveIncomplete(RuntimeError):
    """Some contacts could not be sent in this run; they stay pending for the next one."""


@dataclass(frozen=True)
class PreparedWave:
    """A validated campaign ready to run as wave ``wave_key``."""

    spec: CampaignSpec
    template: TemplateSet
    wave_key: str

    @property
    def salt(self) -> str:
        return self.spec.control.salt or self.spec.name


@dataclass
class RenderCheck:
    rendered: int = 0
    errors: int = 0
    problems: list[Problem] = field(default_factory=list)  # distinct problems, file:line first


@dataclass
class WaveSummary:
    campaign: str
    wave_key: str
    dry_run: bool
    wave_id: int | None = None
    status: str | None = None
    selected: int = 0
    treated: int = 0
    control: int = 0
    sent_now: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    render: RenderCheck = field(default_factory=RenderCheck)
    already_recorded: bool = False
    error: str | None = None

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "wave": self.wave_key,
            "wave_id": self.wave_id,
            "dry_run": self.dry_run,
            "status": self.status,
            "selected": self.selected,
            "treated": self.treated,
            "control": self.control,
            "sent_this_run": self.sent_now,
            **{f"ledger_{k}": v for k, v in self.counts.items()},
            "rendered": self.render.rendered,
            "render_errors": self.render.errors,
            "render_problems": [str(p) for p in self.render.problems],
            "error": self.error,
        }


# --- 1. prepare ---------------------------------------------------------------------------


def prepare(settings: Settings, rules_path: Path, wave_key: str | None = None) -> PreparedWave:
    """Load and validate the rules file and its templates; raise ``ValidationFailed`` on any error."""
    engine = connect(settings)
    columns = customer_columns(engine, settings.database.customer_table)
    if columns is None:
        raise ValidationFailed(
            [
                Problem(
                    str(rules_path),
                    None,
                    None,
                    f"there is no customer table '{settings.database.customer_table}'; "
                    "load one first with `campaign import customers FILE`",
                )
            ]
        )
    spec, template, problems = validate_campaign(settings, rules_path, columns)
    if has_errors(problems) or spec is None or template is None:
        raise ValidationFailed(problems)
    return PreparedWave(spec=spec, template=template, wave_key=wave_key or date.today().isoformat())


# --- 2. select and split ------------------------------------------------------------------


def _audience_query(prepared: PreparedWave, table: sa.Table, *columns) -> sa.Select:
    query = sa.select(*columns)
    if prepared.spec.audience is not None:
        query = query.where(compile_audience(prepared.spec.audience, table))
    return query.order_by(table.c[ID_COLUMN])


def select_audience(settings: Settings, prepared: PreparedWave) -> list[str]:
    """Customer ids the audience selects, sorted; the condition runs as SQL in the database."""
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    query = _audience_query(prepared, table, table.c[ID_COLUMN])
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def split_control(prepared: PreparedWave, customer_ids: list[str]) -> np.ndarray:
    """True where the customer is in the wave's random control group."""
    return control_mask(customer_ids, prepared.spec.control.share, prepared.salt)


# --- 3. render ----------------------------------------------------------------------------


class MessageBuilder:
    """Turns customer rows into ``Outbound`` e-mails (or skip reasons) for one wave."""

    def __init__(self, settings: Settings, prepared: PreparedWave, wave_id: int | None):
        self.prepared = prepared
        self.wave_id = wave_id
        self.address_column = prepared.spec.channels.email.address_column
        self.base_url = settings.links.base_url.rstrip("/")
        self.mailto = settings.links.unsubscribe_mailto
        self.signer = URLSafeSerializer(settings.link_secret(), salt="unsubscribe")
        sender = parseaddr(prepared.spec.channels.email.sender)[1]
        self.domain = sender.rpartition("@")[2] or "campaign.local"

    def context(self, row: dict) -> dict:
        context = {k: v for k, v in row.items() if not k.startswith("_")}
        token = self.signer.dumps([self.wave_id or 0, row[ID_COLUMN]])
        context.update(
            campaign=self.prepared.spec.name,
            wave=self.prepared.wave_key,
            unsubscribe_url=f"{self.base_url}/unsubscribe/{token}",
        )
        return context

    def build(self, rows: list[dict]) -> tuple[list[Outbound], list[ledger.Outcome]]:
        """Messages for ``rows`` (each with ``_contact_id``) and the contacts skipped, with why."""
        contexts = [self.context(row) for row in rows]
        rendered = self.prepared.template.render_many(contexts)
        messages: list[Outbound] = []
        skipped: list[ledger.Outcome] = []
        for row, context, parts in zip(rows, contexts, rendered, strict=True):
            contact_id = row.get("_contact_id", 0)
            if isinstance(parts, RenderError):
                skipped.append(ledger.Outcome(contact_id, "skipped", f"render error: {parts.problem}"))
                continue
            address = row.get(self.address_column)
            if not address:
                skipped.append(ledger.Outcome(contact_id, "skipped", "no e-mail address"))
                continue
            try:
                address = validate_email(str(address), check_deliverability=False).normalized
            except EmailNotValidError:
                skipped.append(ledger.Outcome(contact_id, "skipped", "invalid e-mail address"))
                continue
            digest = hashlib.blake2b(f"{self.wave_id}:{row[ID_COLUMN]}".encode(), digest_size=6).hexdigest()
            headers = {"List-Unsubscribe": f"<{context['unsubscribe_url']}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
            if self.mailto:
                headers["List-Unsubscribe"] += f", <mailto:{self.mailto}?subject=unsubscribe>"
            messages.append(
                Outbound(
                    contact_id=contact_id,
                    recipient=address,
                    parts=parts,
                    key=f"<w{self.wave_id}.c{contact_id}.{digest}@{self.domain}>",
                    headers=headers,
                )
            )
        return messages, skipped


def _treated_rows(settings: Settings, prepared: PreparedWave, limit: int | None) -> Iterator[list[dict]]:
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    query = _audience_query(prepared, table, *table.c)
    if limit is not None:
        query = query.limit(limit * 2)
    chunk_size = settings.database.chunk_size
    with engine.connect().execution_options(stream_results=True, yield_per=chunk_size) as conn:
        result = conn.execute(query)
        for partition in result.mappings().partitions(chunk_size):
            rows = [dict(r) for r in partition]
            control = control_mask([r[ID_COLUMN] for r in rows], prepared.spec.control.share, prepared.salt)
            yield [r for r, c in zip(rows, control.tolist(), strict=True) if not c]


def render_check(settings: Settings, prepared: PreparedWave, *, sample: int | None = RENDER_SAMPLE) -> RenderCheck:
    """Render a sample of the treated customers' messages (all of them when ``sample`` is None).

    Every distinct template problem is collected; ``errors`` counts customers affected.
    """
    builder = MessageBuilder(settings, prepared, wave_id=None)
    check = RenderCheck()
    seen: set[str] = set()
    with progress("render", None if sample is None else sample) as advance:
        for rows in _treated_rows(settings, prepared, sample):
            if sample is not None:
                rows = rows[: sample - check.rendered - check.errors]
            for row, parts in zip(rows, prepared.template.render_many([builder.context(r) for r in rows]), strict=True):
                if isinstance(parts, RenderError):
                    check.errors += 1
                    if str(parts.problem) not in seen:
                        seen.add(str(parts.problem))
                        check.problems.append(parts.problem)
                else:
                    check.rendered += 1
            advance(len(rows))
            if sample is not None and check.rendered + check.errors >= sample:
                break
    return check


# --- 4. record ----------------------------------------------------------------------------


def open_wave(settings: Settings, prepared: PreparedWave) -> ledger.WaveRef:
    engine = connect(settings)
    campaign_id = ledger.ensure_campaign(engine, prepared.spec.name, prepared.spec.description)
    return ledger.open_wave(engine, campaign_id, prepared.wave_key, prepared.spec.sha256)


def record(settings: Settings, wave: ledger.WaveRef, customer_ids: list[str], is_control: np.ndarray) -> tuple[int, int]:
    """Write the wave's contacts (treatment and control) to the ledger in one transaction."""
    return ledger.record_contacts(connect(settings), wave.id, customer_ids, is_control, CHANNEL)


# --- 5. send ------------------------------------------------------------------------------


ChannelFactory = Callable[[Settings, PreparedWave], Channel]


def default_channel(settings: Settings, prepared: PreparedWave) -> Channel:
    email = prepared.spec.channels.email
    return channel_class(CHANNEL)(settings.smtp, sender=email.sender, reply_to=email.reply_to)


def journal_path(settings: Settings, wave_id: int) -> Path:
    return settings.paths.data_dir / "journal" / f"wave-{wave_id}.log"


def send_pending(
    settings: Settings,
    prepared: PreparedWave,
    wave: ledger.WaveRef,
    channel_factory: ChannelFactory = default_channel,
) -> int:
    """Send every pending contact of the wave; returns how many were sent in this call.

    Raises ``WaveIncomplete`` when contacts remain pending (channel unreachable, transient
    failures); they are sent by the next run.
    """
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    ledger.set_wave_status(engine, wave.id, WaveStatus.SENDING)
    builder = MessageBuilder(settings, prepared, wave.id)
    sent_now = 0
    failure: DeliveryError | None = None
    with SendJournal(journal_path(settings, wave.id)) as journal:
        _recover(engine, journal)
        pending = ledger.wave_counts(engine, wave.id)["pending"]
        with progress("send", pending) as advance, channel_factory(settings, prepared) as channel:
            for rows in ledger.pending_contacts(engine, wave.id, table, settings.database.chunk_size):
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
                ledger.mark_results(engine, outcomes, CHANNEL)
                journal.clear()
                advance(len(skipped))
                sent_now += sum(1 for r in results if r.outcome == "sent")
                if failure is not None:
                    break
    remaining = ledger.wave_counts(engine, wave.id)["pending"]
    ledger.set_wave_status(engine, wave.id, WaveStatus.INCOMPLETE if remaining else WaveStatus.COMPLETED)
    if remaining:
        reason = f"{failure}" if failure is not None else "transient delivery failures"
        raise WaveIncomplete(
            f"{remaining} contact(s) of wave '{wave.key}' are still unsent ({reason}); "
            "they stay pending: run the wave again to send them"
        )
    return sent_now


def _recover(engine: sa.Engine, journal: SendJournal) -> None:
    """Mark deliveries journalled by a run that was killed before it could update the ledger."""
    entries = journal.entries()
    if entries:
        outcomes = [ledger.Outcome(cid, "sent", "recovered from send journal", mid or None) for cid, mid in entries.items()]
        ledger.mark_results(engine, outcomes, CHANNEL)
    journal.clear()


# --- summary ------------------------------------------------------------------------------


def finish_summary(settings: Settings, summary: WaveSummary) -> WaveSummary:
    """Fill the summary's counts from the ledger (the source of truth)."""
    engine = connect(settings)
    counts = ledger.wave_counts(engine, summary.wave_id)
    summary.counts = counts
    summary.status = ledger.wave_status(engine, summary.wave_id)
    summary.control = counts["control"]
    summary.selected = sum(counts.values())
    summary.treated = summary.selected - summary.control
    return summary
