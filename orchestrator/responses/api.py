"""The response API (``campaign api``): outcomes from channel systems, and the e-mail links.

``create_app(settings)`` builds the FastAPI app (docs at ``/docs``, schema at ``/openapi.json``):

* ``POST /v1/outcomes`` -- a channel system posts ``{"events": [...]}`` (at most
  ``CAMPAIGN_API_MAX_BATCH``), signed per Standard Webhooks with its source's secret
  (``CAMPAIGN_API_SOURCES__<NAME>__SECRET``). The signature is checked over the raw body
  BEFORE the body is parsed, against every configured source; the one that matches is the
  sender. 401: missing headers, no source's signature matches, or ``webhook-timestamp`` more
  than ``CAMPAIGN_API_TOLERANCE_SECONDS`` off (replay). 422: not JSON, or not the schema
  (FastAPI's validation format; no input echoed). 200: per-event results
  (``orchestrator.responses.ingest.ingest``): a repeated ``webhook-id`` is fine, events dedupe by
  ``event_id``.
* ``GET /o/{token}.gif`` -- open pixel: records ``open`` (event id from the token, so once per
  contact), always answers a 1x1 transparent GIF, also for a bad token (recording nothing).
* ``GET /c/{token}?u=<url>&s=<sig>`` -- click: 303 to ``u`` only when ``s`` signs ``u``
  (``click_url`` makes such links; itsdangerous, link secret, salt ``click``) or ``u``'s host is
  in ``CAMPAIGN_API_CLICK_HOSTS``; records ``click`` once per contact and URL. Otherwise 400
  and no redirect (no open redirect).
* ``GET /unsubscribe/{token}`` -- a confirmation page with a POST form; changes nothing (link
  scanners follow GETs). ``POST /unsubscribe/{token}`` -- RFC 8058 one-click
  (``List-Unsubscribe=One-Click``): suppression for e-mail (``unsubscribed``) and an
  ``unsubscribe`` event; 200 with a short page; a bad token 400.
* ``GET /healthz`` -- 200 when the database answers, else 503.

Link events are recorded under the source ``links``. Nothing here logs customer data.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from itsdangerous import Signer
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from orchestrator.db.engine import connect
from orchestrator.delivery.messages import InvalidTrackingToken, read_tracking_token
from orchestrator.responses.ingest import (
    LINKS_SOURCE,
    EventIn,
    InvalidUnsubscribeToken,
    ingest,
    read_unsubscribe_token,
    unsubscribe,
)
from orchestrator.rules.kinds import kinds
from orchestrator.rules.outcomes import Outcomes, load_outcomes
from orchestrator.settings import Settings
from orchestrator.templates.links import click_link, click_signer
from orchestrator.templates.links import is_http_url as _http_url

__all__ = ["OutcomeBatch", "OutcomeReceipt", "click_url", "create_app"]

log = logging.getLogger(__name__)


def link_channels() -> tuple[str, ...]:
    """The channels whose messages carry the tracked links this API serves (``ChannelKind.links``: e-mail)."""
    return tuple(kind.name for kind in kinds() if kind.links)


PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A 1x1 transparent GIF."""


class OutcomeBatch(BaseModel):
    """Outcomes of tasks we sent you, in one signed request."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(
        min_length=1, description="The events, at most CAMPAIGN_API_MAX_BATCH (default 10,000) per request."
    )


class ItemOut(BaseModel):
    """What happened to one event."""

    event_id: str = Field(description="The event's event_id as you sent it.")
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


def _click_signer(settings: Settings) -> Signer:
    return click_signer(settings.link_secret())


def click_url(settings: Settings, tracking_token: str, url: str) -> str:
    """A tracked link to ``url`` for an e-mail template: ``{base}/c/{token}?u=<url>&s=<signature of url>``.

    Raises ``ValueError`` unless ``url`` is an absolute http(s) URL.
    """
    return click_link(_click_signer(settings), settings.links.base_url, tracking_token, url)


class _Source(Webhook):
    """The library's verifier for one source; the timestamp window is checked before, with the configured tolerance."""

    def _Webhook__verify_timestamp(self, timestamp_header: str) -> datetime:  # the library's fixed 5 minutes
        return datetime.fromtimestamp(float(timestamp_header), tz=UTC)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": 'Signature realm="outcomes"'})


