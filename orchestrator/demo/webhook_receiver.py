"""A reference receiver of our webhooks: for channel-system developers and the demo.

    store = BatchStore(folder=Path("demo-output/webhooks"))   # folder optional
    app = receiver_app({"call_center": "whsec_...", "/webhook/crm": "whsec_..."}, store)
    with serve_receiver(app) as server:                       # uvicorn on 127.0.0.1, free port
        url = server.url + "/call_center"
        ...
    store.batches                                             # accepted lists by (path, webhook-id)

What every receiver should do, as this one does:

1. verify the Standard Webhooks signature over the raw body with the shared secret
   (``standardwebhooks.Webhook(secret).verify(body, headers)``): missing or wrong headers,
   a wrong signature or a timestamp more than 5 minutes off answer **401**;
2. parse the body as the payload the path expects (``channels.payloads``; ``call_center``,
   ``field_force`` and ``webhook/...`` paths take only their list type): invalid answers
   **422** with the problems (no values echoed);
3. treat a ``webhook-id`` it has already accepted as a redelivery: answer **200** again with
   the same receipt, and do not process the list a second time;
4. answer 2xx only once the list is stored; the JSON answer
   ``{"id": <receipt>, "status": "accepted" | "duplicate", "webhook_id": ...}`` gives the
   engine a receipt id.

``secrets`` keys are paths (``"/webhook/crm"``) or channel names (``"call_center"`` is the
path ``/call_center``). Each accepted list is kept in memory and, when the store has a
folder, written as ``<folder>/<path>/<webhook-id>.json`` (the raw body).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.payloads import CallTaskList, MessageList, VisitList, parse_payload

__all__ = ["BatchStore", "ReceivedBatch", "ReceiverServer", "receiver_app", "serve_receiver", "tasks_of"]

Payload = CallTaskList | VisitList | MessageList

EXPECTED_TYPES: dict[str, str] = {
    "call_center": "call_center.task_list",
    "field_force": "field_force.visit_list",
    "webhook": "webhook.message_list",
}
"""First path segment -> the only list type accepted there; other paths accept any list."""


def tasks_of(payload: Payload) -> list[Any]:
    """The tasks, visits or messages of a list."""
    if isinstance(payload, CallTaskList):
        return list(payload.tasks)
    if isinstance(payload, VisitList):
        return list(payload.visits)
    return list(payload.messages)


@dataclass(frozen=True)
class ReceivedBatch:
    """One accepted list."""

    path: str
    webhook_id: str
    receipt: str
    payload: Payload
    received_at: datetime
    body: bytes = field(repr=False)


class BatchStore:
    """Accepted lists by ``(path, webhook-id)``, redeliveries counted; thread-safe.

    ``folder``: also write each accepted list's body as ``<folder>/<path>/<webhook-id>.json``.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = folder
        self.batches: dict[tuple[str, str], ReceivedBatch] = {}
        self.redeliveries: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, path: str, webhook_id: str, payload: Payload, body: bytes) -> tuple[ReceivedBatch, bool]:
        """Store a verified list; returns it and whether it is new (``False``: a redelivery)."""
        key = (path, webhook_id)
        with self._lock:
            known = self.batches.get(key)
            if known is not None:
                self.redeliveries[key] += 1
                return known, False
            batch = ReceivedBatch(path, webhook_id, f"r{len(self.batches) + 1:06d}", payload, datetime.now(UTC), body)
            if self.folder is not None:
                _write(self.folder / _safe(path.strip("/") or "root") / f"{_safe(webhook_id)}.json", body)
            self.batches[key] = batch
            return batch, True

    def lists(self, path: str | None = None) -> list[ReceivedBatch]:
        """The accepted lists (of ``path`` if given), in order of arrival."""
        with self._lock:
            return [b for b in self.batches.values() if path is None or b.path == path]

    def tasks_per_customer(self, path: str | None = None) -> Counter[str]:
        """Customer id -> tasks received for it, over distinct webhook-ids (redeliveries not counted)."""
        return Counter(task.customer_id for batch in self.lists(path) for task in tasks_of(batch.payload))

    @property
    def redelivered(self) -> int:
        """Redeliveries answered in all."""
        with self._lock:
            return sum(self.redeliveries.values())


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:200] or "_"


def _write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(body)
    tmp.replace(path)


def _path(key: str) -> str:
    return "/" + key.strip("/")


def receiver_app(secrets: Mapping[str, str | SecretStr], store: BatchStore | None = None) -> Starlette:
    """An ASGI app that accepts our signed lists on one path per entry of ``secrets``.

    ``secrets``: path or channel name -> the endpoint's Standard Webhooks secret. ``store``:
    where accepted lists go (default: a new in-memory ``BatchStore``, as ``app.state.store``).
    """
    store = store if store is not None else BatchStore()
    verifiers = {
        _path(key): Webhook(s.get_secret_value() if isinstance(s, SecretStr) else s) for key, s in secrets.items()
    }

    async def receive(request: Request) -> JSONResponse:
        path = request.url.path
        body = await request.body()
        try:
            verifiers[path].verify(body, dict(request.headers), json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed signature or body
            return JSONResponse({"error": "invalid signature", "detail": str(exc)[:100]}, status_code=401)
        webhook_id = request.headers["webhook-id"]
        try:
            payload = parse_payload(body)
        except ValidationError as exc:
            problems = exc.errors(include_url=False, include_input=False, include_context=False)
            return JSONResponse(
                {"error": "invalid payload", "problems": json.loads(json.dumps(problems, default=str))}, 422
            )
        expected = EXPECTED_TYPES.get(path.strip("/").split("/")[0])
        if expected is not None and payload.type != expected:
            return JSONResponse({"error": "invalid payload", "detail": f"{path} takes {expected} lists"}, 422)
        if payload.batch_id != webhook_id:
            return JSONResponse({"error": "invalid payload", "detail": "batch_id differs from webhook-id"}, 422)
        batch, new = store.add(path, webhook_id, payload, body)
        return JSONResponse(
            {"id": batch.receipt, "status": "accepted" if new else "duplicate", "webhook_id": webhook_id}
        )

    app = Starlette(routes=[Route(path, receive, methods=["POST"]) for path in verifiers])
    app.state.store = store
    return app


class ReceiverServer:
    """uvicorn serving an ASGI app in a background thread on a loopback port (context manager).

    ``url`` is ``http://127.0.0.1:<port>``; ``stop()`` (or leaving the ``with``) shuts it down.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0):
        import socket

        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, timeout_keep_alive=5
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ReceiverServer:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"webhook-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = datetime.now(UTC).timestamp() + 10
        while not self._server.started:
            if not self._thread.is_alive() or datetime.now(UTC).timestamp() > deadline:
                raise RuntimeError(f"webhook receiver on {self.url} did not start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._server.should_exit = True
        thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> ReceiverServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_receiver(app: Any, host: str = "127.0.0.1", port: int = 0) -> ReceiverServer:
    """Start ``app`` with uvicorn in a background thread on ``host:port`` (0: a free port).

    Returns the running ``ReceiverServer``; use it as a context manager or call ``stop()``.
    """
    return ReceiverServer(app, host, port).start()
