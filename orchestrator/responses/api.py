"""The response API (``campaign api``): outcomes from channel systems, the e-mail links, erasures.

``create_app(settings)`` builds the FastAPI app (docs at ``/docs`` and ``/redoc``, schema at
``/openapi.json``; every status code below is in the schema). The documentation pages load their
scripts and styles from the package (fastapi-offline, under ``DOCS_ASSETS``), never a CDN; the
endpoints are grouped by ``TAGS``; ``DESCRIPTION`` holds the signing examples (Python, curl) and
``OUTCOME_EXAMPLES`` valid request bodies:

* ``POST /v1/outcomes`` -- a channel system posts ``{"events": [...]}`` (at most
  ``CAMPAIGN_API_MAX_BATCH``), signed per Standard Webhooks with its source's secret
  (``CAMPAIGN_API_SOURCES__<NAME>__SECRET``). The signature is checked over the raw body
  BEFORE the body is parsed, against every configured source; the one that matches is the
  sender. 401: missing headers, no source's signature matches, or ``webhook-timestamp`` more
  than ``CAMPAIGN_API_TOLERANCE_SECONDS`` off (replay). 422: the envelope is not JSON, not
  ``{"events": [...]}`` or holds more events than allowed (FastAPI's validation format; no
  input echoed). 200: per-event results: every event is validated and stored or rejected on
  its own (``ingest.parse_events``, ``ingest.ingest``), so one bad event never loses the
  others; a repeated ``webhook-id`` is fine, events dedupe by ``event_id``. 429: the source
  sent more than ``CAMPAIGN_API_SOURCE_RATE`` requests per second (``Retry-After``). 503: the
  database failed; nothing of the request was stored (one transaction), retry later.
* ``POST /v1/erasures`` -- a source with ``erase`` rights (the privacy tool) erases customers
  (``orchestrator.ledger.erasure``); signed like outcomes.
* ``GET /o/{token}.gif`` -- open pixel: records ``open`` (event id from the token, so once per
  contact), always answers a 1x1 transparent GIF, also for a bad, expired or preview token
  (recording nothing).
* ``GET /c/{token}?u=<url>&s=<sig>`` -- click: 303 to ``u`` only when ``s`` signs ``u``
  (``click_url`` makes such links; itsdangerous, link secret, salt ``click``) or ``u``'s host is
  in ``CAMPAIGN_API_CLICK_HOSTS``; records ``click`` once per contact and URL (not for an
  expired token). Otherwise 400 and no redirect (no open redirect); a preview's link 403.
* ``GET /unsubscribe/{token}`` -- a confirmation page with a POST form; changes nothing (link
  scanners follow GETs). ``POST /unsubscribe/{token}`` -- RFC 8058 one-click
  (``List-Unsubscribe=One-Click``): suppression for e-mail (``unsubscribed``) and an
  ``unsubscribe`` event; 200 with a short page; a bad token 400, a preview's 403 (a page
  saying so; nothing changes), an expired one (``CAMPAIGN_LINKS_UNSUBSCRIBE_DAYS``) 410.
* ``GET /healthz`` -- 200 when the database answers, else 503.

Limits (``orchestrator.responses.limits``): bodies above ``CAMPAIGN_API_MAX_BODY_BYTES`` get
413 before more is read, all bodies held at once are bounded by
``CAMPAIGN_API_MAX_BUFFERED_BYTES`` (503 beyond), a body must arrive within
``CAMPAIGN_API_BODY_TIMEOUT`` (408). Verifying, parsing and storing run in
``CAMPAIGN_API_PARSE_THREADS`` worker threads, never on the event loop, so the pixel, clicks
and ``/healthz`` answer while large batches are handled.

Link events are recorded under the source ``links``. Nothing here logs customer data: a
server fault is logged with its type and stack, never its message or SQL parameters.

Modules: ``api_models`` (request and response bodies), ``api_docs`` (what ``/docs`` shows),
``webhook_auth`` (signature check per source, rate), ``outcome_routes``, ``erasure_routes``,
``link_routes`` (pixel, clicks, ``click_url``), ``unsubscribe_routes``, ``pages`` (the HTML answers)
and ``faults`` (logging without personal data); this module wires them into the app, with
``/healthz`` and the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import SecretStr

from orchestrator.db.engine import connect
from orchestrator.responses.api_docs import DESCRIPTION, DOCS_ASSETS, TAGS
from orchestrator.responses.api_models import REQUEST_MODELS
from orchestrator.responses.erasure_routes import erasure_routes
from orchestrator.responses.faults import log_fault
from orchestrator.responses.limits import BodyLimit, SourceRates
from orchestrator.responses.link_routes import link_routes
from orchestrator.responses.outcome_routes import outcome_routes
from orchestrator.responses.unsubscribe_routes import unsubscribe_routes
from orchestrator.responses.webhook_auth import SourceVerifier, verifier
from orchestrator.rules.outcomes import load_outcomes
from orchestrator.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    """The response API over the database of ``settings`` (migrated on first use)."""
    engine = connect(settings)
    outcomes = load_outcomes(settings.paths.rules_dir)
    api = settings.api
    if settings.links.secret_key is None:  # read the generated key from the data folder once, not per request
        links = settings.links.model_copy(update={"secret_key": SecretStr(settings.link_secret())})
        settings = settings.model_copy(update={"links": links})
    sources = {name: (SourceVerifier(s.secret.get_secret_value()), s) for name, s in api.sources.items()}

    # Swagger UI (/docs) and ReDoc (/redoc) load their scripts and styles from this package's
    # dependency fastapi-offline (served under /static-offline-docs), never from a CDN
    app = FastAPIOffline(
        title="Campaign response API",
        version="1",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        static_url=DOCS_ASSETS,
    )
    # verifying, parsing and storing batches run on these threads, never on the event loop
    app.state.workers = anyio.CapacityLimiter(api.parse_threads)
    app.state.rates = SourceRates(api.source_rate, list(sources))
    app.state.engine = engine

    @app.exception_handler(sa.exc.SQLAlchemyError)
    async def _database_fault(request: Request, exc: sa.exc.SQLAlchemyError) -> JSONResponse:
        log_fault(f"{request.method} {request.url.path}: database error", exc)
        return JSONResponse(
            {"detail": "the database failed; nothing of this request was stored: retry later"},
            status_code=503,
            headers={"Retry-After": "30"},
        )

    @app.exception_handler(Exception)
    async def _server_fault(request: Request, exc: Exception) -> JSONResponse:
        log_fault(f"{request.method} {request.url.path}: server error", exc)
        return JSONResponse({"detail": "server error; nothing of this request was stored: retry later"}, 500)

    verify = verifier(settings, sources)
    outcome_routes(app, engine, settings, outcomes, sources, verify)
    erasure_routes(app, engine, settings, sources, verify)
    link_routes(app, engine, settings, outcomes)
    unsubscribe_routes(app, engine, settings)
    _health_route(app, engine)
    # the body is read raw (signature first), so its schema is added here; FastAPI documents replacing app.openapi
    app.openapi = _openapi(app, api.max_batch)  # type: ignore[method-assign]
    app.add_middleware(
        BodyLimit, max_body=api.max_body_bytes, max_buffered=api.max_buffered_bytes, timeout=api.body_timeout
    )
    return app


def _health_route(app: FastAPI, engine: sa.Engine) -> None:
    """``GET /healthz``: whether the database answers."""

    @app.get(
        "/healthz",
        summary="Health check",
        tags=["health"],
        responses={
            200: {"description": "The database answers.", "content": {"application/json": {}}},
            503: {"description": "The database does not answer.", "content": {"application/json": {}}},
        },
    )
    def healthz() -> JSONResponse:
        """200 when the database answers, else 503."""
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})


def _openapi(app: FastAPI, max_batch: int) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with the request body schemas (read raw, signature first), built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in REQUEST_MODELS:
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[model.__name__] = body
            components["OutcomeBatch"]["properties"]["events"]["maxItems"] = max_batch
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
