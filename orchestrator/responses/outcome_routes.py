"""``POST /v1/outcomes``: outcome batches from the channel systems, signed with a source's secret.

``outcome_routes(app, engine, settings, outcomes, sources, verify)`` adds the route: the signature is
checked first (``webhook_auth``), then ``envelope`` reads ``{"events": [...]}`` (422 for anything else,
more than ``CAMPAIGN_API_MAX_BATCH`` items included) and every event is validated and stored or
rejected on its own (``ingest.parse_events``, ``ingest.ingest``) on a worker thread; the answer is an
``OutcomeReceipt`` with one item per event, in order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from orchestrator.responses.api_docs import OUTCOME_EXAMPLES, SIGNED_ANSWERS, signed_json_body
from orchestrator.responses.api_models import ItemOut, OutcomeReceipt
from orchestrator.responses.ingest import EventIn, ItemResult, ingest, parse_events
from orchestrator.responses.webhook_auth import Sources, signed_request
from orchestrator.rules.outcomes import Outcomes
from orchestrator.settings import Settings

__all__ = ["envelope", "outcome_routes"]


def envelope(body: bytes, key: str, max_items: int, setting: str) -> list[Any]:
    """The items of ``{key: [...]}`` in ``body``; ``RequestValidationError`` (422) for anything else."""

    def invalid(kind: str, message: str, loc: tuple = ("body",)) -> RequestValidationError:
        return RequestValidationError([{"type": kind, "loc": loc, "msg": message}])

    try:  # the standard parser: it keeps an escaped lone surrogate, which the item's validation then rejects
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise invalid("json_invalid", "the body is not JSON (UTF-8), or nested too deeply") from None
    if not isinstance(data, dict):
        raise invalid("model_type", f'the body must be a JSON object {{"{key}": [...]}}')
    extra = sorted(set(data) - {key})
    if extra:
        raise invalid("extra_forbidden", f"unknown key {extra[0]!r}; the body holds only {key!r}", ("body", extra[0]))
    items = data.get(key)
    if not isinstance(items, list):
        raise invalid("list_type", f"{key!r} must be a list", ("body", key))
    if not items:
        raise invalid("too_short", f"List should have at least 1 item, not 0 ({key!r})", ("body", key))
    if len(items) > max_items:
        raise invalid(
            "too_long", f"List should have at most {max_items} items ({setting}), not {len(items)}", ("body", key)
        )
    return items


def outcome_routes(
    app: FastAPI,
    engine: sa.Engine,
    settings: Settings,
    outcomes: Outcomes,
    sources: Sources,
    verify: Callable[[bytes, dict[str, str]], str],
) -> None:
    """``POST /v1/outcomes``: outcome batches from the channel systems, signed with a source's secret."""
    api = settings.api

    def store(source: str, body: bytes) -> list[ItemResult]:
        items = envelope(body, "events", api.max_batch, "CAMPAIGN_API_MAX_BATCH")
        parsed = parse_events(items)
        valid = [p for p in parsed if isinstance(p, EventIn)]
        channels = sources[source][1].channels or (source,)
        stored = iter(
            ingest(engine, source, valid, settings=settings, outcomes=outcomes, allowed_channels=channels)
            if valid
            else []
        )
        return [next(stored) if isinstance(p, EventIn) else p for p in parsed]

    @app.post(
        "/v1/outcomes",
        response_model=OutcomeReceipt,
        summary="Post outcomes of tasks (signed)",
        tags=["outcomes"],
        responses=SIGNED_ANSWERS,
        openapi_extra=signed_json_body("OutcomeBatch", OUTCOME_EXAMPLES),
    )
    async def post_outcomes(request: Request) -> OutcomeReceipt:
        """Record outcomes; each event is validated and stored once per `event_id` on its own, results per event."""
        source, body = await signed_request(request, verify)
        results = await anyio.to_thread.run_sync(store, source, body, limiter=request.app.state.workers)
        counts = {s: 0 for s in ("accepted", "duplicate", "rejected")}
        for r in results:
            counts[r.status] += 1
        return OutcomeReceipt(
            accepted=counts["accepted"],
            duplicates=counts["duplicate"],
            rejected=counts["rejected"],
            items=[ItemOut(event_id=r.event_id, status=r.status, reason=r.reason) for r in results],
        )
