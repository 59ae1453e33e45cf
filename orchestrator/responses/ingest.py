"""Recording responses: outcomes posted by channel systems and e-mail links, each stored once.

Contract:

* ``ingest(engine, source, events, settings=, outcomes=, allowed_channels=)`` records a batch
  of ``EventIn`` reported by ``source`` (a channel system named in ``CAMPAIGN_API_SOURCES``,
  or ``"links"`` for the e-mail link endpoints) and returns one ``ItemResult`` per event, in
  order: ``accepted`` (stored now), ``duplicate`` (``(source, event_id)`` was stored before
  or earlier in the same batch: acknowledged, never counted twice) or ``rejected`` with a
  reason. One bad event never loses the others.
* An event names its contact (ledger row) by ``outcome_ref``, the signed task reference of
  our task lists (``orchestrator.delivery.tasks.read_outcome_ref``), or by ``tracking_token``, the
  signed token of our e-mails (``orchestrator.delivery.messages.read_tracking_token``). Reasons to
  reject: the reference's signature does not match (``bad reference``), the contact does not
  exist (``unknown contact``), the contact is on a channel this source may not report on
  (``contact of another channel``), the type is not an outcome of the contact's channel
  (``orchestrator.rules.outcomes.Outcomes.check``, with a did-you-mean).
* Cost per batch: the references are verified in memory, the contacts are looked up in ONE
  query (one bound array/JSON parameter, so any batch size fits), and the accepted events are
  written with ONE bulk ``INSERT ... ON CONFLICT (source, event_id) DO NOTHING RETURNING``
  (PostgreSQL: large batches COPY into a staging table first)
  (SQLite and PostgreSQL); what the insert did not return was there already: a duplicate.
* Side effects, in the same transaction as the events: a new ``unsubscribe``, ``complaint`` or
  ``hard_bounce`` event of an e-mail contact puts the customer on the suppression list for
  ``email`` (reasons ``unsubscribed``, ``complaint``, ``hard_bounce``; an entry already there
  is left as it is, as ``policy.add_suppressions`` does).
* ``unsubscribe(engine, settings, token)`` handles a one-click unsubscribe link (the opaque
  ``unsubscribe`` link token ``MessageBuilder`` makes of ``(wave_id, contact_id)``,
  ``orchestrator.templates.links``): suppression plus an ``unsubscribe`` event of the contact,
  in one transaction, idempotent. A preview's token raises ``PreviewLinkToken``, one older
  than ``links.unsubscribe_days`` ``ExpiredLinkToken`` (both ``InvalidUnsubscribeToken``).
* ``parse_events(items)`` validates raw JSON items one by one: an ``EventIn``, or a
  ``rejected`` ``ItemResult`` naming the field and what was expected (never the value). Text
  fields hold no NUL and no unpaired surrogate (PostgreSQL and UTF-8 refuse both) and are
  bounded in length; ``occurred_at`` lies in 1970..2099 (UTC) once converted, so no date
  overflows on the way into the database.
* Reasons and log lines hold ids of the ledger and counts only, never customer data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from itsdangerous import BadData
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.db.bulk import dialect_insert, insert_new
from orchestrator.db.tables import Contact, ResponseEvent, Suppression, table_of, utcnow
from orchestrator.delivery.tasks import read_outcome_ref
from orchestrator.rules.kinds import kinds
from orchestrator.rules.kinds.email import KIND as EMAIL_KIND
from orchestrator.rules.outcomes import Outcomes
from orchestrator.settings import Settings
from orchestrator.templates.links import ExpiredLinkToken, InvalidLinkToken, LinkTokens, PreviewLinkToken

__all__ = [
    "LINKS_SOURCE",
    "SUPPRESSING_TYPES",
    "EventIn",
    "InvalidUnsubscribeToken",
    "ItemResult",
    "Unsubscribed",
    "ingest",
    "parse_events",
    "read_unsubscribe_token",
    "unsubscribe",
]

log = logging.getLogger(__name__)

LINKS_SOURCE = "links"
"""Source of the events the e-mail link endpoints (open pixel, click, unsubscribe) record."""

SUPPRESSING_TYPES: Mapping[str, str] = EMAIL_KIND.suppressing
"""E-mail outcome types that put the customer on the suppression list, with the reason (every
channel kind declares its own: ``ChannelKind.suppressing``)."""

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""``occurred_at`` must lie in [EARLIEST, LATEST) once converted to UTC."""

contacts = table_of(Contact)
events_table = table_of(ResponseEvent)
suppressions = table_of(Suppression)


