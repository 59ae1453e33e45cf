"""One campaign wave as plain functions: prepare, select, render, record, send.

``flows/campaign_wave.py`` wires these into Prefect tasks in this order; each is a plain
function of the settings, testable without Prefect. Order and guarantees:

1. ``prepare`` validates the rules file against the customer table, its templates (and its
   A/B variants') statically, and the contact policy: any error raises ``ValidationFailed``
   and nothing is recorded or sent.
2. ``select_wave`` runs the audience, include/exclude lists and contact policy as SQL in the
   database, holds out the global control group, scores and cuts by score, and draws the
   stable random control group and the variants (``orchestrator.targeting.selection``).
3. ``render_selection`` renders a sample (a real run) or every treated message (a dry run).
4. ``record`` writes all contacts of the wave (the ``ContactFrame`` of its selection or plan)
   to the ledger in one transaction, before any send. A wave that is already recorded is
   never selected again.
5. ``send_pending`` renders and sends the pending contacts chunk by chunk, journalling each
   accepted message and marking the chunk in bulk, so a killed run resumes with exactly the
   unsent contacts and never sends twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from orchestrator.customers.table import customer_columns, customer_table
from orchestrator.db.engine import connect
from orchestrator.db.tables import Arm
from orchestrator.delivery.messages import RenderCheck, customer_rows, render_check
from orchestrator.delivery.prepared import EMAIL, PreparedWave, builder_for, message_builder, task_builder
from orchestrator.delivery.sending import (
    CHANNEL,
    ChannelFactory,
    TaskChannelFactory,
    WaveIncomplete,
    default_channel,
    default_task_channel,
    endpoint_key,
    journal_path,
    send_pending,
)
from orchestrator.errors import Problem, ValidationFailed
from orchestrator.execution.chunks import Mapper, in_process
from orchestrator.execution.chunks import split as split_chunks
from orchestrator.execution.progress import counted_elsewhere, progress
from orchestrator.ledger import batches, reasons
from orchestrator.ledger import contacts as ledger
from orchestrator.ledger.snapshots import (
    contact_columns,
    write_passed_over,
    write_snapshot,
    write_snapshot_in_background,
)
from orchestrator.settings import Settings
from orchestrator.targeting.capacity import load_capacity, used_capacity
from orchestrator.targeting.planning import CampaignPlan, plan_cycle, selection_columns
from orchestrator.targeting.selection import (
    Candidates,
    Selection,
    WaveBlocked,
    check_day,
    filter_customers,
    score_and_cut,
    scoring_features,
    split,
)
from orchestrator.wave.validation import audit_validation, validate_campaign

__all__ = [
    "CHANNEL",
    "EMAIL",
    "Candidates",
    "ChannelFactory",
    "TaskChannelFactory",
    "default_channel",
    "default_task_channel",
    "endpoint_key",
    "journal_path",
    "message_builder",
    "send_pending",
    "task_builder",
    "PreparedWave",
    "RenderCheck",
    "Selection",
    "ValidationFailed",
    "WaveBlocked",
    "Unreachable",
    "WaveFailed",
    "WaveIncomplete",
    "WaveSummary",
]

RENDER_SAMPLE = 200


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
    channels: dict[str, int] = field(default_factory=dict)  # treated per channel
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)  # ledger: channel -> status -> n
    lost_to: dict[str, int] = field(default_factory=dict)  # arbitration: other campaign -> customers
    waiting: int = 0  # treated customers left for a later wave (channel full)
    dead_batches: int = 0
    approval: str | None = None  # approval: required: what the approval step said (waiting: why, what to do)
    window_waiting: int = 0  # pending contacts waiting for their channel's send window
    next_slot: str | None = None  # when the first of them may be sent (ISO 8601, UTC)
    follow_up: str | None = None  # the deployment run scheduled for them (name and time), if any

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
            "channels": self.channels,
            "by_channel": self.by_channel,
            "lost_to": self.lost_to,
            "waiting_for_capacity": self.waiting,
            "dead_batches": self.dead_batches,
            "approval": self.approval,
            "waiting_for_window": self.window_waiting,
            "next_send_slot": self.next_slot,
            "follow_up_run": self.follow_up,
        }

    def count_selection(self, selection: Selection) -> None:
        self.selected = len(selection.contacts)
        self.treated = selection.count(Arm.TREATMENT.value)
        self.control = selection.count(Arm.CONTROL.value)
        self.global_control = selection.count(Arm.GLOBAL_CONTROL.value)
        self.funnel = selection.funnel

    def count_plan(self, plan: CampaignPlan) -> None:
        self.count_selection(plan.selection)
        self.channels = dict(plan.channel_counts)
        self.lost_to = dict(plan.lost_to)
        self.waiting = plan.waiting


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
    audit_validation(engine, rules_path, check)
    check.raise_for_errors()
    if check.spec is None:  # a rules file that could not be read has errors: raised above
        raise ValidationFailed(check.problems)
    wave_key = wave_key or date.today().isoformat()
    return PreparedWave(
        spec=check.spec,
        templates=check.templates,
        policy=check.policy,
        wave_key=wave_key,
        as_of=_wave_date(wave_key),
        task_templates=check.task_templates,
    )


def _wave_date(wave_key: str) -> date:
    """The date a wave's date rules and contact policy are evaluated at: the key if it is a date."""
    try:
        return date.fromisoformat(wave_key)
    except ValueError:
        return date.today()


