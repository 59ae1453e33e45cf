"""A real webhook receiver for tests: the reference receiver on uvicorn, with fault modes.

    with TestReceiver() as receiver:               # uvicorn on 127.0.0.1, a free port
        channel = CallCenterChannel(receiver.endpoint, FAST)
        receiver.fail(2)                           # the next 2 requests answer 500
        channel.send(batch, batch_key="k1")
        assert receiver.attempts["k1"] == 3        # every request, faulted or not
        assert receiver.tasks_per_customer() == {"C1": 1, ...}   # over distinct webhook-ids

Fault modes (queued; each applies to the next requests, in the order queued):

* ``fail(n=1, status=500)``: answer ``status`` (no processing);
* ``throttle(retry_after="1", n=1, status=429)``: answer 429 (or 503) with ``Retry-After``;
* ``slow(seconds, n=1)``: wait ``seconds`` before processing (longer than the client's
  timeout: the client gives up, the list is still stored when the wait is over);
* ``drop(n=1)``: process the list, start the response with a ``content-length`` and then
  drop the connection (the client never learns it was accepted);
* ``reject(status=400, body=...)``: from now on answer every request ``status``;
* ``reject_customers(ids, status=400)``: from now on answer ``status`` to lists that
  contain any of these customer ids.

Records: ``requests`` (headers of every request, in order), ``attempts`` (Counter by
webhook-id, every request), ``store`` (the reference ``BatchStore``: ``batches`` by
(path, webhook-id), ``redeliveries``), ``batches`` (accepted lists by webhook-id),
``redeliveries`` (Counter by webhook-id), ``tasks_per_customer()``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from channels.payloads import CallTaskList, MessageList, VisitList
from orchestrator.demo.webhook_receiver import BatchStore, ReceiverServer, receiver_app
from orchestrator.settings import WebhookEndpoint, WebhookSettings

__all__ = ["FAST", "SECRET", "TestReceiver"]

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""The signing secret of the test receiver (a test value, from the Standard Webhooks examples)."""

FAST = WebhookSettings(timeout=2.0, max_attempts=4, retry_wait=0.01, retry_wait_max=0.05, retry_after_max=5.0)
"""Webhook settings for tests: quick back-off, short timeout."""


@dataclass
class _Fault:
    kind: str  # "status", "slow", "drop"
    status: int = 500
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b'{"error": "simulated"}'
    seconds: float = 0.0


class _Dropped(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-response."""


class TestReceiver:
    """The reference receiver on ``path`` with fault modes (see the module docstring)."""

    __test__ = False  # not a pytest test class

    def __init__(self, path: str = "/hooks", secret: str = SECRET):
        self.path = "/" + path.strip("/")
        self.secret = secret
        self.store = BatchStore()
        self._inner = receiver_app({self.path: secret}, self.store)
        self._faults: deque[_Fault] = deque()
        self._always: _Fault | None = None
        self._reject_customers: tuple[frozenset[str], int] | None = None
        self._lock = threading.Lock()
        self.requests: list[dict[str, str]] = []  # headers of every request, in order of arrival
        self.arrivals: list[float] = []  # time.monotonic() of every request
        self.attempts: Counter[str] = Counter()  # webhook-id -> requests, faulted or not
        self._server = ReceiverServer(self)

    # -- set up -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._server.url + self.path

    @property
    def endpoint(self) -> WebhookEndpoint:
        return WebhookEndpoint(url=self.url, secret=SecretStr(self.secret))

    def __enter__(self) -> TestReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()

    # -- fault modes ------------------------------------------------------------------------------

    def fail(self, n: int = 1, status: int = 500) -> None:
        self._queue(n, _Fault("status", status))

    def throttle(self, retry_after: str | None = "1", n: int = 1, status: int = 429) -> None:
        headers = (("retry-after", retry_after),) if retry_after is not None else ()
        self._queue(n, _Fault("status", status, headers=headers))

    def slow(self, seconds: float, n: int = 1) -> None:
        self._queue(n, _Fault("slow", seconds=seconds))

    def drop(self, n: int = 1) -> None:
        self._queue(n, _Fault("drop"))

    def reject(self, status: int = 400, body: str = '{"error": "task list refused"}') -> None:
        self._always = _Fault("status", status, body=body.encode())

    def reject_customers(self, customer_ids: Iterable[str], status: int = 400) -> None:
        self._reject_customers = (frozenset(customer_ids), status)

    def heal(self) -> None:
        """The receiver is healthy again: queued faults, rejections and slow-downs are dropped."""
        with self._lock:
            self._faults.clear()
            self._always = None
            self._reject_customers = None

    def _queue(self, n: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * n)

    # -- records -------------------------------------------------------------------------------

    @property
    def batches(self) -> dict[str, CallTaskList | VisitList | MessageList]:
        """Accepted lists by webhook-id."""
        return {b.webhook_id: b.payload for b in self.store.lists(self.path)}

    @property
    def redeliveries(self) -> Counter[str]:
        """Webhook-id -> redeliveries answered (accepted again, not stored again)."""
        return Counter({wid: n for (path, wid), n in self.store.redeliveries.items() if path == self.path})

    def tasks_per_customer(self) -> Counter[str]:
        """Customer id -> tasks received, over distinct webhook-ids."""
        return self.store.tasks_per_customer(self.path)

    # -- the ASGI app ---------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self._inner(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            self.requests.append(headers)
            self.arrivals.append(time.monotonic())
            self.attempts[headers.get("webhook-id", "")] += 1
            fault = self._faults.popleft() if self._faults else self._always
        body = await _read_body(receive)
        if fault is None and self._reject_customers is not None:
            ids, status = self._reject_customers
            if ids & _customer_ids(body):
                fault = _Fault("status", status, body=b'{"error": "customer not in our system"}')
        replay = _replay(body)
        if fault is None:
            return await self._inner(scope, replay, send)
        if fault.kind == "status":
            await _respond(send, fault.status, fault.body, fault.headers)
        elif fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            await self._inner(scope, replay, send)
        elif fault.kind == "drop":

            async def dropping_send(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.body":
                    raise _Dropped("connection dropped mid-response (simulated)")
                await send(message)

            try:
                await self._inner(scope, replay, dropping_send)
            except _Dropped:
                # Let uvicorn see an app that failed after starting the response: it closes the
                # connection without the body the content-length promised.
                raise RuntimeError("connection dropped mid-response (simulated)") from None


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more: wait like a client that keeps the connection
        return {"type": "http.disconnect"}  # pragma: no cover

    return receive


async def _respond(send: Any, status: int, body: bytes, headers: tuple[tuple[str, str], ...]) -> None:
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _customer_ids(body: bytes) -> frozenset[str]:
    try:
        data = json.loads(body)
        items = data.get("tasks") or data.get("visits") or data.get("messages") or []
        return frozenset(str(item.get("customer_id")) for item in items)
    except (ValueError, AttributeError):
        return frozenset()
