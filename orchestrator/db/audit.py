"""The audit trail: an append-only table of what was done to the data, for whom to answer later.

``record(conn, actor=, action=, counts=, subject=)`` appends one ``audit_events`` row in the
caller's transaction (so it commits with what it records, or not at all) and returns its id;
``events(engine, action=)`` reads them back, oldest first.

Contract of ``audit_events`` (general; erasures are its first user):

* columns: ``id``, ``occurred_at`` (UTC), ``actor`` (who asked: a user name, an API source, a
  ticket reference; at most 200 characters), ``action`` (a word such as ``erase``), ``subject``
  (what was acted on, in words that identify no person, e.g. "3 customers"), ``counts`` (JSON:
  rows affected per table or kind, whole numbers);
* append-only: the database refuses ``UPDATE`` and ``DELETE`` on it (triggers on SQLite and
  PostgreSQL, migration 0007);
* no personal data: never a customer id, name, address or value from the customer table;
  ``record`` refuses counts that are not whole numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from orchestrator.db.tables import AuditEvent, table_of, utcnow

__all__ = ["Audited", "events", "record"]

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


def record(
    conn: sa.Connection, *, actor: str, action: str, counts: Mapping[str, int], subject: str | None = None
) -> int:
    """Append one audit event in ``conn``'s transaction; its id."""
    if not actor or not actor.strip() or len(actor) > 200:
        raise ValueError(f"The 'actor' of an audit event must be 1 to 200 characters naming who asked. Got {actor!r}.")
    if not action or len(action) > 50:
        raise ValueError(f"The 'action' of an audit event must be a word of at most 50 characters. Got {action!r}.")
    bad = [k for k, v in counts.items() if not isinstance(v, int) or isinstance(v, bool)]
    if bad:
        raise ValueError(f"The counts of an audit event must be whole numbers. Got {bad[0]!r}: {counts[bad[0]]!r}.")
    row = {
        "occurred_at": utcnow(),
        "actor": actor.strip(),
        "action": action,
        "subject": subject,
        "counts": dict(counts),
    }
    return conn.execute(sa.insert(audit_events).returning(audit_events.c.id), row).scalar_one()


def events(engine: sa.Engine, action: str | None = None) -> list[Audited]:
    """The audit events (of ``action``), oldest first."""
    query = sa.select(audit_events).order_by(audit_events.c.id)
    if action is not None:
        query = query.where(audit_events.c.action == action)
    with engine.connect() as conn:
        return [Audited(r.id, r.occurred_at, r.actor, r.action, r.subject, dict(r.counts)) for r in conn.execute(query)]
