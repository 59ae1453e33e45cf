"""One campaign wave as plain functions: prepare, select, render, record, send.

``flows/campaign_wave.py`` wires these into Prefect tasks in this order; each is a plain
function of the settings, testable without Prefect. Order and guarantees:

1. ``prepare`` validates the rules file against the customer table, its templates (and its
   A/B variants') statically, and the contact policy: any error raises ``ValidationFailed``
   and nothing is recorded or sent.
2. ``select_wave`` runs the audience, include/exclude lists and contact policy as SQL in the
   database, holds out the global control group, scores and cuts by score, and draws the
   stable random control group and the variants (``orchestrator.selection``).
3. ``render_selection`` renders a sample (a real run) or every treated message (a dry run).
4. ``record`` writes all contacts of the wave to the ledger in one transaction, before any
   send. A wave that is already recorded is never selected again.
5. ``send_pending`` renders and sends the pending contacts chunk by chunk, journalling each
   accepted message and marking the chunk in bulk, so a killed run resumes with exactly the
   unsent contacts and never sends twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from channels import channel_class
from channels.base import Channel, DeliveryError, DeliveryResult
from orchestrator import ledger
from orchestrator.customer_table import customer_columns, customer_table
from orchestrator.database import connect
from orchestrator.journal import SendJournal
from orchestrator.messages import MessageBuilder, RenderCheck, customer_rows, render_check
from orchestrator.models import Arm, WaveStatus
from orchestrator.problems import Problem, ValidationFailed
from orchestrator.progress import progress
from orchestrator.selection import Candidates, Selection, WaveBlocked, check_day, select, split
from orchestrator.settings import Settings
from orchestrator.spec import CampaignSpec
from orchestrator.templates import TemplateSet
from orchestrator.validation import validate_campaign

__all__ = [
    "Candidates",
    "PreparedWave",
    "RenderCheck",
    "Selection",
    "ValidationFailed",
    "WaveBlocked",
    "WaveIncomplete",
    "WaveSummary",
]

CHANNEL = "email"
RENDER_SAMPLE = 200


class WaveIncomplete(RuntimeError):
    """Some contacts could not be sent in this run; they stay pending for the next one."""


@dataclass(frozen=True)
class PreparedWave:
    """A validated campaign ready to run as wave ``wave_key`` on date ``as_of``."""

    spec: CampaignSpec
    templates: dict[str | None, TemplateSet]  # by variant; None = the channel's template
    policy: object | None
    wave_key: str
    as_of: date

    @property
    def template(self) -> TemplateSet:
        return self.templates[None]


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
    global_control: int = 0
    sent_now: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    funnel: list = field(default_factory=list)  # selection.FunnelStep
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
            "global_control": self.global_control,
            "sent_this_run": self.sent_now,
            **{f"ledger_{k}": v for k, v in self.counts.items()},
            "rendered": self.render.rendered,
            "render_errors": self.render.errors,
            "render_problems": [str(p) for p in self.render.problems],
            "error": self.error,
            "funnel": [vars(step) for step in self.funnel],
        }

    def count_selection(self, selection: Selection) -> None:
        self.selected = len(selection.ids)
        self.treated = selection.count(Arm.TREATMENT.value)
        self.control = selection.count(Arm.CONTROL.value)
        self.global_control = selection.count(Arm.GLOBAL_CONTROL.value)
        self.funnel = selection.funnel


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
    check = validate_campaign(settings, rules_path, columns, engine)
    check.raise_for_errors()
    wave_key = wave_key or date.today().isoformat()
    return PreparedWave(
        spec=check.spec, templates=check.templates, policy=check.policy, wave_key=wave_key, as_of=_wave_date(wave_key)
    )


def _wave_date(wave_key: str) -> date:
    """The date a wave's date rules and contact policy are evaluated at: the key if it is a date."""
    try:
        return date.fromisoformat(wave_key)
    except ValueError:
        return date.today()


# --- 2. select ---------------------------------------------------------------------------


def select_candidates(settings: Settings, prepared: PreparedWave, *, with_funnel: bool = False) -> Candidates:
    """Customers left after audience, lists, policy, global control and scores (in SQL where possible)."""
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    return select(engine, settings, prepared.spec, table, prepared.policy, as_of=prepared.as_of, with_funnel=with_funnel)


def split_wave(prepared: PreparedWave, candidates: Candidates, *, with_funnel: bool = False) -> Selection:
    """Random control group and A/B variants; see ``orchestrator.selection.split``."""
    return split(prepared.spec, candidates, with_funnel=with_funnel)


# --- 3. render ----------------------------------------------------------------------------


def message_builder(settings: Settings, prepared: PreparedWave, wave_id: int | None) -> MessageBuilder:
    return MessageBuilder(settings, prepared.spec, prepared.templates, prepared.wave_key, wave_id)


def render_selection(
    settings: Settings, prepared: PreparedWave, selection: Selection, *, sample: int | None = RENDER_SAMPLE
) -> RenderCheck:
    """Render the treated customers' messages: the first ``sample`` of them, or all (None)."""
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    treated = np.flatnonzero(selection.arms == Arm.TREATMENT.value)
    if sample is not None:
        treated = treated[:sample]
    ids = [selection.ids[i] for i in treated]
    variants = selection.variants[treated].tolist()
    rows = customer_rows(engine, table, ids, variants, settings.database.chunk_size)
    return render_check(message_builder(settings, prepared, None), rows, len(ids))


# --- 4. record ----------------------------------------------------------------------------


def open_wave(settings: Settings, prepared: PreparedWave) -> ledger.WaveRef:
    """The wave's ledger row (created if new); raises ``WaveBlocked`` on a blocked day, writing nothing."""
    check_day(prepared.policy, prepared.as_of)
    engine = connect(settings)
    campaign_id = ledger.ensure_campaign(engine, prepared.spec.name, prepared.spec.description)
    return ledger.open_wave(engine, campaign_id, prepared.wave_key, prepared.spec.sha256)


def record(settings: Settings, wave: ledger.WaveRef, selection: Selection) -> tuple[int, int]:
    """Write the wave's contacts (treatment and control) to the ledger in one transaction."""
    return ledger.record_contacts(
        connect(settings), wave.id, selection.ids, selection.arms, CHANNEL, variants=selection.variants, scores=selection.scores
    )


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
    builder = message_builder(settings, prepared, wave.id)
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
    arms = ledger.arm_counts(engine, summary.wave_id)
    summary.counts = counts
    summary.status = ledger.wave_status(engine, summary.wave_id)
    summary.selected = sum(arms.values())
    summary.treated = arms[Arm.TREATMENT.value]
    summary.control = arms[Arm.CONTROL.value]
    summary.global_control = arms[Arm.GLOBAL_CONTROL.value]
    return summary
