"""What ``/docs``, ``/redoc`` and ``/openapi.json`` show besides the routes themselves.

``DOCS_ASSETS`` (where the pages' scripts and styles are served from: the package, never a CDN),
``TAGS`` (the endpoint groups), ``DESCRIPTION`` (signing examples in Python and curl, status codes),
valid request examples (``OUTCOME_EXAMPLES``, ``ERASURE_EXAMPLES``), the Standard Webhooks headers
(``SIGNATURE_HEADERS``) and the documented error answers: ``problem(description, **headers)``,
``BODY_ANSWERS`` (any request with a body) and ``SIGNED_ANSWERS`` (the signed endpoints).
"""

from __future__ import annotations

from typing import Any

from orchestrator.responses.api_models import Problem

__all__ = [
    "BODY_ANSWERS",
    "DESCRIPTION",
    "DOCS_ASSETS",
    "ERASURE_EXAMPLES",
    "OUTCOME_EXAMPLES",
    "SIGNATURE_HEADERS",
    "SIGNED_ANSWERS",
    "TAGS",
    "problem",
    "signed_json_body",
]


def problem(description: str, **headers: str) -> dict[str, Any]:
    """An OpenAPI response entry answered with a ``Problem``."""
    entry: dict[str, Any] = {"model": Problem, "description": description}
    if headers:
        entry["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return entry


BODY_ANSWERS: dict[int | str, dict[str, Any]] = {
    500: problem("A server fault; nothing of the request was stored (one transaction): retry later."),
    400: problem("Content-Length is not a number."),
    408: problem("The body did not arrive within CAMPAIGN_API_BODY_TIMEOUT seconds."),
    413: problem("The body is larger than CAMPAIGN_API_MAX_BODY_BYTES; nothing was read further."),
    503: problem(
        "The server holds as many bodies as CAMPAIGN_API_MAX_BUFFERED_BYTES allows, or the database failed: "
        "nothing of the request was stored; retry later.",
        **{"Retry-After": "Seconds to wait before retrying."},
    ),
}
"""Answers every request with a body may get from the limits (``limits.BodyLimit``) or a database fault."""

SIGNED_ANSWERS: dict[int | str, dict[str, Any]] = {
    **BODY_ANSWERS,
    401: problem("Missing or wrong signature, or timestamp out of tolerance."),
    422: {
        "description": "Not JSON, not the envelope's schema, or more items than allowed (FastAPI's format).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
    },
    429: problem(
        "The source sent more than CAMPAIGN_API_SOURCE_RATE requests per second.",
        **{"Retry-After": "Seconds to wait before retrying."},
    ),
}
"""Answers of the signed endpoints (outcomes, erasures)."""


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


def signed_json_body(schema: str, examples: dict[str, Any]) -> dict[str, Any]:
    """The ``openapi_extra`` of a signed JSON endpoint: its body (the ``schema`` component, ``examples``)
    and the signature headers."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}, "examples": examples}
            },
        },
        "parameters": SIGNATURE_HEADERS,
    }


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