def _validation_error(exc: ValidationError) -> RequestValidationError:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    return RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors])


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">'
        f'<title>{escape(title)}</title></head><body style="font-family:sans-serif;max-width:36em;margin:3em auto">'
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def create_app(settings: Settings) -> FastAPI:
    """The response API over the database of ``settings`` (migrated on first use)."""
    engine = connect(settings)
    outcomes = load_outcomes(settings.paths.rules_dir)
    api = settings.api
    if settings.links.secret_key is None:  # read the generated key from the data folder once, not per request
        links = settings.links.model_copy(update={"secret_key": SecretStr(settings.link_secret())})
        settings = settings.model_copy(update={"links": links})
    sources = {name: (_Source(s.secret.get_secret_value()), s.channels or (name,)) for name, s in api.sources.items()}

    app = FastAPI(
        title="Campaign response API",
        version="1",
        description="Outcomes of tasks and messages: channel systems post them signed (Standard Webhooks); "
        "e-mail recipients open, click and unsubscribe through the link endpoints. See docs/response-api.md.",
    )

    _outcome_routes(app, engine, settings, outcomes, sources)
    _link_routes(app, engine, settings, outcomes)
    _unsubscribe_routes(app, engine, settings)
    _health_route(app, engine)
    # the body is read raw (signature first), so its schema is added here; FastAPI documents replacing app.openapi
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    app.state.engine = engine
    return app


def _outcome_routes(
    app: FastAPI,
    engine: sa.Engine,
    settings: Settings,
    outcomes: Outcomes,
    sources: dict[str, tuple[_Source, tuple[str, ...]]],
) -> None:
    """``POST /v1/outcomes``: outcome batches from the channel systems, signed with a source's secret."""
    api = settings.api

    def _sender(body: bytes, headers: dict[str, str]) -> str:
        missing = [h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not headers.get(h)]
        if missing:
            raise _unauthorized(f"missing Standard Webhooks header(s): {', '.join(missing)}")
        try:
            sent = int(headers["webhook-timestamp"])
        except ValueError:
            raise _unauthorized("webhook-timestamp must be whole seconds since the epoch") from None
        off = int(datetime.now(UTC).timestamp()) - sent
        if abs(off) > api.tolerance_seconds:
            raise _unauthorized(
                f"webhook-timestamp is {abs(off)} s {'old' if off > 0 else 'in the future'}; at most "
                f"{api.tolerance_seconds} s allowed (replay protection): sign each try anew"
            )
        for name, (verifier, _) in sources.items():
            try:
                verifier.verify(body, headers, json_parse=False)
            except (WebhookVerificationError, ValueError):  # ValueError: malformed signature header or body
                continue
            return name
        raise _unauthorized("invalid signature: no configured source's secret signs this request (webhook-signature)")

    @app.post(
        "/v1/outcomes",
        response_model=OutcomeReceipt,
        summary="Post outcomes of tasks (signed)",
        responses={
            401: {"model": Problem, "description": "Missing or wrong signature, or timestamp out of tolerance."},
            422: {
                "description": (
                    "Not JSON, not the schema, or more events than CAMPAIGN_API_MAX_BATCH (FastAPI's format)."
                ),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
            },
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OutcomeBatch"}}},
            },
            "parameters": [
                {"name": h, "in": "header", "required": True, "schema": {"type": "string"}, "description": d}
                for h, d in (
                    ("webhook-id", "Id of this request (any unique string; a repeat is fine)."),
                    ("webhook-timestamp", "Seconds since the epoch when this try was signed."),
                    (
                        "webhook-signature",
                        "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'> with the source's secret.",
                    ),
                )
            ],
        },
    )
    async def post_outcomes(request: Request) -> OutcomeReceipt:
        """Record outcomes; each event is stored once per `event_id`, results per event."""
        body = await request.body()
        source = _sender(body, dict(request.headers))
        try:
            batch = OutcomeBatch.model_validate_json(body)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        if len(batch.events) > api.max_batch:
            raise RequestValidationError(
                [
                    {
                        "type": "too_long",
                        "loc": ("body", "events"),
                        "msg": (
                            f"List should have at most {api.max_batch} items (CAMPAIGN_API_MAX_BATCH), "
                            f"not {len(batch.events)}"
                        ),
                    }
                ]
            )
        results = await run_in_threadpool(
            ingest,
            engine,
            source,
            batch.events,
            settings=settings,
            outcomes=outcomes,
            allowed_channels=sources[source][1],
        )
        counts = {s: 0 for s in ("accepted", "duplicate", "rejected")}
        for r in results:
            counts[r.status] += 1
        return OutcomeReceipt(
            accepted=counts["accepted"],
            duplicates=counts["duplicate"],
            rejected=counts["rejected"],
            items=[ItemOut(event_id=r.event_id, status=r.status, reason=r.reason) for r in results],
        )