# --- 2. select ---------------------------------------------------------------------------


def select_candidates(
    settings: Settings, prepared: PreparedWave, *, with_funnel: bool = False, mapper: Mapper = in_process
) -> Candidates:
    """Customers left after audience, lists, policy, global control and scores (in SQL where possible),
    each with its eligibility per channel (and territory) for planning."""
    candidates = filter_candidates(settings, prepared, with_funnel=with_funnel)
    return score_candidates(settings, prepared, candidates, mapper=mapper)


def filter_candidates(settings: Settings, prepared: PreparedWave, *, with_funnel: bool = False) -> Candidates:
    """The SQL part of the selection (audience, lists, policy, channel eligibility) and the global control."""
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    extra = selection_columns(prepared.spec, prepared.policy, table, prepared.as_of)
    features = scoring_features(engine, prepared.spec, table)  # read once, here, for the scoring chunks
    return filter_customers(
        engine,
        prepared.spec,
        table,
        prepared.policy,
        as_of=prepared.as_of,
        with_funnel=with_funnel,
        extra=extra,
        features=features,
    )


def score_candidates(
    settings: Settings, prepared: PreparedWave, candidates: Candidates, *, mapper: Mapper = in_process
) -> Candidates:
    """Score the candidates chunk by chunk (one ``mapper`` call per ``execution.chunk_size``) and cut by score."""
    return score_and_cut(settings, prepared.spec, settings.database.customer_table, candidates, mapper=mapper)


def split_wave(prepared: PreparedWave, candidates: Candidates, *, with_funnel: bool = False) -> Selection:
    """Random control group and A/B variants; see ``orchestrator.targeting.selection.split``."""
    return split(prepared.spec, candidates, with_funnel=with_funnel)


def plan(
    settings: Settings, prepared: Sequence[PreparedWave], candidates: Sequence[Candidates], *, with_funnel: bool = False
) -> list[CampaignPlan]:
    """Arbitration, control split and channel allocation of a cycle's campaigns (``orchestrator.targeting.planning``).

    Uses what is left of the day's channel capacity and leaves customers that campaigns
    not in ``prepared`` recorded under the same wave key to them.
    """
    engine = connect(settings)
    keys = {p.wave_key for p in prepared}
    days = {p.as_of for p in prepared}
    if len(keys) > 1 or len(days) > 1:
        raise ValueError("the campaigns of one cycle must run under one wave key")
    capacity = load_capacity(settings.paths.rules_dir, {name for p in prepared for name in p.spec.channels.names()})
    used = used_capacity(engine, next(iter(days))) if days else {}
    taken = ledger.cycle_customers(engine, next(iter(keys)), exclude=[p.spec.name for p in prepared]) if keys else {}
    global_shares = [
        gc.share if (gc := getattr(p.policy, "global_control", None)) is not None else 0.0 for p in prepared
    ]
    return plan_cycle(
        [p.spec for p in prepared],
        candidates,
        capacity,
        used,
        taken=taken,
        with_funnel=with_funnel,
        wave_key=next(iter(keys), ""),
        global_control_shares=global_shares,
    )


# --- 3. render ----------------------------------------------------------------------------


def render_selection(
    settings: Settings,
    prepared: PreparedWave,
    selection: Selection | CampaignPlan,
    *,
    sample: int | None = RENDER_SAMPLE,
    mapper: Mapper = in_process,
) -> RenderCheck:
    """Render the treated customers' messages per channel: the first ``sample`` of each channel, or all (None),
    in chunks of ``execution.chunk_size`` (one ``mapper`` call each; a chunk may hold several channels)."""
    contacts = selection.contacts
    picked = []
    for channel in prepared.spec.channels.names():
        treated = np.flatnonzero(contacts.treated & (contacts.channel == channel))
        picked.append(treated if sample is None else treated[:sample])
    order = np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)
    calls = [
        (settings, prepared, contacts.channel[part], contacts.customer_id[part], contacts.variant[part])
        for part in split_chunks(order, settings.execution.chunk_size)
    ]
    check = RenderCheck()
    with progress("render", len(order)) as advance:
        for part in mapper(render_chunk, calls):
            check.add(part)
            if counted_elsewhere(part.pid):
                advance(part.rendered + part.errors, failed=part.errors)
    return check


