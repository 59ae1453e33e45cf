"""Bounded resources for the response API: request bodies, time, and requests per source.

``BodyLimit`` is ASGI middleware in front of the app. For every request that may carry a
body (not GET, HEAD, OPTIONS) it

* answers **413** at once when ``Content-Length`` is above ``max_body`` (nothing is read), and
  otherwise reads the body as it streams in, answering 413 as soon as it grows past
  ``max_body`` (a chunked body has no length to check first);
* answers **503** (``Retry-After``) when holding the body would put the bodies held by all
  requests together above ``max_buffered``: memory stays bounded however many clients send
  at once;
* answers **408** when the body takes longer than ``timeout`` seconds to arrive (slow senders
  cannot hold a slot forever);
* hands the app the whole body; the app verifies the signature over it before parsing.

``SourceRates`` admits ``rate`` requests per second per source (GCRA from ``pyrate_limiter``,
a burst of one second's worth); the API answers 429 with ``Retry-After`` beyond it.

The answers are JSON ``{"detail": "..."}`` with ``Connection: close``, naming the limit and
the setting that sets it; they never echo the request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from fractions import Fraction
from typing import Any

import anyio
from pyrate_limiter import Limiter, Rate, SingleBucketFactory, StateBucket

__all__ = ["BodyLimit", "SourceRates"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"cache-control", b"no-store"),
    ]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware bounding request bodies in size, in memory over all requests, and in time."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_buffered: int, timeout: float):
        self.app = app
        self.max_body = max_body
        self.max_buffered = max_buffered
        self.timeout = timeout
        self.buffered = 0  # bytes of bodies held right now, over all requests (one event loop: no lock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, "Content-Length must be a whole number of bytes")
                return
            if int(length) > self.max_body:
                await _answer(send, 413, self._too_large())
                return
        held = 0
        try:
            body, held, refusal = await self._read(receive)
            if refusal is not None:
                await _answer(send, *refusal)
                return
            if body is None:  # the client went away
                return
            delivered = False

            async def replay() -> Message:
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.buffered -= held

    async def _read(self, receive: Receive) -> tuple[bytes | None, int, tuple | None]:
        """The body, the bytes reserved for it, and the answer to give instead of the app's (or None)."""
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None, size, None
                    chunk = message.get("body", b"")
                    if size + len(chunk) > self.max_body:
                        return None, size, (413, self._too_large())
                    if self.buffered + len(chunk) > self.max_buffered:
                        detail = (
                            "the server holds as many request bodies as it may right now "
                            "(CAMPAIGN_API_MAX_BUFFERED_BYTES); retry in a few seconds"
                        )
                        return None, size, (503, detail, {"Retry-After": "5"})
                    self.buffered += len(chunk)
                    size += len(chunk)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks), size, None
        except TimeoutError:
            detail = f"the request body did not arrive within {self.timeout:g} s (CAMPAIGN_API_BODY_TIMEOUT)"
            return None, size, (408, detail)

    def _too_large(self) -> str:
        return (
            f"the request body is larger than {self.max_body} bytes (CAMPAIGN_API_MAX_BODY_BYTES); "
            "send fewer events per request"
        )


class SourceRates:
    """``rate`` requests per second for each source name, with a burst of one second's worth."""

    def __init__(self, rate: float, names: list[str]):
        per_second = Fraction(rate).limit_denominator(1000)
        burst = max(1, int(rate))
        self.rate = rate
        self._limiters = {
            name: Limiter(
                SingleBucketFactory(
                    StateBucket([Rate(per_second.numerator, per_second.denominator * 1000, burst=burst)]),
                    schedule_leak=False,
                ),
                buffer_ms=0,
            )
            for name in names
        }

    def admit(self, name: str) -> bool:
        """Whether ``name`` may make one more request now (never blocks)."""
        limiter = self._limiters.get(name)
        return limiter is None or bool(limiter.try_acquire(name, blocking=False))
