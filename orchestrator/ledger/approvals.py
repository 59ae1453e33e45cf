"""Approvals: a wave's frozen plan, waiting for a person to approve it before anything is sent.

A campaign with ``approval: required`` records its wave as usual, then freezes the plan
(``freeze``): the counts per arm and treated channel from the ledger, the rules file's digest
and every template's digest, a digest over all three (``plan_sha256``) and the file of a sample
of rendered messages. Nothing of the wave is sent until the newest freeze of the wave is
approved (``approve``, by ``campaign approve`` or the Prefect UI) AND the rules file and
templates of the run that sends still have the digests that were approved (``check``): a change
after approval voids it (status ``void``, the reason in ``note``), and the run freezes the plan
again for a new approval. Every freeze, approval and void is an audit event (``approval-requested``,
``approve``, ``approval-void``); no personal data is stored in these rows (the sample file,
readable by its owner only, holds the rendered messages).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from orchestrator.db import audit
from orchestrator.db.tables import ApprovalStatus, Campaign, Wave, WaveApproval, WaveStatus, table_of, utcnow
from orchestrator.ledger.contacts import wave_named

__all__ = [
    "ApprovalError",
    "Approval",
    "FrozenPlan",
    "approve",
    "changes",
    "freeze",
    "latest",
    "void",
]

approvals = table_of(WaveApproval)
waves = table_of(Wave)
campaigns = table_of(Campaign)


class ApprovalError(RuntimeError):
    """An approval cannot be given: no such wave, nothing waiting, or already decided."""


@dataclass(frozen=True)
class FrozenPlan:
    """What is approved: counts per arm and treated channel, the rules file's and templates' digests."""

    rules_sha256: str
    templates: Mapping[str, str]  # "email/winback" -> sha256 of its sources
    counts: Mapping[str, int]  # "treatment", "control", "global_control", "channel email" -> customers

    @property
    def sha256(self) -> str:
        body = json.dumps(
            {"rules": self.rules_sha256, "templates": dict(self.templates), "counts": dict(self.counts)},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Approval:
    """One freeze of a wave's plan and what became of it."""

    id: int
    wave_id: int
    status: str
    plan: FrozenPlan
    plan_sha256: str
    sample_path: str | None
    sample_sha256: str | None
    frozen_at: object
    decided_at: object | None
    decided_by: str | None
    note: str | None

    @property
    def approved(self) -> bool:
        return self.status == ApprovalStatus.APPROVED


def _approval(row) -> Approval:
    plan = FrozenPlan(row.rules_sha256, dict(row.templates), {k: int(v) for k, v in dict(row.counts).items()})
    return Approval(
        row.id,
        row.wave_id,
        row.status,
        plan,
        row.plan_sha256,
        row.sample_path,
        row.sample_sha256,
        row.frozen_at,
        row.decided_at,
        row.decided_by,
        row.note,
    )


