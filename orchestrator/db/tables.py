"""Engine tables: campaigns, waves, the contact ledger and delivery attempts.

The contact ledger is the source of truth for who was (or will be) contacted: one row per
wave and customer, unique on both, written in bulk *before* anything is sent. Its status
moves ``pending -> sent | failed | skipped`` (control customers are ``control`` and never
sent). The schema is owned by Alembic (``migrations/``); these classes describe it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def table_of(model: type[SQLModel]) -> sa.Table:
    """The ``sa.Table`` of a SQLModel table class (SQLModel sets ``__table__`` without declaring its type)."""
    table = getattr(model, "__table__", None)
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not a SQLModel table class (declared with table=True)")
    return table


class WaveStatus(StrEnum):
    SELECTING = "selecting"  # created; ledger not written yet
    RECORDED = "recorded"  # ledger written, nothing sent yet
    SENDING = "sending"
    COMPLETED = "completed"  # every treated contact is sent, failed or skipped
    INCOMPLETE = "incomplete"  # some contacts still pending (transient failures); run again
    AWAITING_APPROVAL = "awaiting_approval"  # recorded; nothing is sent until its frozen plan is approved
    WAITING = "waiting"  # the contacts still pending wait for their send window; run again after it opens
    FAILED = "failed"  # the run stopped before the ledger was written (nothing recorded); the next run selects afresh


class ContactStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # permanent failure: never retried
    SKIPPED = "skipped"  # not sendable (e.g. invalid address, render error); reported
    CONTROL = "control"  # random control group: recorded, never sent


class Arm(StrEnum):
    TREATMENT = "treatment"
    CONTROL = "control"  # the campaign's random control group
    GLOBAL_CONTROL = "global_control"  # held out of every campaign


class Campaign(SQLModel, table=True):
    __tablename__ = "campaigns"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, sa_column_kwargs={"unique": True}, nullable=False)
    description: str | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)


class Wave(SQLModel, table=True):
    __tablename__ = "waves"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "key", name="uq_waves_campaign_key"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", nullable=False, index=True)
    key: str = Field(max_length=100, nullable=False, description="Wave label, by default the wave date.")
    status: str = Field(default=WaveStatus.SELECTING, max_length=20, nullable=False)
    rules_sha256: str = Field(max_length=64, nullable=False, description="Digest of the rules file the wave ran.")
    selected: int = Field(default=0, nullable=False)
    control: int = Field(default=0, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    recorded_at: datetime | None = None
    finished_at: datetime | None = None


class Contact(SQLModel, table=True):
    """One row of the contact ledger."""

    __tablename__ = "contacts"
    __table_args__ = (
        sa.UniqueConstraint("wave_id", "customer_id", name="uq_contacts_wave_customer"),
        # a wave's contacts are found through the unique index (wave_id first); the days through a BRIN index
        # on PostgreSQL (contacts are recorded day after day in id order), a B-tree elsewhere (migration 0012_17)
        sa.Index(
            "ix_contacts_planned_for",
            "planned_for",
            postgresql_using="brin",
            postgresql_with={"autosummarize": "on"},
        ),
        # only contacts put in a task list: a wave's COPY inserts none into it (batch_id is NULL then)
        sa.Index(
            "ix_contacts_batch_id",
            "batch_id",
            postgresql_where=sa.text("batch_id IS NOT NULL"),
            sqlite_where=sa.text("batch_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    # no foreign key: PostgreSQL checked it once per row of a wave's COPY; record_contacts locks the wave
    # row in the transaction that writes its contacts, and waves are never deleted (migration 0011_17)
    wave_id: int = Field(nullable=False)
    customer_id: str = Field(max_length=200, nullable=False)
    arm: str = Field(max_length=20, nullable=False)
    variant: str | None = Field(default=None, max_length=50)
    channel: str | None = Field(default=None, max_length=50)
    score: float | None = Field(default=None, description="Model score at selection time, if the campaign uses one.")
    status: str = Field(max_length=20, nullable=False)
    message_id: str | None = Field(default=None, max_length=250)
    detail: str | None = Field(default=None, description="Reason of the last failure or skip (no personal data).")
    attempts: int = Field(default=0, nullable=False)
    # the database's time of the transaction where a row leaves them out (the ledger's COPY does)
    created_at: datetime = Field(
        default_factory=utcnow, nullable=False, sa_column_kwargs={"server_default": sa.func.now()}
    )
    updated_at: datetime = Field(
        default_factory=utcnow, nullable=False, sa_column_kwargs={"server_default": sa.func.now()}
    )
    sent_at: datetime | None = None
    planned_for: date | None = Field(default=None, description="Day whose channel capacity the contact uses.")
    assignee: str | None = Field(default=None, max_length=100, description="Sales rep a visit is assigned to.")
    expected_value: float | None = Field(default=None, description="score x value - cost of the allocated channel.")
    arm_propensity: float | None = Field(
        default=None, description="Probability with which the contact got its arm (treatment, control, global control)."
    )
    channel_propensity: float | None = Field(
        default=None, description="Probability with which the contact got its channel (exploration: learning.explore)."
    )
    eligible_channels: str | None = Field(
        default=None,
        max_length=500,
        description="The campaign's channels the customer was eligible for, comma-separated.",
    )
    send_after: datetime | None = Field(
        default=None,
        description="A pending contact outside its channel's send window: the (UTC) time its next slot opens.",
    )
    batch_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, nullable=True),
        description="Webhook batch it went in.",
    )


class BatchStatus(StrEnum):
    OPEN = "open"  # contacts assigned; not yet accepted by the receiver
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # the receiver rejected it (4xx other than 429): dead-letter store


class DispatchBatch(SQLModel, table=True):
    """One task list POSTed to a channel system: its contacts are fixed before the first try,
    and its ``webhook_id`` is the idempotency key every try (and every re-run) sends."""

    __tablename__ = "dispatch_batches"
    __table_args__ = (
        sa.UniqueConstraint("webhook_id", name="uq_dispatch_batches_webhook_id"),
        sa.Index("ix_dispatch_batches_wave_channel_status", "wave_id", "channel", "status"),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    wave_id: int = Field(foreign_key="waves.id", nullable=False)
    channel: str = Field(max_length=50, nullable=False)
    endpoint: str = Field(max_length=100, nullable=False, description="Settings key of the receiving endpoint.")
    assignee: str | None = Field(default=None, max_length=100, description="Rep of a visit list.")
    seq: int = Field(nullable=False, description="Number of the batch within its wave and channel.")
    webhook_id: str = Field(max_length=100, nullable=False)
    size: int = Field(nullable=False)
    status: str = Field(default=BatchStatus.OPEN, max_length=20, nullable=False)
    attempts: int = Field(default=0, nullable=False, description="Runs that tried it (each run retries with back-off).")
    http_status: int | None = None
    detail: str | None = Field(default=None, description="Why the last try failed (no personal data).")
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, nullable=False)
    delivered_at: datetime | None = None


class ArbitrationLoss(SQLModel, table=True):
    """Customers a campaign selected but lost to another campaign of the same cycle."""

    __tablename__ = "arbitration_losses"
    __table_args__ = (sa.UniqueConstraint("cycle", "campaign", "lost_to", name="uq_arbitration_losses"),)

    id: int | None = Field(default=None, primary_key=True)
    cycle: str = Field(max_length=100, nullable=False, description="Wave key the campaigns ran under together.")
    campaign: str = Field(max_length=200, nullable=False)
    lost_to: str = Field(max_length=200, nullable=False)
    customers: int = Field(nullable=False)
    created_at: datetime = Field(default_factory=utcnow, nullable=False)


class DeliveryAttempt(SQLModel, table=True):
    """One try at delivering one contact through its channel."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    contact_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("contacts.id"), nullable=False, index=True)
    )
    channel: str = Field(max_length=50, nullable=False)
    outcome: str = Field(max_length=20, nullable=False, description="sent, transient or permanent")
    detail: str | None = None
    at: datetime = Field(default_factory=utcnow, nullable=False)