def _link_routes(app: FastAPI, engine: sa.Engine, settings: Settings, outcomes: Outcomes) -> None:
    """``GET /o/{token}.gif`` (open pixel) and ``GET /c/{token}`` (tracked link) of the e-mails."""
    api = settings.api
    clicks = _click_signer(settings)

    def _record_link(token: str, kind: str, event_id: str) -> None:
        event = EventIn(event_id=event_id, type=kind, occurred_at=datetime.now(UTC), tracking_token=token)
        ingest(engine, LINKS_SOURCE, [event], settings=settings, outcomes=outcomes, allowed_channels=link_channels())

    def _tracked(token: str) -> tuple[int, int] | None:
        try:
            return read_tracking_token(settings, token)
        except InvalidTrackingToken:
            return None

    @app.get(
        "/o/{token}.gif",
        summary="Open pixel",
        response_class=Response,
        responses={200: {"content": {"image/gif": {}}, "description": "A 1x1 transparent GIF, always."}},
    )
    def open_pixel(token: str) -> Response:
        """Records an `open` of the e-mail (once per contact) and answers a transparent GIF, whatever the token."""
        ids = _tracked(token)
        if ids is not None:
            try:
                _record_link(token, "open", f"open-w{ids[0]}-c{ids[1]}")
            except Exception:  # noqa: BLE001 - the pixel never fails the recipient's mail client
                log.exception("open pixel: recording failed (contact %d)", ids[1])
        return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})

    @app.get(
        "/c/{token}",
        summary="Tracked link",
        status_code=303,
        response_class=RedirectResponse,
        responses={303: {"description": "Redirect to u."}, 400: {"description": "u is not signed: no redirect."}},
    )
    def click(token: str, u: str = "", s: str = "") -> Response:
        """Records a `click` (once per contact and URL) and redirects to `u` when `s` signs it (see `click_url`)."""
        signed = bool(u and s) and clicks.verify_signature(u.encode(), s.encode())
        allowed = signed or (bool(api.click_hosts) and _http_url(u) and urlsplit(u).hostname in api.click_hosts)
        if not allowed or not _http_url(u):
            return _page(
                "This link is not valid",
                "<p>The link was changed or cut. Please use the link in the e-mail as it is.</p>",
                400,
            )
        ids = _tracked(token)
        if ids is not None:
            digest = hashlib.sha256(u.encode()).hexdigest()[:16]
            try:
                _record_link(token, "click", f"click-w{ids[0]}-c{ids[1]}-{digest}")
            except Exception:  # noqa: BLE001 - the recipient still gets where the link leads
                log.exception("click: recording failed (contact %d)", ids[1])
        return RedirectResponse(u, status_code=303, headers={"Cache-Control": "no-store"})


def _unsubscribe_routes(app: FastAPI, engine: sa.Engine, settings: Settings) -> None:
    """``GET /unsubscribe/{token}`` (confirmation page) and ``POST`` (RFC 8058 one-click)."""

    def _unsubscribe_token_ok(token: str) -> bool:
        try:
            read_unsubscribe_token(settings, token)
        except InvalidUnsubscribeToken:
            return False
        return True

    invalid_unsubscribe = "<p>This unsubscribe link was changed or cut. Please use the link in the e-mail as it is.</p>"

    @app.get("/unsubscribe/{token}", summary="Unsubscribe: confirmation page", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> HTMLResponse:
        """A page with a button that unsubscribes (POST); the GET itself changes nothing."""
        if not _unsubscribe_token_ok(token):
            return _page("This link is not valid", invalid_unsubscribe, 400)
        form = (
            f'<form method="post" action="/unsubscribe/{escape(quote(token, safe=""))}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<p>Do you want to stop receiving these e-mails?</p><button type="submit">Unsubscribe</button></form>'
        )
        return _page("Unsubscribe", form)

    @app.post("/unsubscribe/{token}", summary="Unsubscribe (RFC 8058 one-click)", response_class=HTMLResponse)
    async def unsubscribe_now(token: str) -> HTMLResponse:
        """Suppresses the customer for e-mail and records an `unsubscribe` event; repeating it changes nothing.

        Mail clients send `List-Unsubscribe=One-Click` (form-encoded) as the body;
        the token in the URL is the authorisation.
        """
        try:
            await run_in_threadpool(unsubscribe, engine, settings, token)
        except InvalidUnsubscribeToken:
            return _page("This link is not valid", invalid_unsubscribe, 400)
        return _page("You are unsubscribed", "<p>You will not receive these e-mails any more.</p>")


def _health_route(app: FastAPI, engine: sa.Engine) -> None:
    """``GET /healthz``: whether the database answers."""

    @app.get("/healthz", summary="Health check")
    def healthz() -> JSONResponse:
        """200 when the database answers, else 503."""
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with the ``OutcomeBatch`` request body schema, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            batch = OutcomeBatch.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(batch.pop("$defs", {}))
            components["OutcomeBatch"] = batch
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
