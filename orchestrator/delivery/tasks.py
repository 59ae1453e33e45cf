"""Rendering call tasks, visits and webhook messages: customer rows in, ``Outbound`` tasks out.

``TaskBuilder`` renders a ``ContactChunk`` (``orchestrator.ledger.contacts``: customer rows plus
contact id and assignee) with the channel's template (``templates/<channel>/<name>/``) in the
sandbox, and the channel kind's ``builder`` (``call_task``, ``visit_task``, ``message_task`` here, a
``TaskFunction``) fills the structured fields the channel adapters put into their payloads
(``channels/payloads.py``): task id, customer name, phone or rep, priority, due window and
a signed outcome reference the channel system posts back with the outcome. Rows that
cannot become a task (render error, no phone, no rep) are skipped with the reason; nothing
here logs customer data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from itsdangerous import Signer

from channels.base import Outbound
from orchestrator.customers.table import ID_COLUMN
from orchestrator.ledger import contacts as ledger
from orchestrator.rules.kinds import channel_kind, load_target
from orchestrator.rules.spec import CampaignSpec
from orchestrator.settings import Settings
from orchestrator.templates.loader import RenderError, TemplateSet

OUTCOME_SALT = "outcome"
OUTCOME_PATH = "/v1/outcomes"


def task_id(wave_id: int | None, contact_id: int) -> str:
    """The task's id at the channel system: stable per contact of the ledger."""
    return f"w{wave_id or 0}-c{contact_id}"


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a customer value for webhook data."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _joined(row: Mapping[str, Any], columns: tuple[str, ...], sep: str) -> str | None:
    parts = [str(row[c]).strip() for c in columns if row.get(c) not in (None, "")]
    return sep.join(parts) or None


class TaskBuilder:
    """Turns ledger rows into ``Outbound`` tasks for one task channel of one wave."""

    def __init__(
        self,
        settings: Settings,
        spec: CampaignSpec,
        channel: str,
        template: TemplateSet,
        wave_key: str,
        wave_id: int | None,
        as_of: date,
    ):
        self.spec = spec
        self.channel = channel
        self.kind = channel_kind(channel)
        if self.kind.builder is None:
            raise ValueError(f"Channel {channel!r} does not deliver task lists (its kind has no builder).")
        self._build: TaskFunction = load_target(self.kind.builder)
        self.section: Any = spec.channels.section(channel)  # the kind's section model; its builder knows which
        self.template = template
        self.wave_key = wave_key
        self.wave_id = wave_id
        self.as_of = as_of
        self.signer = outcome_signer(settings, preview=wave_id is None)  # previews: refs the API refuses
        self.outcome_url = settings.links.base_url.rstrip("/") + OUTCOME_PATH

    def context(self, customer: Mapping[str, Any]) -> dict:
        """The template context of one contact: its customer columns plus campaign and wave."""
        context = {k: v for k, v in customer.items() if not k.startswith("_")}
        context.update(campaign=self.spec.name, wave=self.wave_key)
        return context

    def render(self, chunk: ledger.ContactChunk) -> tuple[list[dict], list[dict[str, str] | RenderError]]:
        """Contexts and rendered parts (or the error) per contact; the same shape as ``MessageBuilder.render``."""
        contexts = [self.context(customer) for customer in chunk.customers]
        return contexts, self.template.render_many(contexts)

    def build(self, chunk: ledger.ContactChunk) -> tuple[list[Outbound], list[ledger.Outcome]]:
        """Tasks for the contacts of ``chunk`` and the contacts skipped, with why."""
        tasks: list[Outbound] = []
        skipped: list[ledger.Outcome] = []
        for row, contact_id, assignee, parts in zip(
            chunk.customers, chunk.contact_ids, chunk.assignees, self.render(chunk)[1], strict=True
        ):
            if isinstance(parts, RenderError):
                skipped.append(ledger.Outcome(contact_id, "skipped", f"render error: {parts.problem}"))
                continue
            built = self._task(row, contact_id, assignee, parts)
            if isinstance(built, str):
                skipped.append(ledger.Outcome(contact_id, "skipped", built))
            else:
                tasks.append(built)
        return tasks, skipped

    def _task(
        self, row: Mapping[str, Any], contact_id: int, assignee: str | None, parts: dict[str, str]
    ) -> Outbound | str:
        fields: dict[str, object] = {
            "customer_id": row[ID_COLUMN],
            "campaign": self.spec.name,
            "wave": self.wave_key,
            "outcome_ref": self.signer.sign(task_id(self.wave_id, contact_id)).decode(),
            "outcome_url": self.outcome_url,
        }
        return self._build(self, Contact(row, contact_id, assignee), parts, fields)


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact a kind's builder turns into a task: the customer's columns, its ledger id and assignee."""

    customer: Mapping[str, Any]
    id: int
    assignee: str | None  # the rep (territory pools) or endpoint (endpoint pools), else None


TaskFunction = Callable[[TaskBuilder, Contact, dict[str, str], dict[str, object]], Outbound | str]
"""A kind's ``builder``: ``(builder, contact, parts, fields) -> Outbound`` or why the contact is skipped.