class ModelVersion(SQLModel, table=True):
    """One trained scoring model in the registry (the artefact is a file; this row describes it)."""

    __tablename__ = "model_versions"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, nullable=False, index=True)
    version: int = Field(nullable=False)
    kind: str = Field(default="response", max_length=20, nullable=False, description="response or uplift")
    target: str = Field(max_length=100, nullable=False, description="Outcome column the model predicts.")
    features: list = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    metrics: dict = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    training_rows: int = Field(default=0, nullable=False)
    data_fingerprint: str = Field(max_length=64, nullable=False, description="sha256 of the training data.")
    artefact: str = Field(nullable=False, description="Path of the saved pipeline, relative to the data folder.")
    stage: str = Field(default="champion", max_length=20, nullable=False, description="champion, challenger or retired")
    created_at: datetime = Field(default_factory=utcnow, nullable=False)
    lineage: dict = Field(
        default_factory=dict,
        sa_column=sa.Column(sa.JSON, nullable=False, server_default=sa.text("'{}'")),
        description="Where the version came from: training window, waves, rows, outcome, validation scheme, "
        "code version, parent version (``model_registry`` documents the keys).",
    )
    validation_metric: str | None = Field(default=None, max_length=50, description="e.g. roc_auc or qini_auc")
    validation_score: float | None = Field(default=None, description="The validation_metric on the validation data.")
    promoted_at: datetime | None = Field(default=None, description="When the version last became champion.")


ERASURE_SOURCE = "erasure"
"""``source`` of the ``do_not_contact`` suppression an erasure leaves: imports skip these ids."""


