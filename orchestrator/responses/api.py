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
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

import anyio
import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi_offline import FastAPIOffline
from itsdangerous import Signer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from orchestrator.db.engine import connect
from orchestrator.delivery.messages import read_tracking_token
from orchestrator.ledger.erasure import erase
from orchestrator.responses.ingest import (
    LINKS_SOURCE,
    EventIn,
    InvalidUnsubscribeToken,
    ItemResult,
    ingest,
    parse_events,
    read_unsubscribe_token,
    unsubscribe,
)
from orchestrator.responses.limits import BodyLimit, SourceRates
from orchestrator.rules.kinds import kinds
from orchestrator.rules.outcomes import Outcomes, load_outcomes
from orchestrator.settings import Settings
from orchestrator.templates.links import ExpiredLinkToken, InvalidLinkToken, PreviewLinkToken, click_link, click_signer
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


def _problem(description: str, **headers: str) -> dict[str, Any]:
    """An OpenAPI response entry answered with a ``Problem``."""
    entry: dict[str, Any] = {"model": Problem, "description": description}
    if headers:
        entry["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return entry


_PAGE = {"content": {"text/html": {"schema": {"type": "string"}}}}


def _page_answer(description: str) -> dict[str, Any]:
    """An OpenAPI response entry answered with an HTML page."""
    return {"description": description, **_PAGE}


BODY_ANSWERS: dict[int | str, dict[str, Any]] = {
    500: _problem("A server fault; nothing of the request was stored (one transaction): retry later."),
    400: _problem("Content-Length is not a number."),
    408: _problem("The body did not arrive within CAMPAIGN_API_BODY_TIMEOUT seconds."),
    413: _problem("The body is larger than CAMPAIGN_API_MAX_BODY_BYTES; nothing was read further."),
    503: _problem(
        "The server holds as many bodies as CAMPAIGN_API_MAX_BUFFERED_BYTES allows, or the database failed: "
        "nothing of the request was stored; retry later.",
        **{"Retry-After": "Seconds to wait before retrying."},
    ),
}
"""Answers every request with a body may get from the limits (``limits.BodyLimit``) or a database fault."""

SIGNED_ANSWERS: dict[int | str, dict[str, Any]] = {
    **BODY_ANSWERS,
    401: _problem("Missing or wrong signature, or timestamp out of tolerance."),
    422: {
        "description": "Not JSON, not the envelope's schema, or more items than allowed (FastAPI's format).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
    },
    429: _problem(
        "The source sent more than CAMPAIGN_API_SOURCE_RATE requests per second.",
        **{"Retry-After": "Seconds to wait before retrying."},
    ),
}
"""Answers of the signed endpoints (outcomes, erasures)."""


def _log_fault(what: str, exc: BaseException) -> None:
    """Log a server fault with its type and stack, never its message (it may quote personal data)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    log.error(
        "%s: %s%s (message withheld: it may hold personal data)\n%s",
        what,
        type(exc).__name__,
        f" sqlstate {sqlstate}" if sqlstate else "",
        frames,
    )


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


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">'
        f'<title>{escape(title)}</title></head><body style="font-family:sans-serif;max-width:36em;margin:3em auto">'
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


DOCS_ASSETS = "/static-offline-docs"
"""Where the documentation pages' scripts and styles are served from (the package, not a CDN)."""

TAGS = [
    {
        "name": "outcomes",
        "description": "Channel systems (call center, field force, e-mail service) post what happened to the tasks "
        "and messages we sent them. Signed with the source's secret (Standard Webhooks).",
    },
    {
        "name": "privacy",
        "description": "A privacy tool erases customers everywhere (right to erasure). Signed by a source with "
        "erase rights.",
    },
    {
        "name": "links",
        "description": "What recipients' mail clients call: the open pixel, tracked clicks and one-click "
        "unsubscribe. Authenticated by the signed token in the URL; no signature headers.",
    },
    {"name": "health", "description": "For load balancers and monitoring."},
]

DESCRIPTION = """\
Outcomes of tasks and messages: channel systems post them signed (Standard Webhooks); e-mail
recipients open, click and unsubscribe through the link endpoints; a privacy tool erases customers.
The full guide is docs/response-api.md.

## Signing a request

Every `POST /v1/*` request carries three headers computed with the source's secret
(`CAMPAIGN_API_SOURCES__<NAME>__SECRET`, `whsec_` + base64):

* `webhook-id`: a unique id of the request;
* `webhook-timestamp`: seconds since the epoch, new on every try (at most
  `CAMPAIGN_API_TOLERANCE_SECONDS`, default 300, off our clock);
* `webhook-signature`: `v1,` + base64 of HMAC-SHA256, keyed with the base64-decoded part of the
  secret after `whsec_`, over `<webhook-id>.<webhook-timestamp>.<raw body>`.

Python (the `standardwebhooks` package, or the standard library alone):

```python
import base64, hashlib, hmac, json, time, uuid
import httpx

secret = "whsec_..."  # the source's secret
body = json.dumps(
    {
        "events": [
            {
                "event_id": "cc-000123",
                "type": "sale",
                "occurred_at": "2026-03-02T10:15:00+01:00",
                "outcome_ref": "w12-c345.Zk9x",
                "value": 249.0,
            }
        ]
    }
)
msg_id, timestamp = str(uuid.uuid4()), str(int(time.time()))
key = base64.b64decode(secret.removeprefix("whsec_"))
mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
headers = {
    "webhook-id": msg_id,
    "webhook-timestamp": timestamp,
    "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    "content-type": "application/json",
}
httpx.post("http://127.0.0.1:8000/v1/outcomes", content=body, headers=headers)
```

curl (bash with openssl):

```bash
SECRET='whsec_...'
BODY='{"events":[{"event_id":"cc-000123","type":"sale","occurred_at":"2026-03-02T10:15:00+01:00","outcome_ref":"w12-c345.Zk9x"}]}'
ID="msg-$(date +%s%N)"; TS=$(date +%s)
KEY=$(printf %s "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \\n')
SIG=$(printf %s "$ID.$TS.$BODY" | openssl dgst -sha256 -mac HMAC -macopt hexkey:"$KEY" -binary | base64)
curl -sS http://127.0.0.1:8000/v1/outcomes -H 'content-type: application/json' \\
  -H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" --data-binary "$BODY"
```

Sign the exact bytes you send, and sign each retry anew (new timestamp).

## Status codes

200 per-event results (each event accepted, duplicate or rejected on its own); 401 signature or
timestamp wrong; 403 the source may not do this; 408 body too slow; 413 body too large; 422 not
the schema; 429 too many requests (`Retry-After`); 503 busy or database failed, nothing stored
(`Retry-After`); 500 server fault, nothing stored. Each endpoint lists its own below.
"""
"""The description shown on /docs: what the API is for, how to sign (Python and curl), the status codes."""

OUTCOME_EXAMPLES: dict[str, dict[str, Any]] = {
    "task-list outcomes": {
        "summary": "A call center reports two calls (outcome_ref from our task list)",
        "value": {
            "events": [
                {
                    "event_id": "cc-2026-03-02-000123",
                    "type": "sale",
                    "occurred_at": "2026-03-02T10:15:00+01:00",
                    "outcome_ref": "w12-c345.Zk9xQ2",
                    "value": 249.0,
                    "detail": "contract B",
                },
                {
                    "event_id": "cc-2026-03-02-000124",
                    "type": "no_answer",
                    "occurred_at": "2026-03-02T10:21:40+01:00",
                    "outcome_ref": "w12-c346.Hq2pA7",
                },
            ]
        },
    },
    "e-mail events": {
        "summary": "An e-mail service reports a bounce (tracking_token from the message's X-Campaign-Token)",
        "value": {
            "events": [
                {
                    "event_id": "esp-9f1c",
                    "type": "hard_bounce",
                    "occurred_at": "2026-03-02T09:01:12Z",
                    "tracking_token": "hB3x0cVq1Jt8mW5yZr2Lk9pE4sN7uD6aF0gT3bC8iK1oQ5vX",
                }
            ]
        },
    },
}
"""Request bodies shown on /docs; each is valid (exactly one of outcome_ref and tracking_token per event)."""

ERASURE_EXAMPLES: dict[str, dict[str, Any]] = {
    "erasure": {
        "summary": "Erase two customers for a privacy ticket",
        "value": {"customer_ids": ["C000123", "C000456"], "requested_by": "DPO-2026-0042"},
    }
}


def create_app(settings: Settings) -> FastAPI:
    """The response API over the database of ``settings`` (migrated on first use)."""
    engine = connect(settings)
    outcomes = load_outcomes(settings.paths.rules_dir)
    api = settings.api
    if settings.links.secret_key is None:  # read the generated key from the data folder once, not per request
        links = settings.links.model_copy(update={"secret_key": SecretStr(settings.link_secret())})
        settings = settings.model_copy(update={"links": links})
    sources = {name: (_Source(s.secret.get_secret_value()), s) for name, s in api.sources.items()}

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
        _log_fault(f"{request.method} {request.url.path}: database error", exc)
        return JSONResponse(
            {"detail": "the database failed; nothing of this request was stored: retry later"},
            status_code=503,
            headers={"Retry-After": "30"},
        )

    @app.exception_handler(Exception)
    async def _server_fault(request: Request, exc: Exception) -> JSONResponse:
        _log_fault(f"{request.method} {request.url.path}: server error", exc)
        return JSONResponse({"detail": "server error; nothing of this request was stored: retry later"}, 500)

    verify = _verifier(settings, sources)
    _outcome_routes(app, engine, settings, outcomes, sources, verify)
    _erasure_routes(app, engine, settings, sources, verify)
    _link_routes(app, engine, settings, outcomes)
    _unsubscribe_routes(app, engine, settings)
    _health_route(app, engine)
    # the body is read raw (signature first), so its schema is added here; FastAPI documents replacing app.openapi
    app.openapi = _openapi(app, api.max_batch)  # type: ignore[method-assign]
    app.add_middleware(
        BodyLimit, max_body=api.max_body_bytes, max_buffered=api.max_buffered_bytes, timeout=api.body_timeout
    )
    return app


Sources = dict[str, tuple["_Source", Any]]


def _verifier(settings: Settings, sources: Sources) -> Callable[[bytes, dict[str, str]], str]:
    """``verify(body, headers) -> source name``: the Standard Webhooks signature check (raises 401)."""
    api = settings.api

    def verify(body: bytes, headers: dict[str, str]) -> str:
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

    return verify


async def signed_request(request: Request, verify: Callable[[bytes, dict[str, str]], str]) -> tuple[str, bytes]:
    """``(source, body)`` of a signed request: verified on a worker thread, then the source's rate checked (429)."""
    body = await request.body()
    source = await anyio.to_thread.run_sync(verify, body, dict(request.headers), limiter=request.app.state.workers)
    if not request.app.state.rates.admit(source):
        raise HTTPException(
            429,
            detail=f"source {source} sends more than {request.app.state.rates.rate:g} requests per second "
            "(CAMPAIGN_API_SOURCE_RATE); retry after a second",
            headers={"Retry-After": "1"},
        )
    return source, body


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


def _outcome_routes(
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
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/OutcomeBatch"},
                        "examples": OUTCOME_EXAMPLES,
                    }
                },
            },
            "parameters": SIGNATURE_HEADERS,
        },
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


