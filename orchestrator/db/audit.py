"""The audit trail: an append-only table of what was done to the data, for whom to answer later.

``record(conn, actor=, action=, counts=, subject=, campaign=, details=)`` appends one
``audit_events`` row in the caller's transaction (so it commits with what it records, or not at
all) and returns its id; ``record_now(engine, ...)`` does so in a transaction of its own;
``events(engine, action=, campaign=, since=)`` reads them back, oldest first; ``current_actor()``
is who runs this process (``CAMPAIGN_ACTOR`` if set, else ``os:<user name>``).

Actions recorded (``ACTIONS``): ``validate`` (rules file digest, errors), ``approval-requested``,
``approve``, ``approval-void``, ``wave-start``, ``wave-finish`` (counts per ledger status),
``erase``, ``suppression-import``, ``model-promote``, ``deployment-change``.

Contract of ``audit_events`` (general; erasures are its first user):

* columns: ``id``, ``occurred_at`` (UTC), ``actor`` (who asked: a user name, an API source, a
  ticket reference; at most 200 characters), ``action`` (a word such as ``erase``), ``subject``
  (what was acted on, in words that identify no person, e.g. "3 customers"), ``counts`` (JSON:
  rows affected per table or kind, whole numbers);
* append-only: the database refuses ``UPDATE`` and ``DELETE`` on it (triggers on SQLite and
  PostgreSQL, migration 0007);
* ``campaign`` (the campaign acted on, or none) and ``details`` (JSON: short facts such as
  digests, a wave key, a model version; strings of at most 200 characters or whole numbers);
* no personal data: never a customer id, name, address or value from the customer table;
  ``record`` refuses counts that are not whole numbers and details that are not short facts.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from orchestrator.db.tables import AuditEvent, table_of, utcnow

__all__ = ["ACTIONS", "Audited", "current_actor", "events", "record", "record_now"]

ACTIONS = (
    "validate",
    "approval-requested",
    "approve",
    "approval-void",
    "wave-start",
    "wave-finish",
    "erase",
    "suppression-import",
    "model-promote",
    "deployment-change",
)
"""The actions the engine records (others may be added; ``campaign audit --action`` takes any)."""

ACTOR_ENV = "CAMPAIGN_ACTOR"


def current_actor() -> str:
    """Who runs this process, for the audit trail: ``$CAMPAIGN_ACTOR`` (e.g. set by a deployment's
    worker to its principal), else ``os:<login name>``."""
    given = os.environ.get(ACTOR_ENV, "").strip()
    if given:
        return given[:200]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (e.g. a container user without a passwd entry)
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"os:{user}"[:200]


audit_events = table_of(AuditEvent)


@dataclass(frozen=True, slots=True)
class Audited:
    """One row of ``audit_events``."""

    id: int
    occurred_at: datetime
    actor: str
    action: str
    subject: str | None
    counts: dict[str, int]
    campaign: str | None = None
    details: dict[str, str | int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "campaign": self.campaign,
            "subject": self.subject,
            "counts": self.counts,
            "details": self.details,
        }


def record(
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    counts: Mapping[str, int],
    subject: str | None = None,
    campaign: str | None = None,
    details: Mapping[str, str | int] | None = None,
) -> int:
    """Append one audit event in ``conn``'s transaction; its id."""
    if not actor or not actor.strip() or len(actor) > 200:
        raise ValueError(f"The 'actor' of an audit event must be 1 to 200 characters naming who asked. Got {actor!r}.")
    if not action or len(action) > 50:
        raise ValueError(f"The 'action' of an audit event must be a word of at most 50 characters. Got {action!r}.")
    bad = [k for k, v in counts.items() if not isinstance(v, int) or isinstance(v, bool)]
    if bad:
        raise ValueError(f"The counts of an audit event must be whole numbers. Got {bad[0]!r}: {counts[bad[0]]!r}.")
    details = dict(details or {})
    wrong = [
        k
        for k, v in details.items()
        if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, str) and len(v) > 200)
    ]
    if wrong:
        raise ValueError(
            "The details of an audit event must be whole numbers or strings of at most 200 characters. "
            f"Got {wrong[0]!r}: {details[wrong[0]]!r}."
        )
    if subject is not None and len(subject) > 200:
        subject = subject[:197] + "..."
    row = {
        "occurred_at": utcnow(),
        "actor": actor.strip(),
        "action": action,
        "subject": subject,
        "counts": dict(counts),
        "campaign": campaign,
        "details": details or None,
    }
    return conn.execute(sa.insert(audit_events).returning(audit_events.c.id), row).scalar_one()


def record_now(engine: sa.Engine, **event) -> int:
    """``record`` in a transaction of its own (for actions whose data is already committed)."""
    with engine.begin() as conn:
        return record(conn, **event)


def events(
    engine: sa.Engine,
    action: str | None = None,
    *,
    campaign: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[Audited]:
    """The audit events (of ``action``, ``campaign``, at or after ``since``), oldest first; with
    ``limit`` the newest ``limit`` of them."""
    query = sa.select(audit_events)
    if action is not None:
        query = query.where(audit_events.c.action == action)
    if campaign is not None:
        query = query.where(audit_events.c.campaign == campaign)
    if since is not None:
        query = query.where(audit_events.c.occurred_at >= since)
    if limit is not None:
        query = query.order_by(audit_events.c.id.desc()).limit(limit)
    else:
        query = query.order_by(audit_events.c.id)
    with engine.connect() as conn:
        rows = [
            Audited(
                r.id, r.occurred_at, r.actor, r.action, r.subject, dict(r.counts), r.campaign, dict(r.details or {})
            )
            for r in conn.execute(query)
        ]
    return sorted(rows, key=lambda e: e.id)
