"""The contact policy as SQL: who may be contacted on a channel on a wave date.

Contract:

* ``policy_filters(policy, channel=, as_of=, customer_table=)`` returns named conditions over
  the customer table, in a fixed order: consent, suppression, frequency caps, cool-down. Each
  stands alone (a correlated ``NOT EXISTS`` on ``suppressions`` or on the ledger's customers
  at a cap, with bound parameters), is never NULL, and runs in the database on SQLite and
  PostgreSQL. The caller ANDs them with the audience; ``explain`` counts what each removes.
* Frequency caps count ledger contacts of every campaign with status ``sent`` and ``sent_at``
  on or after midnight UTC of ``as_of - days``; a cap with a channel counts that channel only
  and applies only to waves on that channel. A customer at the cap is not contacted again.
* The cool-down counts ``complaint`` entries of the suppression list on any channel created
  on or after ``as_of - complaint_days``, whether or not ``complaint`` is a blocking reason.
* ``blocked_day(policy, as_of)`` says why a wave date is blocked, or ``None``.
* ``is_global_control(ids, policy)`` marks the customers held out of every campaign with the
  same salted hash as campaign control groups (``control.hash_positions``).
* ``import_suppressions`` / ``add_suppressions`` write the suppression list in bulk; an entry
  already there (same customer, channel and reason) is left as it is, so both are idempotent.

The policy file format is in ``orchestrator.rules.policy_spec``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlmodel.sql.sqltypes import UTCDateTime

from orchestrator.customers.table import ID_COLUMN
from orchestrator.db import audit
from orchestrator.db.bulk import bulk_insert
from orchestrator.db.tables import Arm, Contact, ContactStatus, Suppression, table_of, utcnow
from orchestrator.rules.policy_spec import (
    ALL_CHANNELS,
    REASONS,
    WEEKDAYS,
    PolicySpec,
    check_policy,
    load_policy,
    merge_policy,
)
from orchestrator.targeting.control import hash_positions

__all__ = [
    "Filter",
    "SuppressionImport",
    "SuppressionRow",
    "add_suppressions",
    "blocked_day",
    "check_policy",
    "import_suppressions",
    "is_global_control",
    "load_policy",
    "merge_policy",
    "policy_filters",
    "suppression_counts",
]

contacts = table_of(Contact)
suppressions = table_of(Suppression)

Filter = tuple[str, sa.ColumnElement[bool]]
"""A named condition: customers for whom it is true may be contacted."""

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def policy_filters(policy: PolicySpec | None, *, channel: str, as_of: date, customer_table: sa.Table) -> list[Filter]:
    """The policy's conditions for contacting customers on ``channel`` on ``as_of``, named, in order."""
    if policy is None:
        return []
    customer_id = customer_table.c[ID_COLUMN]
    filters: list[Filter] = []

    column = policy.consent.get(channel)
    if column is not None:
        if column not in customer_table.c:
            raise ValueError(
                f"The consent column '{column}' for channel {channel} is not a column of the customer table "
                f"'{customer_table.name}'. Check the policy with `campaign policy check`."
            )
        filters.append((f"consent ({column})", customer_table.c[column].is_(sa.true())))

    if policy.suppression.reasons:
        blocked = sa.exists().where(
            suppressions.c.customer_id == customer_id,
            suppressions.c.channel.in_([channel, ALL_CHANNELS]),
            suppressions.c.reason.in_(list(policy.suppression.reasons)),
        )
        filters.append(("suppressed", ~blocked))

    for cap in policy.frequency_caps:
        if cap.channel is not None and cap.channel != channel:
            continue
        start = as_of - timedelta(days=cap.days)
        # A contact counts on the day of its wave (planned_for): sent ones, and the campaign's random
        # control customers as "virtual contacts", so that caps filter treated and control customers
        # alike and later waves' control groups stay comparable. Contacts recorded before waves had
        # a day count by their send time.
        counted = sa.select(contacts.c.customer_id).where(
            sa.or_(
                sa.and_(
                    contacts.c.planned_for.is_not(None),
                    contacts.c.planned_for >= start,
                    contacts.c.planned_for <= as_of,
                    sa.or_(
                        contacts.c.status == ContactStatus.SENT,
                        sa.and_(contacts.c.status == ContactStatus.CONTROL, contacts.c.arm == Arm.CONTROL.value),
                    ),
                ),
                sa.and_(
                    contacts.c.planned_for.is_(None),
                    contacts.c.status == ContactStatus.SENT,
                    contacts.c.sent_at >= _start_of(start),
                ),
            )
        )
        if cap.channel is not None:
            counted = counted.where(contacts.c.channel == cap.channel)
        # Customers at the cap, computed once; NOT EXISTS over it plans as an anti join.
        at_cap = counted.group_by(contacts.c.customer_id).having(sa.func.count() >= cap.max).subquery("at_cap")
        scope = f" {cap.channel}" if cap.channel else ""
        condition = ~sa.exists().where(at_cap.c.customer_id == customer_id)
        filters.append((f"frequency cap{scope} {cap.max} in {cap.days} days", condition))

    if policy.cooldown.complaint_days is not None:
        complained = sa.exists().where(
            suppressions.c.customer_id == customer_id,
            suppressions.c.reason == "complaint",
            suppressions.c.created_at >= _start_of(as_of - timedelta(days=policy.cooldown.complaint_days)),
        )
        filters.append(("cool-down after complaint", ~complained))
    return filters