def _erasure_routes(
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
        responses={**SIGNED_ANSWERS, 403: _problem("The signing source may not request erasures (its erase setting).")},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ErasureRequest"},
                        "examples": ERASURE_EXAMPLES,
                    }
                },
            },
            "parameters": SIGNATURE_HEADERS,
        },
    )
    async def post_erasures(request: Request) -> ErasureReceipt:
        """Remove or pseudonymise the customers everywhere (see docs/operations.md, "Erasure"); idempotent."""
        source, body = await signed_request(request, verify)
        if not sources[source][1].erase:
            raise HTTPException(
                403, detail=f"source {source} may not request erasures (CAMPAIGN_API_SOURCES__<NAME>__ERASE)"
            )
        return await anyio.to_thread.run_sync(run, source, body, limiter=request.app.state.workers)


SIGNATURE_HEADERS = [
    {"name": h, "in": "header", "required": True, "schema": {"type": "string"}, "description": d}
    for h, d in (
        ("webhook-id", "Id of this request (any unique string; a repeat is fine)."),
        ("webhook-timestamp", "Seconds since the epoch when this try was signed."),
        (
            "webhook-signature",
            "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'> with the source's secret.",
        ),
    )
]


PREVIEW_PAGE = (
    "<p>This link comes from a <b>preview</b> or dry run of a campaign. It belongs to no e-mail that was "
    "sent, so it changes nothing and records nothing.</p>"
)


