"""The approval step of a wave whose campaign says ``approval: required``.

``gate(settings, prepared, wave)`` runs after the wave is recorded and before anything is sent:

* the newest frozen plan of the wave is approved and the rules file and templates of this run
  still have its digests -> ``Gate.approved``: send;
* it was approved (or awaits approval) but a digest changed -> the old plan is voided (saying
  what changed), the plan is frozen again and the wave waits (``awaiting_approval``);
* nothing frozen yet -> the plan is frozen (counts from the ledger, digests, a sample of
  rendered messages written to ``<data dir>/approvals/`` as JSON and HTML, readable by the
  owner only) and the wave waits.

A waiting wave sends nothing; ``Gate.message`` says why and the command that approves it
(``campaign approve CAMPAIGN --wave W``); the next run of the wave sends once approved.
Counts and digests go to the audit trail, never the rendered messages or customer ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from orchestrator.db import audit
from orchestrator.db.engine import connect
from orchestrator.db.tables import ApprovalStatus, Arm
from orchestrator.delivery.prepared import PreparedWave
from orchestrator.ledger import approvals
from orchestrator.ledger import contacts as ledger
from orchestrator.settings import Settings, private_dir, private_file
from orchestrator.targeting.frame import ContactFrame
from orchestrator.wave.preview import preview_messages, write_html

__all__ = ["SAMPLE_PER_GROUP", "Gate", "approve", "current_plan", "gate", "needs_approval", "template_digests"]

SAMPLE_PER_GROUP = 3
"""Rendered sample messages per channel and variant in a frozen plan."""


@dataclass(frozen=True)
class Gate:
    """Whether the wave may send now, and if not, why and what to do."""

    approved: bool
    status: str  # approved or awaiting
    message: str
    plan_sha256: str
    sample_path: str | None = None


def needs_approval(prepared: PreparedWave) -> bool:
    return getattr(prepared.spec, "approval", "none") == "required"


def template_digests(prepared: PreparedWave) -> dict[str, str]:
    """``channel/name`` -> sha256 of the template's sources (includes too), e-mail variants and task channels."""
    sets = [*prepared.templates.values(), *prepared.task_templates.values()]
    return {f"{t.channel}/{t.name}": t.digest for t in sorted(sets, key=lambda t: (t.channel, t.name))}


def current_plan(settings: Settings, prepared: PreparedWave, wave_id: int) -> approvals.FrozenPlan:
    """The plan as it stands: the ledger's counts per arm and treated channel, this run's digests."""
    engine = connect(settings)
    counts = {arm: n for arm, n in ledger.arm_counts(engine, wave_id).items()}
    for channel, by_status in sorted(ledger.channel_counts(engine, wave_id).items()):
        counts[f"channel {channel}"] = sum(by_status.values())
    return approvals.FrozenPlan(prepared.spec.sha256, template_digests(prepared), counts)


def _approve_hint(prepared: PreparedWave, wave: ledger.WaveRef) -> str:
    return (
        f"approve it with `campaign approve {prepared.spec.name} --wave {wave.key}` (or resume the paused flow run "
        f"in the Prefect UI), then run `campaign run {prepared.spec.source} --wave {wave.key}` to send"
    )


def _write_sample(settings: Settings, prepared: PreparedWave, wave: ledger.WaveRef, n: int) -> tuple[Path, str]:
    """Render up to ``n`` treated messages per channel and variant to a JSON file (and an HTML page next to it)."""
    engine = connect(settings)
    ids, variants, channels = approvals.treated_sample(engine, wave.id, n)

    class _Sample:  # what preview_messages reads: the contacts
        contacts = ContactFrame.of(ids, [Arm.TREATMENT.value] * len(ids), variant=variants, channel=channels)

    messages = preview_messages(settings, prepared, _Sample, n)
    folder = private_dir(settings.paths.data_dir / "approvals" / prepared.spec.name)
    stem = f"wave-{wave.id}-{prepared.spec.sha256[:8]}"
    body = json.dumps(
        [
            {
                "channel": m.channel,
                "customer_id": m.customer_id,
                "variant": m.variant,
                "parts": m.parts,
                "error": m.error,
            }
            for m in messages
        ],
        indent=1,
        sort_keys=True,
    ).encode()
    path = folder / f"{stem}.json"
    with private_file(path) as handle:  # 0600: rendered messages hold customers' data
        handle.write(body)
    write_html(folder / f"{stem}.html", prepared.spec.name, messages)
    return path, hashlib.sha256(body).hexdigest()


def gate(settings: Settings, prepared: PreparedWave, wave: ledger.WaveRef, *, actor: str | None = None) -> Gate:
    """May the recorded wave send? Freezes (or re-freezes) its plan when it must wait; see the module docstring."""
    engine = connect(settings)
    actor = actor or audit.current_actor()
    plan = current_plan(settings, prepared, wave.id)
    newest = approvals.latest(engine, wave.id)
    name = prepared.spec.name
    why_refrozen = ""
    if newest is not None and newest.status in (ApprovalStatus.APPROVED, ApprovalStatus.AWAITING):
        changed = approvals.changes(newest.plan, plan)
        if not changed:
            if newest.approved:
                return Gate(True, "approved", f"approved by {newest.decided_by} at {newest.decided_at}", plan.sha256)
            return Gate(
                False,
                "awaiting",
                f"wave {wave.key} of {name} waits for approval of plan {plan.sha256[:12]} (sample: "
                f"{newest.sample_path}); nothing was sent; {_approve_hint(prepared, wave)}",
                plan.sha256,
                newest.sample_path,
            )
        what = "; ".join(changed)
        was = f"approval by {newest.decided_by}" if newest.approved else "plan awaiting approval"
        approvals.void(engine, newest, campaign=name, wave_key=wave.key, actor=actor, reason=what)
        why_refrozen = f"the {was} of wave {wave.key} is void: {what}; nothing was sent. "
    path, digest = _write_sample(settings, prepared, wave, SAMPLE_PER_GROUP)
    frozen = approvals.freeze(
        engine,
        wave.id,
        plan,
        campaign=name,
        wave_key=wave.key,
        actor=actor,
        sample_path=str(path),
        sample_sha256=digest,
    )
    counts = ", ".join(f"{k} {v:,}" for k, v in plan.counts.items())
    return Gate(
        False,
        "awaiting",
        f"{why_refrozen}wave {wave.key} of {name} waits for approval of plan {frozen.plan_sha256[:12]} ({counts}; "
        f"sample messages: {path}); nothing was sent; {_approve_hint(prepared, wave)}",
        frozen.plan_sha256,
        str(path),
    )


def approve(settings: Settings, campaign: str, wave_key: str, *, actor: str | None = None) -> approvals.Approval:
    """Approve the newest frozen plan of ``campaign``'s wave ``wave_key`` (``approvals.ApprovalError`` if none)."""
    return approvals.approve(connect(settings), campaign, wave_key, actor=actor or audit.current_actor())