def latest(engine: sa.Engine, wave_id: int) -> Approval | None:
    """The newest freeze of the wave (the one that counts), or None."""
    query = sa.select(approvals).where(approvals.c.wave_id == wave_id).order_by(approvals.c.id.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _approval(row)


def changes(approved: FrozenPlan, current: FrozenPlan) -> list[str]:
    """What differs between two frozen plans, in words (no personal data)."""
    out = []
    if approved.rules_sha256 != current.rules_sha256:
        out.append(f"the rules file changed (sha256 {approved.rules_sha256[:12]} -> {current.rules_sha256[:12]})")
    for name in sorted(set(approved.templates) | set(current.templates)):
        before, after = approved.templates.get(name), current.templates.get(name)
        if before != after:
            if before is None:
                out.append(f"template {name} was added")
            elif after is None:
                out.append(f"template {name} is no longer used")
            else:
                out.append(f"template {name} changed (sha256 {before[:12]} -> {after[:12]})")
    if dict(approved.counts) != dict(current.counts):
        out.append("the wave's counts changed")
    return out


def freeze(
    engine: sa.Engine,
    wave_id: int,
    plan: FrozenPlan,
    *,
    campaign: str,
    wave_key: str,
    actor: str,
    sample_path: str | None = None,
    sample_sha256: str | None = None,
) -> Approval:
    """Freeze the wave's plan for approval (a new newest row, status ``awaiting``) and set the wave to
    ``awaiting_approval``; audited as ``approval-requested``."""
    with engine.begin() as conn:
        approval_id = conn.execute(
            sa.insert(approvals).returning(approvals.c.id),
            {
                "wave_id": wave_id,
                "status": ApprovalStatus.AWAITING.value,
                "plan_sha256": plan.sha256,
                "rules_sha256": plan.rules_sha256,
                "templates": dict(plan.templates),
                "counts": dict(plan.counts),
                "sample_path": sample_path,
                "sample_sha256": sample_sha256,
                "frozen_at": utcnow(),
            },
        ).scalar_one()
        conn.execute(sa.update(waves).where(waves.c.id == wave_id).values(status=WaveStatus.AWAITING_APPROVAL.value))
        audit.record(
            conn,
            actor=actor,
            action="approval-requested",
            campaign=campaign,
            subject=f"wave {wave_key}",
            counts={k: int(v) for k, v in plan.counts.items()},
            details={"wave": wave_key, "plan_sha256": plan.sha256, "rules_sha256": plan.rules_sha256}
            | {f"template {k}": v for k, v in sorted(plan.templates.items())},
        )
        row = conn.execute(sa.select(approvals).where(approvals.c.id == approval_id)).one()
    return _approval(row)


def void(engine: sa.Engine, approval: Approval, *, campaign: str, wave_key: str, actor: str, reason: str) -> None:
    """Mark ``approval`` void (its plan no longer matches the files); audited as ``approval-void``."""
    note = reason if len(reason) <= 500 else reason[:497] + "..."
    with engine.begin() as conn:
        conn.execute(
            sa.update(approvals)
            .where(approvals.c.id == approval.id)
            .values(status=ApprovalStatus.VOID.value, note=note, decided_at=utcnow())
        )
        audit.record(
            conn,
            actor=actor,
            action="approval-void",
            campaign=campaign,
            subject=f"wave {wave_key}",
            counts={},
            details={"wave": wave_key, "plan_sha256": approval.plan_sha256, "was": approval.status, "why": note[:200]},
        )


def find_wave(engine: sa.Engine, campaign: str, wave_key: str) -> tuple[int, str]:
    """The id and status of ``campaign``'s wave ``wave_key``; ``ApprovalError`` naming what exists if none."""
    wave = wave_named(engine, campaign, wave_key)
    if wave is not None:
        return int(wave.id), str(wave.status)
    with engine.connect() as conn:
        known = conn.execute(
            sa.select(waves.c.key)
            .join(campaigns, campaigns.c.id == waves.c.campaign_id)
            .where(campaigns.c.name == campaign)
            .order_by(waves.c.id.desc())
            .limit(5)
        ).scalars()
        keys = list(known)
    hint = f"; its newest waves: {', '.join(keys)}" if keys else "; it has no waves yet (run it first)"
    raise ApprovalError(f"campaign '{campaign}' has no wave '{wave_key}'{hint}")


def approve(engine: sa.Engine, campaign: str, wave_key: str, *, actor: str) -> Approval:
    """Approve the newest frozen plan of the wave; audited as ``approve``. Raises ``ApprovalError``
    when there is no such wave or nothing waits for approval."""
    wave_id, status = find_wave(engine, campaign, wave_key)
    current = latest(engine, wave_id)
    if current is None:
        raise ApprovalError(
            f"wave '{wave_key}' of campaign '{campaign}' has no frozen plan to approve (status {status}); "
            "only campaigns with `approval: required` wait for approval"
        )
    if current.status == ApprovalStatus.APPROVED:
        raise ApprovalError(
            f"wave '{wave_key}' of campaign '{campaign}' was already approved by {current.decided_by} "
            f"at {current.decided_at}; run it to send"
        )
    if current.status != ApprovalStatus.AWAITING:
        raise ApprovalError(
            f"the plan of wave '{wave_key}' of campaign '{campaign}' is {current.status} ({current.note}); "
            f"run the wave again (`campaign run FILE --wave {wave_key}`) to freeze the new plan, then approve it"
        )
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(approvals)
            .where(approvals.c.id == current.id, approvals.c.status == ApprovalStatus.AWAITING.value)
            .values(status=ApprovalStatus.APPROVED.value, decided_at=utcnow(), decided_by=actor[:200])
        ).rowcount
        if done != 1:  # decided by someone else in the meantime
            raise ApprovalError(f"the plan of wave '{wave_key}' of campaign '{campaign}' was decided meanwhile")
        audit.record(
            conn,
            actor=actor,
            action="approve",
            campaign=campaign,
            subject=f"wave {wave_key}",
            counts={k: int(v) for k, v in current.plan.counts.items()},
            details={"wave": wave_key, "plan_sha256": current.plan_sha256, "rules_sha256": current.plan.rules_sha256},
        )
    approved = latest(engine, wave_id)
    assert approved is not None
    return approved


def treated_sample(engine: sa.Engine, wave_id: int, n: int) -> tuple[list[str], list[str | None], list[str | None]]:
    """Up to ``n`` treated contacts of the wave per (channel, variant), first by customer id:
    their ids, variants and channels (the customers whose messages the approver sees)."""
    from orchestrator.db.tables import Arm, Contact

    contacts = table_of(Contact)
    treated = sa.and_(contacts.c.wave_id == wave_id, contacts.c.arm == Arm.TREATMENT.value)
    ids: list[str] = []
    variants: list[str | None] = []
    channels: list[str | None] = []
    with engine.connect() as conn:
        groups = conn.execute(
            sa.select(contacts.c.channel, contacts.c.variant)
            .where(treated)
            .distinct()
            .order_by(contacts.c.channel, contacts.c.variant)
        ).all()
        for channel, variant in groups:
            rows = conn.execute(
                sa.select(contacts.c.customer_id)
                .where(
                    treated,
                    contacts.c.channel.is_(None) if channel is None else contacts.c.channel == channel,
                    contacts.c.variant.is_(None) if variant is None else contacts.c.variant == variant,
                )
                .order_by(contacts.c.customer_id)
                .limit(n)
            ).scalars()
            for customer_id in rows:
                ids.append(customer_id)
                variants.append(variant)
                channels.append(channel)
    return ids, variants, channels