class EventIn(BaseModel):
    """One outcome reported by a channel system."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "oneOf": [
                {"required": ["outcome_ref"], "properties": {"outcome_ref": {"type": "string"}}},
                {"required": ["tracking_token"], "properties": {"tracking_token": {"type": "string"}}},
            ],
            "description": "One outcome reported by a channel system: exactly one of outcome_ref or tracking_token.",
        },
    )

    event_id: str = Field(
        min_length=1,
        max_length=200,
        description="Your idempotency key for this event, unique per source. Sending it again is acknowledged "
        "as a duplicate and not counted twice.",
        examples=["cc-2026-03-02-000123"],
    )
    type: str = Field(
        min_length=1,
        max_length=50,
        description="The outcome, one of the contact's channel's outcome types, e.g. call_center: reached, "
        "no_answer, busy, wrong_number, callback, interested, not_interested, appointment, sale.",
        examples=["sale"],
    )
    occurred_at: AwareDatetime = Field(
        description="When it happened: ISO 8601 with a UTC offset, e.g. 2026-03-02T10:15:00+01:00.",
    )
    outcome_ref: str | None = Field(
        None,
        min_length=1,
        max_length=300,
        description="The task's outcome_ref from our task list, unchanged. Give this or tracking_token.",
    )
    tracking_token: str | None = Field(
        None,
        min_length=1,
        max_length=300,
        description="E-mail events (e.g. from an e-mail service): the message's X-Campaign-Token header, unchanged.",
    )
    value: float | None = Field(
        None, allow_inf_nan=False, ge=-1e12, le=1e12, description="Money value of the outcome, e.g. a sale's amount."
    )
    detail: str | None = Field(None, max_length=500, description="Short free text, no personal data.")

    @model_validator(mode="after")
    def _one_reference(self) -> EventIn:
        if (self.outcome_ref is None) == (self.tracking_token is None):
            raise ValueError("give exactly one of outcome_ref (task lists) or tracking_token (e-mails)")
        return self

    @field_validator("event_id", "type", "outcome_ref", "tracking_token", "detail")
    @classmethod
    def _storable_text(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "\x00" in value:
            raise ValueError("must not contain a NUL character (\\u0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (it holds an unpaired surrogate)") from None
        return value

    @field_validator("occurred_at")
    @classmethod
    def _sane_time(cls, value: datetime) -> datetime:
        try:
            utc = value.astimezone(UTC)
        except (OverflowError, ValueError):
            utc = None
        if utc is None or not EARLIEST <= utc < LATEST:
            raise ValueError("must lie between 1970-01-01 and 2099-12-31 (UTC), e.g. 2026-03-02T10:15:00+01:00")
        return utc

    @field_validator("detail")
    @classmethod
    def _empty_detail(cls, value: str | None) -> str | None:
        return value or None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What happened to one event: ``accepted``, ``duplicate`` or ``rejected`` (with the reason)."""

    event_id: str | None  # None: the item had no usable event_id (rejected)
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = None


InvalidUnsubscribeToken = InvalidLinkToken
"""An unsubscribe token that was altered, cut, made with another key, expired or made by a preview."""


def _given_id(item: object) -> str | None:
    """The item's ``event_id`` as given, when it is usable text (to name the item in its result)."""
    value = item.get("event_id") if isinstance(item, dict) else None
    if isinstance(value, str) and 0 < len(value) <= 200 and "\x00" not in value:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return value
    return None


def parse_events(items: Sequence[Any]) -> list[EventIn | ItemResult]:
    """Validate raw (JSON-decoded) events one by one: an ``EventIn`` each, or its rejection.

    The reason names each field that is wrong and what was expected, never the value sent.
    """
    parsed: list[EventIn | ItemResult] = []
    for item in items:
        try:
            parsed.append(EventIn.model_validate(item))
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_url=False, include_input=False, include_context=False)[:5]:
                where = ".".join(str(part) for part in error["loc"]) or "event"
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {message}")
            parsed.append(ItemResult(_given_id(item), "rejected", "invalid event: " + "; ".join(problems)))
    return parsed


def _resolved(settings: Settings) -> Settings:
    """``settings`` with the link secret read once (it may live in a file in the data folder)."""
    if settings.links.secret_key is not None:
        return settings
    links = settings.links.model_copy(update={"secret_key": SecretStr(settings.link_secret())})
    return settings.model_copy(update={"links": links})