class Suppression(SQLModel, table=True):
    """A customer who must not be contacted on a channel ('*' = every channel), and why."""

    __tablename__ = "suppressions"
    __table_args__ = (
        sa.UniqueConstraint("customer_id", "channel", "reason", name="uq_suppressions_customer_channel_reason"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=200, nullable=False, index=True)
    channel: str = Field(default="*", max_length=50, nullable=False)
    reason: str = Field(
        max_length=30, nullable=False, description="unsubscribed, hard_bounce, complaint, do_not_contact, erased"
    )
    source: str | None = Field(default=None, max_length=200, description="Where the entry came from (file, event).")
    created_at: datetime = Field(default_factory=utcnow, nullable=False)


class ResponseEvent(SQLModel, table=True):
    """One outcome of a contact, reported by a channel system, an e-mail link or an import.

    ``event_id`` is the sender's idempotency key: a repeated event is acknowledged and not
    stored twice (unique per source). ``type`` is the outcome (e.g. ``reached``, ``sale``,
    ``click``); which types count as a response, a conversion or a negative outcome is
    configured per channel (``orchestrator.rules.outcomes``).
    """

    __tablename__ = "response_events"
    __table_args__ = (
        sa.UniqueConstraint("source", "event_id", name="uq_response_events_source_event"),
        sa.Index("ix_response_events_wave_type", "wave_id", "type"),
        sa.Index("ix_response_events_contact", "contact_id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    source: str = Field(
        max_length=100, nullable=False, description="Who reported it: a channel system, 'links' or 'import'."
    )
    event_id: str = Field(max_length=200, nullable=False)
    contact_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    wave_id: int = Field(nullable=False)
    customer_id: str = Field(max_length=200, nullable=False, index=True)
    channel: str | None = Field(default=None, max_length=50)
    type: str = Field(max_length=50, nullable=False)
    value: float | None = Field(default=None, description="Money value of the outcome, e.g. a sale's amount.")
    occurred_at: datetime = Field(nullable=False)
    received_at: datetime = Field(default_factory=utcnow, nullable=False)
    detail: str | None = Field(
        default=None, max_length=500, description="Free text of the channel system (no personal data)."
    )


class Conversion(SQLModel, table=True):
    """A purchase or other goal reached by a customer, imported from the business's systems."""

    __tablename__ = "conversions"
    __table_args__ = (
        sa.UniqueConstraint("customer_id", "occurred_at", "amount", "product", name="uq_conversions_row"),
        sa.Index("ix_conversions_customer_time", "customer_id", "occurred_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    customer_id: str = Field(max_length=200, nullable=False)
    occurred_at: datetime = Field(nullable=False)
    amount: float = Field(default=0.0, nullable=False)
    product: str = Field(default="", max_length=200, nullable=False)
    source: str | None = Field(default=None, max_length=200, description="File it was imported from.")
    imported_at: datetime = Field(default_factory=utcnow, nullable=False)


class AuditEvent(SQLModel, table=True):
    """One thing done to the data, appended and never changed (``orchestrator.db.audit``).

    No personal data: ``actor`` names who asked (a user, a privacy tool's source name, a
    ticket), ``subject`` what was acted on in words that identify no person (e.g. "3 customers"),
    ``counts`` how many rows of what were affected.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_action_time", "action", "occurred_at"),
        sa.Index("ix_audit_events_campaign_time", "campaign", "occurred_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    occurred_at: datetime = Field(default_factory=utcnow, nullable=False)
    actor: str = Field(max_length=200, nullable=False)
    action: str = Field(max_length=50, nullable=False)
    subject: str | None = Field(default=None, max_length=200)
    counts: dict = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    campaign: str | None = Field(default=None, max_length=200, description="The campaign acted on, if any.")
    details: dict | None = Field(
        default=None,
        sa_column=sa.Column(sa.JSON, nullable=True),
        description="Short non-personal facts: digests, wave key, model version, deployment names.",
    )


class ApprovalStatus(StrEnum):
    AWAITING = "awaiting"  # the frozen plan waits for an approver
    APPROVED = "approved"
    VOID = "void"  # the rules file or a template changed after it was frozen or approved


class WaveApproval(SQLModel, table=True):
    """A wave's frozen plan and its approval (``orchestrator.ledger.approvals``): one row per freeze;
    the newest row of a wave is the one that counts."""

    __tablename__ = "wave_approvals"
    __table_args__ = (sa.Index("ix_wave_approvals_wave", "wave_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    wave_id: int = Field(foreign_key="waves.id", nullable=False)
    status: str = Field(default=ApprovalStatus.AWAITING, max_length=20, nullable=False)
    plan_sha256: str = Field(max_length=64, nullable=False, description="Digest of counts, rules and templates.")
    rules_sha256: str = Field(max_length=64, nullable=False)
    templates: dict = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False), description="template -> sha256"
    )
    counts: dict = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False), description="arm / channel -> customers"
    )
    sample_path: str | None = Field(default=None, description="File of the rendered sample messages (0600).")
    sample_sha256: str | None = Field(default=None, max_length=64)
    frozen_at: datetime = Field(default_factory=utcnow, nullable=False)
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=500, description="Why it was voided (no personal data).")
