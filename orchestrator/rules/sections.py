"""The building blocks of a rules file's sections: names, columns, audience conditions, channel sections.

``ChannelSpec`` is what every channel section of a rules file may say (``eligible``, ``cost``,
``value``, ``template``); ``TaskChannelSpec`` adds the task lists' ``priority`` and ``due_days``.
A channel kind (``orchestrator.rules.kinds``) declares its section as a subclass of one of them.
``spec`` builds the campaign model from these; they live here so that kind modules can use them
without importing ``spec`` (which reads the kinds).
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from orchestrator.rules.condition_parser import CONDITION_TYPES, Condition, condition_to_data, parse_condition
from orchestrator.rules.yaml_source import CUSTOM_ERROR

__all__ = ["COLUMN", "SLUG", "AudienceField", "ChannelSpec", "ColumnName", "TaskChannelSpec"]


# --- audience -----------------------------------------------------------------------------


def _validate_audience(value: object) -> Condition | None:
    if value is None or isinstance(value, CONDITION_TYPES):
        return value
    condition, issues = parse_condition(value, ())
    if issues:
        first = issues[0]
        where = ".".join(str(p) for p in first.loc)
        raise _fail(f"{where + ': ' if where else ''}{first.message}")
    return condition


_AUDIENCE_SCHEMA = {
    "description": (
        "Who the campaign selects: a condition over customer columns, with the keys all/any/not "
        "or column names; omitted = every customer."
    ),
    "anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}],
}

AudienceField = Annotated[
    Condition | None,
    PlainValidator(_validate_audience),
    PlainSerializer(condition_to_data),
    WithJsonSchema(_AUDIENCE_SCHEMA),
]


# --- the campaign -------------------------------------------------------------------------

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _fail(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the campaign manager as it is."""
    return PydanticCustomError(CUSTOM_ERROR, "{message}", {"message": message})


def _slug(what: str, value: str) -> str:
    if not SLUG.match(value):
        raise _fail(
            f"{what} '{value}' is not allowed: use lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit, at most 100 characters"
        )
    return value


def _address(what: str, value: str) -> str:
    _, address = parseaddr(value)
    if " " in address.strip():
        raise _fail(
            f"{what} '{value}' is not an e-mail address; put a name in front of the address in "
            "angle brackets, e.g. 'Acme Bank <offers@acme.example>'"
        )
    if not address or "@" not in address:
        raise _fail(
            f"{what} '{value}' is not an e-mail address; write 'offers@acme.example' or 'Acme <offers@acme.example>'"
        )
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise _fail(f"{what} '{value}' is not a valid e-mail address: {exc}") from exc
    return value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _column(value: str) -> str:
    if not COLUMN.match(value):
        raise _fail(f"'{value}' is not a column name")
    return value


ColumnName = Annotated[str, AfterValidator(_column)]
"""A customer column named in a rules file (checked against the table by ``rules``)."""


class ChannelSpec(_Spec):
    """What every channel of a campaign may say: who is eligible, and what a contact costs and earns.

    Allocation gives each treated customer the eligible channel with the best expected value
    ``score x value - cost`` within the channels' capacities (``rules/capacity.yaml``); see
    docs/allocation.md. Without a scoring model the score is 1.
    """

    eligible: AudienceField = Field(
        None,
        description="Condition a customer must meet to be contacted on this channel, e.g. {phone: {is_null: false}}.",
    )
    cost: float = Field(0.0, ge=0, le=1_000_000, allow_inf_nan=False, description="Cost of one contact, e.g. 4.50.")
    value: float = Field(
        0.0,
        ge=0,
        le=1_000_000_000,
        allow_inf_nan=False,
        description="Value of a contact at score 1 (value of a response times the channel's response rate).",
    )
    template: str = Field(description="Template folder under templates/<channel>/.")

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        return _slug("template name", value)


class TaskChannelSpec(ChannelSpec):
    """Channels whose systems get task lists: priority and due window."""

    priority: int = Field(
        3, strict=True, ge=1, le=5, description="Task priority for the channel system, 1 (highest) to 5."
    )
    due_days: int = Field(
        3, strict=True, ge=1, le=90, description="Days from the wave date within which the task is due."
    )
    name_columns: tuple[ColumnName, ...] = Field(
        (), description="Customer columns that make up the name shown to agents/reps, e.g. [first_name, last_name]."
    )


_ChannelSpec = ChannelSpec  # the names before channel kinds
_TaskChannelSpec = TaskChannelSpec
