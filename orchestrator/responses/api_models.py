"""The bodies of the response API: what ``POST /v1/outcomes`` and ``POST /v1/erasures`` read and answer.

Pydantic models, shown in ``/openapi.json``: ``OutcomeBatch`` -> ``OutcomeReceipt`` (one ``ItemOut`` per
event, in order), ``ErasureRequest`` -> ``ErasureReceipt``, and ``Problem`` for error answers.
``REQUEST_MODELS`` are the request bodies the app reads raw (signature first) and adds to the schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from orchestrator.responses.ingest import EventIn

__all__ = [
    "REQUEST_MODELS",
    "CustomerId",
    "ErasureReceipt",
    "ErasureRequest",
    "ItemOut",
    "OutcomeBatch",
    "OutcomeReceipt",
    "Problem",
]


class OutcomeBatch(BaseModel):
    """Outcomes of tasks we sent you, in one signed request."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(
        min_length=1, description="The events, at most CAMPAIGN_API_MAX_BATCH (default 10,000) per request."
    )


def _not_blank(value: str) -> str:
    """A customer id is compared stripped (as ``erase`` and the importers strip it), so it needs a
    character that is not whitespace: a vertical tab or a file separator alone names nobody."""
    if not value.strip():
        raise ValueError("a customer id must have a character that is not whitespace")
    return value


CustomerId = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]+$"), AfterValidator(_not_blank)
]


class ErasureRequest(BaseModel):
    """Customers to erase everywhere (the right to erasure), from a privacy tool."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[CustomerId] = Field(
        min_length=1, max_length=10_000, description="The customer ids to erase (at most 10,000 per request)."
    )
    requested_by: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[^\x00]*$",
        description="A ticket or case reference for the audit trail (no personal data).",
    )


class ErasureReceipt(BaseModel):
    """What the erasure did: rows and files affected per kind, and the audit event recorded."""

    audit_id: int = Field(description="The id of the audit event (table audit_events).")
    counts: dict[str, int] = Field(description="Rows and files affected per kind, e.g. contacts_pseudonymised.")


REQUEST_MODELS: list[type[BaseModel]] = [OutcomeBatch, ErasureRequest]
"""Request bodies the app reads raw (signature first) and documents in ``/openapi.json``."""


class ItemOut(BaseModel):
    """What happened to one event."""

    event_id: str | None = Field(
        description="The event's event_id as you sent it; null when the event had no usable event_id (rejected)."
    )
    status: Literal["accepted", "duplicate", "rejected"] = Field(
        description="accepted: stored now; duplicate: stored before (or earlier in this request), not counted twice; "
        "rejected: not stored, see reason (do not resend unchanged)."
    )
    reason: str | None = Field(None, description="Why it was rejected; null otherwise.")


class OutcomeReceipt(BaseModel):
    """Per-event results of one request, in the order of the events."""

    accepted: int = Field(description="Events stored by this request.")
    duplicates: int = Field(description="Events already stored: acknowledged, not counted twice.")
    rejected: int = Field(description="Events not stored (see each item's reason).")
    items: list[ItemOut]


class Problem(BaseModel):
    """An error answer."""

    detail: str = Field(description="What was wrong, and what was expected.")