def _link_routes(app: FastAPI, engine: sa.Engine, settings: Settings, outcomes: Outcomes) -> None:
    """``GET /o/{token}.gif`` (open pixel) and ``GET /c/{token}`` (tracked link) of the e-mails."""
    api = settings.api
    clicks = _click_signer(settings)

    def _record_link(token: str, kind: str, event_id: str) -> None:
        event = EventIn(event_id=event_id, type=kind, occurred_at=datetime.now(UTC), tracking_token=token)
        ingest(engine, LINKS_SOURCE, [event], settings=settings, outcomes=outcomes, allowed_channels=link_channels())

    def _tracked(token: str) -> tuple[int, int] | InvalidLinkToken:
        try:
            return read_tracking_token(settings, token)
        except InvalidLinkToken as exc:
            return exc

    @app.get(
        "/o/{token}.gif",
        summary="Open pixel",
        tags=["links"],
        response_class=Response,
        responses={200: {"content": {"image/gif": {}}, "description": "A 1x1 transparent GIF, always."}},
    )
    def open_pixel(token: str) -> Response:
        """Records an `open` of the e-mail (once per contact) and answers a transparent GIF, whatever the token."""
        ids = _tracked(token)
        if isinstance(ids, tuple):
            try:
                _record_link(token, "open", f"open-w{ids[0]}-c{ids[1]}")
            except Exception as exc:  # noqa: BLE001 - the pixel never fails the recipient's mail client
                _log_fault(f"open pixel: recording failed (contact {ids[1]})", exc)
        return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})

    @app.get(
        "/c/{token}",
        summary="Tracked link",
        tags=["links"],
        status_code=303,
        response_class=RedirectResponse,
        responses={
            303: {"description": "Redirect to u (recorded as a click unless the link expired)."},
            400: _page_answer("u is not signed: no redirect."),
            403: _page_answer("A link of a preview or dry run: no redirect, nothing recorded."),
        },
    )
    def click(token: str, u: str = "", s: str = "") -> Response:
        """Records a `click` (once per contact and URL) and redirects to `u` when `s` signs it (see `click_url`)."""
        ids = _tracked(token)
        if isinstance(ids, PreviewLinkToken):
            return _page("This is a preview", PREVIEW_PAGE, 403)
        signed = bool(u and s) and clicks.verify_signature(u.encode(), s.encode())
        allowed = signed or (bool(api.click_hosts) and _http_url(u) and urlsplit(u).hostname in api.click_hosts)
        if not allowed or not _http_url(u):
            return _page(
                "This link is not valid",
                "<p>The link was changed or cut. Please use the link in the e-mail as it is.</p>",
                400,
            )
        if isinstance(ids, tuple):
            digest = hashlib.sha256(u.encode()).hexdigest()[:16]
            try:
                _record_link(token, "click", f"click-w{ids[0]}-c{ids[1]}-{digest}")
            except Exception as exc:  # noqa: BLE001 - the recipient still gets where the link leads
                _log_fault(f"click: recording failed (contact {ids[1]})", exc)
        return RedirectResponse(u, status_code=303, headers={"Cache-Control": "no-store"})


