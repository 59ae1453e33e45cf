"""``POST /v1/erasures``: a privacy tool (a source with ``erase`` rights) erases customers.

``erasure_routes(app, engine, settings, sources, verify)`` adds the route: signed like outcomes
(``webhook_auth``); 403 unless the signing source has ``CAMPAIGN_API_SOURCES__<NAME>__ERASE``; the
body is an ``ErasureRequest`` (422 otherwise); ``orchestrator.ledger.erasure.erase`` runs on a
worker thread and the answer is its ``ErasureReceipt``. Repeating a request is harmless.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from orchestrator.ledger.erasure import erase
from orchestrator.responses.api_docs import ERASURE_EXAMPLES, SIGNED_ANSWERS, problem, signed_json_body
from orchestrator.responses.api_models import ErasureReceipt, ErasureRequest
from orchestrator.responses.webhook_auth import Sources, signed_request
from orchestrator.settings import Settings

__all__ = ["erasure_routes"]


def erasure_routes(
    app: FastAPI,
    engine: sa.Engine,
    settings: Settings,
    sources: Sources,
    verify: Callable[[bytes, dict[str, str]], str],
) -> None:
    """``POST /v1/erasures``: a privacy tool (a source with ``erase`` rights) erases customers."""

    def run(source: str, body: bytes) -> ErasureReceipt:
        try:
            request = ErasureRequest.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
        actor = f"api:{source}" + (f" ({request.requested_by})" if request.requested_by else "")
        report = erase(engine, settings, request.customer_ids, actor=actor)
        return ErasureReceipt(audit_id=report.audit_id, counts=report.counts)

    @app.post(
        "/v1/erasures",
        response_model=ErasureReceipt,
        summary="Erase customers (signed, privacy tools only)",
        tags=["privacy"],
        responses={**SIGNED_ANSWERS, 403: problem("The signing source may not request erasures (its erase setting).")},
        openapi_extra=signed_json_body("ErasureRequest", ERASURE_EXAMPLES),
    )
    async def post_erasures(request: Request) -> ErasureReceipt:
        """Remove or pseudonymise the customers everywhere (see docs/operations.md, "Erasure"); idempotent."""
        source, body = await signed_request(request, verify)
        if not sources[source][1].erase:
            raise HTTPException(
                403, detail=f"source {source} may not request erasures (CAMPAIGN_API_SOURCES__<NAME>__ERASE)"
            )
        return await anyio.to_thread.run_sync(run, source, body, limiter=request.app.state.workers)