def blocked_day(policy: PolicySpec | None, as_of: date) -> str | None:
    """Why nobody may be contacted on ``as_of`` (a blocked date or weekday), or ``None``."""
    if policy is None:
        return None
    if as_of in policy.blocked_days.dates:
        return f"{as_of.isoformat()} is a blocked date in the contact policy"
    if WEEKDAYS[as_of.weekday()] in policy.blocked_days.weekdays:
        return f"{as_of.isoformat()} is a {_DAY_NAMES[as_of.weekday()]}, a blocked weekday in the contact policy"
    return None


def is_global_control(customer_ids: Sequence[str], policy: PolicySpec | None) -> np.ndarray:
    """True where the customer is in the global control group (held out of every campaign)."""
    spec = policy.global_control if policy is not None else None
    if spec is None or spec.share == 0.0 or len(customer_ids) == 0:
        return np.zeros(len(customer_ids), dtype=bool)
    return hash_positions(customer_ids, spec.salt) < spec.share


# --- the suppression list -------------------------------------------------------------------


class SuppressionRow(NamedTuple):
    """One entry for ``add_suppressions``; ``created_at`` defaults to now."""

    customer_id: str
    reason: str
    channel: str = ALL_CHANNELS
    source: str | None = None
    created_at: datetime | None = None


@dataclass
class SuppressionImport:
    """What ``import_suppressions`` did: ids read, entries added, entries already there."""

    rows_read: int = 0
    ids: int = 0
    added: int = 0
    already_present: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)


_MAX_ID = 200
_MAX_SOURCE = 200


def _check_reason_channel(reason: str, channel: str) -> None:
    if reason not in REASONS:
        raise ValueError(f"The suppression reason must be one of {', '.join(REASONS)}. Got {reason!r} instead.")
    if not channel or len(channel) > 50:
        raise ValueError(
            f"The suppression channel must be a channel name or '*' (every channel). Got {channel!r} instead."
        )


def import_suppressions(
    engine: sa.Engine,
    path: Path,
    reason: str,
    channel: str = ALL_CHANNELS,
    source: str | None = None,
    *,
    actor: str | None = None,
) -> SuppressionImport:
    """Add every customer id in the CSV file ``path`` to the suppression list, in bulk.

    The ids are the ``customer_id`` column when the first line names one, else the first
    column of every line. Empty lines are skipped; ids too long are reported by line number.
    ``source`` defaults to the file name. The import is an audit event (``suppression-import``:
    ``actor`` or the user running it, counts, reason and channel; never an id) in the same transaction.
    """
    _check_reason_channel(reason, channel)
    source = (source or Path(path).name)[:_MAX_SOURCE]
    report = SuppressionImport()
    ids: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = csv.reader(handle)
        column = 0
        for line, row in enumerate(rows, start=1):
            values = [v.strip() for v in row]
            if line == 1:
                lowered = [v.lower() for v in values]
                if ID_COLUMN in lowered:
                    column = lowered.index(ID_COLUMN)
                    continue
            if not any(values):
                continue
            report.rows_read += 1
            value = values[column] if column < len(values) else ""
            if not value:
                report.bad_rows.append((line, f"no customer id in column {column + 1}"))
            elif len(value) > _MAX_ID:
                report.bad_rows.append((line, f"the customer id is longer than {_MAX_ID} characters"))
            else:
                ids.add(value)
    report.ids = len(ids)
    staging = sa.Table(
        "tmp_suppression_ids", sa.MetaData(), sa.Column("customer_id", sa.String(_MAX_ID)), prefixes=["TEMPORARY"]
    )
    with engine.begin() as conn:
        staging.create(conn)
        bulk_insert(conn, staging.name, ["customer_id"], ((i,) for i in ids))
        fixed = sa.select(
            staging.c.customer_id,
            sa.literal(channel, suppressions.c.channel.type),
            sa.literal(reason, suppressions.c.reason.type),
            sa.literal(source, suppressions.c.source.type),
            sa.literal(utcnow(), UTCDateTime()),
        )
        report.added = _insert_new(conn, fixed)
        staging.drop(conn)
        report.already_present = report.ids - report.added
        audit.record(
            conn,
            actor=actor or audit.current_actor(),
            action="suppression-import",
            subject="suppression list",
            counts={
                "rows_read": report.rows_read,
                "ids": report.ids,
                "added": report.added,
                "already_present": report.already_present,
                "bad_rows": len(report.bad_rows),
            },
            details={"reason": reason, "channel": channel},
        )
    return report