def _unsubscribe_routes(app: FastAPI, engine: sa.Engine, settings: Settings) -> None:
    """``GET /unsubscribe/{token}`` (confirmation page) and ``POST`` (RFC 8058 one-click)."""
    invalid_unsubscribe = "<p>This unsubscribe link was changed or cut. Please use the link in the e-mail as it is.</p>"
    expired = (
        "<p>This unsubscribe link has expired. Please use the link in a more recent e-mail, "
        "or reply to the e-mail and ask us to stop.</p>"
    )

    def _refusal(exc: InvalidLinkToken) -> HTMLResponse:
        if isinstance(exc, PreviewLinkToken):
            return _page("This is a preview", PREVIEW_PAGE, 403)
        if isinstance(exc, ExpiredLinkToken):
            return _page("This link has expired", expired, 410)
        return _page("This link is not valid", invalid_unsubscribe, 400)

    answers: dict[int | str, dict[str, Any]] = {
        400: _page_answer("The token was altered or cut."),
        403: _page_answer("A link of a preview or dry run: nothing changes."),
        410: _page_answer("The link is older than CAMPAIGN_LINKS_UNSUBSCRIBE_DAYS."),
    }

    @app.get(
        "/unsubscribe/{token}",
        summary="Unsubscribe: confirmation page",
        tags=["links"],
        response_class=HTMLResponse,
        responses=answers,
    )
    def unsubscribe_page(token: str) -> HTMLResponse:
        """A page with a button that unsubscribes (POST); the GET itself changes nothing."""
        try:
            read_unsubscribe_token(settings, token)
        except InvalidLinkToken as exc:
            return _refusal(exc)
        form = (
            f'<form method="post" action="/unsubscribe/{escape(quote(token, safe=""))}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<p>Do you want to stop receiving these e-mails?</p><button type="submit">Unsubscribe</button></form>'
        )
        return _page("Unsubscribe", form)

    @app.post(
        "/unsubscribe/{token}",
        summary="Unsubscribe (RFC 8058 one-click)",
        tags=["links"],
        response_class=HTMLResponse,
        responses={**answers, **BODY_ANSWERS},
    )
    async def unsubscribe_now(token: str) -> HTMLResponse:
        """Suppresses the customer for e-mail and records an `unsubscribe` event; repeating it changes nothing.

        Mail clients send `List-Unsubscribe=One-Click` (form-encoded) as the body;
        the token in the URL is the authorisation.
        """
        try:
            await run_in_threadpool(unsubscribe, engine, settings, token)
        except InvalidUnsubscribeToken as exc:
            return _refusal(exc)
        return _page("You are unsubscribed", "<p>You will not receive these e-mails any more.</p>")


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
