"""What webhook receivers get: versioned task lists, one pydantic model each.

Each list is POSTed as one JSON document per batch (see ``docs/channels.md``):

* ``CallTaskList`` (``type: "call_center.task_list"``): calls for the call center;
* ``VisitList`` (``type: "field_force.visit_list"``): visits for ONE field-force rep;
* ``MessageList`` (``type: "webhook.message_list"``): messages for any other system.

``type`` and ``version`` identify the shape; any change to a model is a new ``version``
(the models forbid unknown fields, so the schemas are closed). The JSON Schemas in
``docs/schemas/<type>.v<version>.json`` are generated from these models by
``python -m channels.payloads`` (``write_schemas``); a test fails when they drift.

Ids (``customer_id``, ``wave``) are strings; numbers given for them are turned into
strings. Dates are ``YYYY-MM-DD``, ``created_at`` an ISO 8601 timestamp with offset.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "LIST_MODELS",
    "SCHEMA_DIR",
    "CallTask",
    "CallTaskList",
    "Message",
    "MessageList",
    "Payload",
    "VisitList",
    "VisitTask",
    "json_schemas",
    "parse_payload",
    "schema_filename",
    "write_schemas",
]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"
"""Where ``write_schemas`` puts the generated JSON Schemas by default."""


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, coerce_numbers_to_str=True, json_schema_serialization_defaults_required=True
    )


# -- fields shared by every task ---------------------------------------------------------

TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        description="Our id of the task, stable per wave and customer; the same task always has the same id.",
    ),
]
CustomerId = Annotated[str, Field(min_length=1, max_length=256, description="Our customer id.")]
Campaign = Annotated[str, Field(min_length=1, description="Name of the campaign the task belongs to.")]
Wave = Annotated[str, Field(min_length=1, description="Key of the campaign wave the task belongs to (e.g. its date).")]
OutcomeRef = Annotated[
    str,
    Field(
        min_length=1,
        description=(
            "Signed reference to this task; post it back unchanged with the outcome "
            "(reached, not reached, interested, ...) so it is attributed to this contact."
        ),
    ),
]
OutcomeUrl = Annotated[
    str | None,
    Field(None, description="URL to post the outcome to, with outcome_ref; unset when outcomes are not collected."),
]
Priority = Annotated[int, Field(description="Priority of the task; higher numbers first.")]
Title = Annotated[str | None, Field(None, description="One-line title shown in task lists; unset: none.")]
BatchId = Annotated[
    str,
    Field(
        min_length=1,
        description=(
            "Id of this list, equal to the webhook-id header; a list sent again (retry or re-run) "
            "has the same id and must be processed once."
        ),
    ),
]
CreatedAt = Annotated[AwareDatetime, Field(description="When this list was built (ISO 8601 with offset).")]


# -- call center ---------------------------------------------------------------------------


class CallTask(_Model):
    """One call for the call center to make."""

    task_id: TaskId
    customer_id: CustomerId
    customer_name: str | None = Field(None, description="Name to greet the customer with; unset when unknown.")
    phone: str = Field(min_length=1, description="Phone number to call, as stored for the customer (E.164 preferred).")
    priority: Priority
    due_from: date = Field(description="First day the call may be made (YYYY-MM-DD).")
    due_to: date = Field(description="Last day the call may be made (YYYY-MM-DD), inclusive.")
    title: Title
    script: str = Field(min_length=1, description="The call script, rendered for this customer (plain text).")
    campaign: Campaign
    wave: Wave
    outcome_ref: OutcomeRef
    outcome_url: OutcomeUrl


class CallTaskList(_Model):
    """A batch of calls for the call center, POSTed as one request."""

    type: Literal["call_center.task_list"] = Field(
        "call_center.task_list", description="Kind of document: always 'call_center.task_list'."
    )
    version: Literal[1] = Field(1, description="Version of this document's shape.")
    batch_id: BatchId
    campaign: Campaign
    wave: Wave
    created_at: CreatedAt
    tasks: list[CallTask] = Field(description="The calls to make, one per customer.")


# -- field force -----------------------------------------------------------------------------


class VisitTask(_Model):
    """One visit for a field-force rep to make."""

    task_id: TaskId
    customer_id: CustomerId
    customer_name: str = Field(min_length=1, description="Name of the customer (person or business) to visit.")
    address: str | None = Field(None, description="Address to visit, one line; unset: the rep's CRM record holds it.")
    territory: str = Field(min_length=1, description="Sales territory the customer belongs to.")
    priority: Priority
    due_date: date = Field(description="Day by which the visit should be made (YYYY-MM-DD).")
    title: Title
    brief: str = Field(min_length=1, description="The visit brief, rendered for this customer (plain text).")
    campaign: Campaign
    wave: Wave
    outcome_ref: OutcomeRef
    outcome_url: OutcomeUrl


class VisitList(_Model):
    """The visits of one rep from one batch, POSTed as one request."""

    type: Literal["field_force.visit_list"] = Field(
        "field_force.visit_list", description="Kind of document: always 'field_force.visit_list'."
    )
    version: Literal[1] = Field(1, description="Version of this document's shape.")
    batch_id: BatchId
    rep_id: str = Field(min_length=1, description="Id of the rep who makes every visit of this list.")
    territory: str = Field(min_length=1, description="Territory of the rep (of the list's first visit).")
    created_at: CreatedAt
    visits: list[VisitTask] = Field(description="The visits to make, one per customer.")


# -- generic webhook -------------------------------------------------------------------------


class Message(_Model):
    """One message for a generic webhook receiver (CRM, app push service, ...)."""

    task_id: TaskId
    customer_id: CustomerId
    recipient: str = Field(
        min_length=1, description="Address of the message on the receiving system (e.g. customer id)."
    )
    title: Title
    text: str = Field(min_length=1, description="The message text, rendered for this customer (plain text).")
    campaign: Campaign
    wave: Wave
    outcome_ref: OutcomeRef
    outcome_url: OutcomeUrl
    data: dict[str, Any] = Field(
        default_factory=dict, description="Further values for the receiver, as the campaign defines them."
    )


class MessageList(_Model):
    """A batch of messages for one generic webhook endpoint, POSTed as one request."""

    type: Literal["webhook.message_list"] = Field(
        "webhook.message_list", description="Kind of document: always 'webhook.message_list'."
    )
    version: Literal[1] = Field(1, description="Version of this document's shape.")
    batch_id: BatchId
    endpoint: str = Field(
        min_length=1, description="Name of the endpoint (as configured in the engine) the list is for."
    )
    created_at: CreatedAt
    messages: list[Message] = Field(description="The messages, one per customer.")


# -- all lists ----------------------------------------------------------------------------------

LIST_MODELS: tuple[type[CallTaskList] | type[VisitList] | type[MessageList], ...] = (
    CallTaskList,
    VisitList,
    MessageList,
)
"""Every list model a receiver may get."""

Payload = Annotated[CallTaskList | VisitList | MessageList, Field(discriminator="type")]
"""Any list, told apart by its ``type``."""

_PAYLOAD: TypeAdapter[CallTaskList | VisitList | MessageList] = TypeAdapter(Payload)


def parse_payload(body: bytes | str) -> CallTaskList | VisitList | MessageList:
    """The list in a JSON ``body``; raises ``pydantic.ValidationError`` when it is not one."""
    return _PAYLOAD.validate_json(body)


def _type_of(model: type[BaseModel]) -> str:
    return model.model_fields["type"].default


def schema_filename(model: type[BaseModel]) -> str:
    """``"call_center.task_list.v1.json"`` for ``CallTaskList``."""
    return f"{_type_of(model)}.v{model.model_fields['version'].default}.json"


def json_schemas() -> dict[str, str]:
    """File name -> JSON Schema text of every list model, as ``write_schemas`` writes them."""
    out: dict[str, str] = {}
    for model in LIST_MODELS:
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **model.model_json_schema(mode="serialization"),
        }
        out[schema_filename(model)] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return out


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Write every list model's JSON Schema into ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in json_schemas().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(path)