def render_chunk(
    settings: Settings, prepared: PreparedWave, channels: np.ndarray, ids: np.ndarray, variants: np.ndarray
) -> RenderCheck:
    """Render one chunk of treated customers' messages, each on its channel ``channels[i]`` (a chunk task);
    nothing is sent. The customer table is reflected once per chunk, then one query per channel."""
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    channels = np.asarray(channels, dtype=object)
    check = RenderCheck()
    for channel in dict.fromkeys(channels.tolist()):
        mine = np.flatnonzero(channels == channel)
        rows = customer_rows(engine, table, list(ids[mine]), list(variants[mine]), settings.database.chunk_size)
        check.add(render_check(builder_for(settings, prepared, channel, None), rows, len(mine)))
    return check


# --- 4. record ----------------------------------------------------------------------------


def open_wave(settings: Settings, prepared: PreparedWave) -> ledger.WaveRef:
    """The wave's ledger row (created if new); raises ``WaveBlocked`` on a blocked day, writing nothing."""
    check_day(prepared.policy, prepared.as_of)
    engine = connect(settings)
    campaign_id = ledger.ensure_campaign(engine, prepared.spec.name, prepared.spec.description)
    return ledger.open_wave(engine, campaign_id, prepared.wave_key, prepared.spec.sha256)


def record(
    settings: Settings,
    wave: ledger.WaveRef,
    selection: Selection | CampaignPlan,
    as_of: date | None = None,
    *,
    snapshot_in_background: bool = False,
) -> tuple[int, int]:
    """Write the wave's contacts (treatment and control) with their channels to the ledger in one transaction.

    A bare ``Selection`` records every customer on the campaign's first channel; a ``CampaignPlan``
    records its allocation and the customers the campaign lost in arbitration. Then the wave's
    feature snapshot (what was known at selection time, for training later) is written, or with
    ``snapshot_in_background`` started in a thread that ``send_pending`` joins at its end, so
    the sending does not wait for it (the flows do this); so is the passed-over customers' snapshot.
    """
    engine = connect(settings)
    if not isinstance(selection, CampaignPlan):
        counts = ledger.record_contacts(engine, wave.id, selection.contacts, planned_for=as_of)
    else:  # why each selected customer not recorded was not (replaced per wave): written while the rows are
        # copied, and before they are committed (an error writing it records nothing)
        with ThreadPoolExecutor(1, thread_name_prefix=f"reasons-wave-{wave.id}") as pool:
            written = pool.submit(reasons.write, settings, wave.id, selection.not_treated)
            counts = ledger.record_contacts(
                engine, wave.id, selection.contacts, planned_for=as_of, before_commit=written.result
            )
            written.result()
    if isinstance(selection, CampaignPlan):
        ledger.record_losses(engine, wave.key, selection.spec.name, selection.lost_to)
    # what was known at selection time, for training later: the model features, never contact data
    contact = contact_columns(getattr(selection, "spec", None))
    passed_over = selection.passed_over if isinstance(selection, CampaignPlan) else None  # no-contact rows of learning
    if snapshot_in_background:  # the passed-over customers' snapshot in the same thread, after the wave's
        write_snapshot_in_background(engine, settings, wave.id, contact=contact, passed_over=passed_over)
    else:
        write_snapshot(engine, settings, wave.id, contact=contact)
        if passed_over is not None and len(passed_over):
            write_passed_over(engine, settings, wave.id, passed_over, contact=contact)
    return counts


# --- 5. send: orchestrator.delivery.sending.send_pending (re-exported here) --------------------------


# --- summary ------------------------------------------------------------------------------


class Unreachable(RuntimeError):
    """A server a wave must deliver to does not answer; the message names the settings to change."""


def preflight(settings: Settings, rules_files: Sequence[Path], wave_key: str | None, *, dry_run: bool) -> None:
    """What ``campaign run`` checks before it starts Prefect: every rules file is valid (``ValidationFailed``),
    the day is not blocked (``WaveBlocked``) and, unless ``dry_run``, the SMTP server of e-mail campaigns
    accepts connections (``Unreachable``). Records nothing."""
    prepared = [prepare(settings, path, wave_key) for path in rules_files]
    for p in prepared:
        check_day(p.policy, p.as_of)
    if not dry_run and any(EMAIL in p.spec.channels.names() for p in prepared):
        problem = smtp_unreachable(settings)
        if problem:
            raise Unreachable(problem)