def _reference(settings: Settings, tokens: LinkTokens, event: EventIn) -> tuple[int, int] | str:
    """``(wave_id, contact_id)`` the event names, or why it names none."""
    if event.outcome_ref is not None:
        try:
            return read_outcome_ref(settings, event.outcome_ref)
        except (BadData, ValueError):
            return (
                "bad reference: the outcome_ref's signature does not match; post it back unchanged from the task list"
            )
    try:
        return tokens.read("tracking", event.tracking_token or "", max_age_days=settings.links.tracking_days)
    except PreviewLinkToken:
        return "preview: the tracking_token comes from a preview or dry run and names no real contact"
    except ExpiredLinkToken as exc:
        return f"expired: {exc}"
    except InvalidLinkToken:
        return "bad reference: the tracking_token's signature does not match; post it back unchanged from the e-mail"


def _contacts_by_id(conn: sa.Connection, ids: Sequence[int]) -> dict[int, tuple[int, str, str | None]]:
    """``contact_id -> (wave_id, customer_id, channel)`` of ``ids``, in one query with one parameter."""
    if not ids:
        return {}
    query = sa.select(contacts.c.id, contacts.c.wave_id, contacts.c.customer_id, contacts.c.channel)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        query = query.where(contacts.c.id == sa.any_(sa.bindparam("ids", list(ids), type_=ARRAY(sa.BigInteger))))
    else:
        listed = sa.func.json_each(sa.bindparam("ids", json.dumps(list(ids)), type_=sa.String)).table_valued("value")
        query = query.where(contacts.c.id.in_(sa.select(listed.c.value)))
    return {row.id: (row.wave_id, row.customer_id, row.channel) for row in conn.execute(query)}


def _store(conn: sa.Connection, rows: list[dict]) -> set[str]:
    """Insert ``rows`` into ``response_events``, skipping (source, event_id) already there; the new event ids."""
    if not rows:
        return set()
    if conn.dialect.name == "postgresql" and len(rows) > 100:
        # COPY into a staging table, then one INSERT ... SELECT: psycopg spends most of a large
        # multi-row VALUES insert converting the query text.
        columns = list(rows[0])
        new = insert_new(
            conn,
            events_table,
            columns,
            ([row[c] for c in columns] for row in rows),
            key=["source", "event_id"],
            returning="event_id",
        )
        return set(new)
    statement = dialect_insert(conn, events_table).on_conflict_do_nothing(index_elements=["source", "event_id"])
    return set(conn.execute(statement.returning(events_table.c.event_id), rows).scalars())


def _suppress(conn: sa.Connection, entries: list[tuple[str, str, str]], source: str) -> int:
    """Put ``(customer_id, channel, reason)`` on the suppression list; entries already there stay as they are."""
    if not entries:
        return 0
    now = utcnow()
    rows = [
        {"customer_id": customer, "channel": channel, "reason": reason, "source": source[:200], "created_at": now}
        for customer, channel, reason in dict.fromkeys(entries)
    ]
    statement = dialect_insert(conn, suppressions).on_conflict_do_nothing(
        index_elements=["customer_id", "channel", "reason"]
    )
    return len(conn.execute(statement.returning(suppressions.c.id), rows).all())