``fields`` already holds what every task carries (customer id, campaign, wave, signed outcome
reference and URL); ``builder.section`` is the campaign's section of the channel.
"""


def message_task(builder: TaskBuilder, contact: Contact, parts: dict[str, str], fields: dict) -> Outbound:
    """A message for another system (webhook kind): the customer id as recipient, data columns as data."""
    row = contact.customer
    fields["data"] = {c: _plain(row.get(c)) for c in builder.section.data_columns}
    return Outbound(contact.id, str(row[ID_COLUMN]), parts, task_id(builder.wave_id, contact.id), fields=fields)


def _task_fields(builder: TaskBuilder, row: Mapping[str, Any], fields: dict) -> date:
    section = builder.section
    fields.update(customer_name=_joined(row, section.name_columns, " "), priority=section.priority)
    return builder.as_of + timedelta(days=section.due_days)


def call_task(builder: TaskBuilder, contact: Contact, parts: dict[str, str], fields: dict) -> Outbound | str:
    """A call task (call-center kind): the phone number as recipient, due within ``due_days``."""
    row = contact.customer
    due_to = _task_fields(builder, row, fields)
    phone = row.get(builder.section.phone_column)
    if phone in (None, "") or not str(phone).strip():
        return "no phone number"
    fields.update(phone=str(phone).strip(), due_from=builder.as_of, due_to=due_to)
    return Outbound(contact.id, str(phone).strip(), parts, task_id(builder.wave_id, contact.id), fields=fields)


def visit_task(builder: TaskBuilder, contact: Contact, parts: dict[str, str], fields: dict) -> Outbound | str:
    """A visit (field-force kind): the assigned rep as recipient, with territory and address."""
    row = contact.customer
    due_to = _task_fields(builder, row, fields)
    rep = contact.assignee
    if not rep:
        return "no sales rep assigned"
    if not fields.get("customer_name"):  # the visit list requires it: skip the one customer, not the batch
        return "no customer name"
    section = builder.section
    fields.update(
        rep_id=rep,
        territory=str(row.get(section.territory_column) or ""),
        address=_joined(row, section.address_columns, ", "),
        due_date=due_to,
    )
    return Outbound(contact.id, rep, parts, task_id(builder.wave_id, contact.id), fields=fields)


def outcome_signer(settings: Settings, *, preview: bool = False) -> Signer:
    """Signs outcome references: the task id plus an HMAC, e.g. ``w12-c345.<signature>``.

    The key is derived from the link secret once (itsdangerous' derivation with its own salt),
    then every task is signed with it directly: a million references sign in seconds.
    ``preview``: the key of previews and dry runs, whose references the API never accepts.
    """
    salt = OUTCOME_SALT + (":preview" if preview else "")
    derived = Signer(settings.link_secret(), salt=salt).derive_key()
    return Signer(derived, key_derivation="none")


def read_outcome_ref(settings: Settings, token: str) -> tuple[int, int]:
    """``(wave_id, contact_id)`` of a signed outcome reference; raises ``itsdangerous.BadSignature``."""
    value = outcome_signer(settings).unsign(token).decode()
    wave, _, contact = value.partition("-")
    return int(wave.removeprefix("w")), int(contact.removeprefix("c"))