def smtp_unreachable(settings: Settings) -> str | None:
    """Why the configured SMTP server cannot be reached (a TCP connection within its timeout), or ``None``."""
    import socket

    host, port = settings.smtp.host, settings.smtp.port
    try:
        with socket.create_connection((host, port), timeout=min(settings.smtp.timeout, 15.0)):
            return None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return (
            f"cannot reach the SMTP server at {host}:{port} ({reason}); nothing was recorded or sent. "
            "Set CAMPAIGN_SMTP_HOST and CAMPAIGN_SMTP_PORT to your mail server (and CAMPAIGN_SMTP_SECURITY, "
            "_USERNAME, _PASSWORD if it needs them), or run with --dry-run to send nothing."
        )


class WaveFailed(RuntimeError):
    """A wave run stopped by an unexpected error; the message says what is recorded and the command that resumes."""


def resume_command(prepared: Sequence[PreparedWave]) -> str:
    """The ``campaign run`` command that runs these waves again (same files, same wave key)."""
    files = " ".join(str(p.spec.source) for p in prepared)
    return f"campaign run {files} --wave {prepared[0].wave_key}" if prepared else "campaign run"


def unrecorded_failure(
    settings: Settings, prepared: Sequence[PreparedWave], waves: Sequence[ledger.WaveRef], error: BaseException
) -> BaseException:
    """The exception to raise when selecting, planning or recording fresh waves failed with ``error``.

    Every wave still without a ledger is marked ``failed`` (never left ``selecting``). Invalid input
    (``ValidationFailed``) and interrupts are returned as they are; anything else becomes a
    ``WaveFailed`` that names the waves, says nothing of them was recorded and gives the command
    that runs them afresh.
    """
    engine = connect(settings)
    failed = [w for w in waves if ledger.fail_unrecorded(engine, w.id)]
    if isinstance(error, ValidationFailed | WaveBlocked) or not isinstance(error, Exception):
        return error
    names = ", ".join(f"'{w.key}' of {p.spec.name}" for p, w in zip(prepared, waves, strict=True))
    first = str(error).splitlines()[0][:500] if str(error) else "no detail"
    state = "nothing of it was recorded (status 'failed')" if failed else "its ledger was written before"
    failure = WaveFailed(
        f"wave {names} stopped while selecting and recording ({type(error).__name__}: {first}); {state}. "
        f"Fix the cause, then run it again: {resume_command(prepared)}"
    )
    failure.__cause__ = error
    return failure


def finish_summary(settings: Settings, summary: WaveSummary) -> WaveSummary:
    """Fill the summary's counts from the ledger (the source of truth)."""
    wave_id = summary.wave_id
    if wave_id is None:
        raise ValueError(f"the summary of campaign '{summary.campaign}' has no wave yet")
    engine = connect(settings)
    counts = ledger.wave_counts(engine, wave_id)
    arms = ledger.arm_counts(engine, wave_id)
    summary.counts = counts
    summary.status = ledger.wave_status(engine, wave_id)
    summary.selected = sum(arms.values())
    summary.treated = arms[Arm.TREATMENT.value]
    summary.control = arms[Arm.CONTROL.value]
    summary.global_control = arms[Arm.GLOBAL_CONTROL.value]
    summary.by_channel = ledger.channel_counts(engine, wave_id)
    summary.channels = {ch: sum(v.values()) for ch, v in summary.by_channel.items()}
    summary.dead_batches = batches.batch_counts(engine, wave_id)["dead"]
    summary.window_waiting, next_slot = ledger.waiting_counts(engine, wave_id, settings.execution.current_time())
    summary.next_slot = next_slot.isoformat() if next_slot is not None else None
    summary.lost_to = {
        winner: n for campaign, winner, n in ledger.losses_of(engine, summary.wave_key) if campaign == summary.campaign
    }
    return summary


def pending_by_channel(settings: Settings, wave_id: int) -> dict[str, int]:
    """Pending (recorded, not yet sent) treated contacts of a wave per channel."""
    counts = ledger.channel_counts(connect(settings), wave_id)
    return {channel: n.get("pending", 0) for channel, n in counts.items() if n.get("pending", 0)}


def prepare_cycle(settings: Settings, rules_files: list[Path], wave: str | None) -> tuple[list[PreparedWave], list]:
    """Validate, select (with the funnel) and plan the campaigns of one cycle, recording nothing.

    Raises ``ValidationFailed`` on invalid input and ``WaveBlocked`` on a blocked day.
    """
    prepared = [prepare(settings, f, wave) for f in rules_files]
    candidates = [select_candidates(settings, p, with_funnel=True) for p in prepared]
    return prepared, plan(settings, prepared, candidates, with_funnel=True)
