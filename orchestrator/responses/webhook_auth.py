"""Authentication of inbound webhooks (``POST /v1/*``): Standard Webhooks signatures per source.

``Sources`` maps each configured source to its ``SourceVerifier`` (its secret) and settings.
``verifier(settings, sources)`` returns ``verify(body, headers) -> source name``: the headers are
present, ``webhook-timestamp`` is within ``CAMPAIGN_API_TOLERANCE_SECONDS`` (replay) and some
source's secret signs the raw body; otherwise 401 (``HTTPException``). ``signed_request`` reads
a request's body, verifies it on a worker thread (``app.state.workers``) and admits the source
by its rate (``app.state.rates``; 429 with ``Retry-After``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import HTTPException, Request
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from orchestrator.settings import Settings

__all__ = ["SourceVerifier", "Sources", "signed_request", "verifier"]


class SourceVerifier(Webhook):
    """The library's verifier for one source; the timestamp window is checked before, with the configured tolerance."""

    def _Webhook__verify_timestamp(self, timestamp_header: str) -> datetime:  # the library's fixed 5 minutes
        return datetime.fromtimestamp(float(timestamp_header), tz=UTC)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": 'Signature realm="outcomes"'})


Sources = dict[str, tuple[SourceVerifier, Any]]


def verifier(settings: Settings, sources: Sources) -> Callable[[bytes, dict[str, str]], str]:
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
        for name, (webhook, _) in sources.items():
            try:
                webhook.verify(body, headers, json_parse=False)
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