def ingest(
    engine: sa.Engine,
    source: str,
    events: Sequence[EventIn],
    *,
    settings: Settings,
    outcomes: Outcomes,
    allowed_channels: Sequence[str],
) -> list[ItemResult]:
    """Record ``events`` reported by ``source``; one ``ItemResult`` per event, in order.

    ``allowed_channels``: the channels whose contacts ``source`` may report on (an API
    source's ``channels``, or its own name). ``settings`` gives the link secret the
    references are verified with.
    """
    if not source or len(source) > 100:
        raise ValueError(
            f"The 'source' parameter of ingest must be a name of 1 to 100 characters. Got {source!r} instead."
        )
    settings = _resolved(settings)
    allowed = frozenset(allowed_channels)
    suppressing = {kind.name: kind.suppressing for kind in kinds()}
    results: list[ItemResult | None] = [None] * len(events)
    named: dict[int, tuple[int, int]] = {}
    tokens = LinkTokens(settings.link_secret())
    for i, event in enumerate(events):
        reference = _reference(settings, tokens, event)
        if isinstance(reference, str):
            results[i] = ItemResult(event.event_id, "rejected", reference)
        else:
            named[i] = reference
    received = utcnow()
    with engine.begin() as conn:
        found = _contacts_by_id(conn, sorted({contact for _, contact in named.values()}))
        rows: list[dict] = []
        pending: dict[str, int] = {}  # event_id -> index of its first accepted item in this batch
        suppress_on: dict[str, tuple[str, str, str]] = {}
        for i, (wave_id, contact_id) in named.items():
            event = events[i]
            contact = found.get(contact_id)
            if contact is None or contact[0] != wave_id:
                results[i] = ItemResult(
                    event.event_id, "rejected", f"unknown contact: no contact {contact_id} in wave {wave_id}"
                )
                continue
            _, customer_id, channel = contact
            if channel not in allowed:
                results[i] = ItemResult(
                    event.event_id,
                    "rejected",
                    f"contact of another channel: contact {contact_id} is on {channel or 'no channel'}; "
                    f"source {source} reports on {', '.join(sorted(allowed)) or 'no channel'}",
                )
                continue
            problem = outcomes.check(channel, event.type)
            if problem is not None:
                results[i] = ItemResult(event.event_id, "rejected", problem)
                continue
            if event.event_id in pending:
                results[i] = ItemResult(event.event_id, "duplicate")
                continue
            pending[event.event_id] = i
            rows.append(
                {
                    "source": source,
                    "event_id": event.event_id,
                    "contact_id": contact_id,
                    "wave_id": wave_id,
                    "customer_id": customer_id,
                    "channel": channel,
                    "type": event.type,
                    "value": event.value,
                    "occurred_at": event.occurred_at,
                    "received_at": received,
                    "detail": event.detail,
                }
            )
            reason = suppressing.get(channel, {}).get(event.type)
            if reason is not None:  # e.g. an e-mail unsubscribe: the channel's kind says which types suppress
                suppress_on[event.event_id] = (customer_id, channel, reason)
        stored = _store(conn, rows)
        _suppress(conn, [entry for event_id, entry in suppress_on.items() if event_id in stored], f"response:{source}")
    for event_id, i in pending.items():
        results[i] = ItemResult(event_id, "accepted" if event_id in stored else "duplicate")
    done = [r for r in results if r is not None]
    assert len(done) == len(events)
    log.info(
        "source %s: %d events, %d accepted, %d duplicates, %d rejected",
        source,
        len(done),
        sum(r.status == "accepted" for r in done),
        sum(r.status == "duplicate" for r in done),
        sum(r.status == "rejected" for r in done),
    )
    return done


def read_unsubscribe_token(settings: Settings, token: str) -> tuple[int, int]:
    """``(wave_id, contact_id)`` of an unsubscribe link's token; raises ``InvalidUnsubscribeToken``.

    ``PreviewLinkToken`` for a preview's token, ``ExpiredLinkToken`` after ``links.unsubscribe_days``.
    """
    return LinkTokens(settings.link_secret()).read("unsubscribe", token, max_age_days=settings.links.unsubscribe_days)


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """What ``unsubscribe`` did: a new suppression entry or not, and the event recorded (if the contact exists)."""

    suppressed: bool
    event: ItemResult | None


def unsubscribe(
    engine: sa.Engine, settings: Settings, token: str, *, occurred_at: datetime | None = None
) -> Unsubscribed:
    """Suppress the customer of an unsubscribe token on e-mail and record an ``unsubscribe`` event of the contact.

    Both in one transaction; repeating it changes nothing. Raises ``InvalidUnsubscribeToken``
    (also when the token's contact is not in the ledger). The event has source ``links`` and
    event id ``unsubscribe-w<wave>-c<contact>``.
    """
    wave_id, contact_id = read_unsubscribe_token(settings, token)
    now = utcnow()
    with engine.begin() as conn:
        contact = conn.execute(
            sa.select(contacts.c.customer_id, contacts.c.channel).where(
                contacts.c.id == contact_id, contacts.c.wave_id == wave_id
            )
        ).first()
        if contact is None:
            raise InvalidUnsubscribeToken(
                f"The unsubscribe token names contact {contact_id} of wave {wave_id}, which the ledger does not hold."
            )
        entry = (contact.customer_id, EMAIL_KIND.name, EMAIL_KIND.suppressing["unsubscribe"])
        added = _suppress(conn, [entry], f"{LINKS_SOURCE}: unsubscribe link")
        event_id = f"unsubscribe-w{wave_id}-c{contact_id}"
        stored = _store(
            conn,
            [
                {
                    "source": LINKS_SOURCE,
                    "event_id": event_id,
                    "contact_id": contact_id,
                    "wave_id": wave_id,
                    "customer_id": contact.customer_id,
                    "channel": contact.channel,
                    "type": "unsubscribe",
                    "value": None,
                    "occurred_at": occurred_at or now,
                    "received_at": now,
                    "detail": None,
                }
            ],
        )
    log.info("unsubscribe link: contact %d, %s", contact_id, "recorded" if stored else "already recorded")
    return Unsubscribed(bool(added), ItemResult(event_id, "accepted" if stored else "duplicate"))