def add_suppressions(engine: sa.Engine, rows: Iterable[SuppressionRow | tuple]) -> int:
    """Add entries to the suppression list in bulk; returns how many were new."""
    now = utcnow()
    values = []
    for row in rows:
        row = SuppressionRow(*row)
        _check_reason_channel(row.reason, row.channel)
        values.append(
            {
                "customer_id": row.customer_id,
                "channel": row.channel,
                "reason": row.reason,
                "source": row.source,
                "created_at": row.created_at or now,
            }
        )
    if not values:
        return 0
    staging = sa.Table(
        "tmp_suppression_rows",
        sa.MetaData(),
        sa.Column("customer_id", sa.String(_MAX_ID)),
        sa.Column("channel", sa.String(50)),
        sa.Column("reason", sa.String(30)),
        sa.Column("source", sa.String(_MAX_SOURCE)),
        sa.Column("created_at", UTCDateTime()),
        prefixes=["TEMPORARY"],
    )
    with engine.begin() as conn:
        staging.create(conn)
        conn.execute(staging.insert(), values)
        added = _insert_new(conn, sa.select(*staging.c))
        staging.drop(conn)
    return added


def _insert_new(conn: sa.Connection, rows: sa.Select) -> int:
    """Insert ``rows`` (customer_id, channel, reason, source, created_at) not yet in the list."""
    staged = rows.subquery()
    c = list(staged.c)
    # One row per key (duplicates in the input), skipping keys already in the list.
    first = (
        sa.select(c[0], c[1], c[2], sa.func.min(c[3]), sa.func.min(c[4]))
        .group_by(c[0], c[1], c[2])
        .where(
            ~sa.exists().where(
                suppressions.c.customer_id == c[0], suppressions.c.channel == c[1], suppressions.c.reason == c[2]
            )
        )
    )
    columns = ["customer_id", "channel", "reason", "source", "created_at"]
    # ON CONFLICT DO NOTHING covers entries added concurrently since the check above.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement = postgresql.insert(suppressions).from_select(columns, first).on_conflict_do_nothing()
        # psycopg reports no row count for INSERT ... SELECT here: count what RETURNING gives.
        added = statement.returning(suppressions.c.id).cte("added")
        return conn.execute(sa.select(sa.func.count()).select_from(added)).scalar_one()
    from sqlalchemy.dialects import sqlite

    return conn.execute(sqlite.insert(suppressions).from_select(columns, first).on_conflict_do_nothing()).rowcount


def suppression_counts(engine: sa.Engine, reason: str | None = None) -> list[tuple[str, str, int]]:
    """``(reason, channel, customers)`` of the suppression list, sorted; no customer data."""
    query = (
        sa.select(suppressions.c.reason, suppressions.c.channel, sa.func.count())
        .group_by(suppressions.c.reason, suppressions.c.channel)
        .order_by(suppressions.c.reason, suppressions.c.channel)
    )
    if reason is not None:
        query = query.where(suppressions.c.reason == reason)
    with engine.connect() as conn:
        return [(r, ch, n) for r, ch, n in conn.execute(query)]
