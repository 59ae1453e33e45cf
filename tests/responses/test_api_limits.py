"""The response API's limits against hostile and careless clients: body size, memory, time, rate.

Problem 2 of issue 15: bodies were read whole before the signature was checked (one unsigned 50 MB
request: +42 MB RSS; six at once: 622 MB) and a signed 53 MB body was parsed in the event loop,
stalling the pixel, clicks and ``/healthz``. The figures (peak RSS, health latency) are printed by
``bench/api_limits_bench.py``; here the behaviour is checked, and the memory bound of the flood.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from orchestrator.demo.webhook_receiver import serve_receiver
from orchestrator.responses.api import create_app
from tests.responses.test_response_api import CC_SECRET, api_settings, event, post
from tests.support.flood import api_process, flood, post_large, rss_mb
from tests.support.responses import make_ledger, stored


@pytest.fixture
def limited(engine, settings):
    """(settings, ledger, base url) of an API with small limits."""
    settings = api_settings(settings, max_body_bytes=8192, max_buffered_bytes=8192, body_timeout=1.0, source_rate=0.01)
    book = make_ledger(engine, settings)
    with serve_receiver(create_app(settings)) as server:
        yield settings, book, server.url


def _raw(base: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=30)


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_large_bodies_are_refused_while_streaming(limited, engine):
    _, _, base = limited
    assert post_large(base, 50 * 2**20, chunked=False) in (413, 0)  # Content-Length too large: nothing read
    with _raw(base) as sock:  # the answer comes before the body is sent at all
        sock.sendall(b"POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 413")
    assert post_large(base, 50 * 2**20, chunked=True) in (413, 0)  # no length given: cut off once past the limit
    with _raw(base) as sock:
        sock.sendall(b"POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"%x\r\n%s\r\n" % (9000, b"x" * 9000))
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"CAMPAIGN_API_MAX_BODY_BYTES" in answer
    assert stored(engine) == []


def test_slow_bodies_time_out(limited):
    _, _, base = limited
    with _raw(base) as sock:
        sock.sendall(b"POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        answer = _answer(sock)  # the server gives up after CAMPAIGN_API_BODY_TIMEOUT (1 s here)
    assert answer.startswith(b"HTTP/1.1 408") and b"CAMPAIGN_API_BODY_TIMEOUT" in answer


def test_bodies_held_at_once_are_bounded(limited):
    """While one client holds 6,000 bytes of body, another's 3,000 would pass 8,192 held: 503, retry later."""
    _, _, base = limited
    with _raw(base) as holder:
        holder.sendall(b"POST /v1/outcomes HTTP/1.1\r\nHost: x\r\nContent-Length: 8000\r\n\r\n" + b"x" * 6000)
        deadline = time.monotonic() + 30  # until the server holds the first body (no fixed wait)
        while True:
            answer = httpx.post(f"{base}/v1/outcomes", content=b"y" * 3000, timeout=30)
            if answer.status_code == 503 or time.monotonic() > deadline:
                break
        assert answer.status_code == 503 and answer.headers["retry-after"]
        assert "CAMPAIGN_API_MAX_BUFFERED_BYTES" in answer.json()["detail"]
    # once the holder is gone, its bytes are released
    deadline = time.monotonic() + 30
    while httpx.post(f"{base}/v1/outcomes", content=b"y" * 3000, timeout=30).status_code == 503:
        assert time.monotonic() < deadline, "the held body was never released"


def test_source_rate_limit(limited, engine):
    _, book, base = limited
    with httpx.Client(base_url=base, timeout=30) as client:
        assert post(client, [event("r1", book.ref("c1"))]).status_code == 200
        answer = post(client, [event("r2", book.ref("c2"))])
        assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
        assert "CAMPAIGN_API_SOURCE_RATE" in answer.json()["detail"]
        body = json.dumps({"events": [event("r3", book.ref("c3"))]})  # unsigned: 401 before any rate is counted
        assert (
            client.post("/v1/outcomes", content=body, headers={"content-type": "application/json"}).status_code == 401
        )
    assert [r[1] for r in stored(engine)] == ["r1"]


@pytest.mark.slow
def test_fifty_large_requests_at_once_keep_memory_bounded(tmp_path):
    """50 concurrent 50 MB requests (half with Content-Length, half chunked) against `campaign api` in its
    own process: the server's peak RSS stays under 300 MB, every request is refused (413, or 503 while
    bodies are held), nothing answers 5xx otherwise, and /healthz answers throughout."""
    with api_process(tmp_path, {"CAMPAIGN_API_SOURCES__CALL_CENTER__SECRET": CC_SECRET}) as (pid, base):
        before = rss_mb(pid, "VmRSS")
        seen = flood(base, requests=50, size=50 * 2**20)
        peak = rss_mb(pid)
    assert len(seen.statuses) == 50
    assert set(seen.statuses) <= {413, 503, 0}, seen.statuses  # 0: closed before we could read the 413
    assert seen.health_failures == 0 and seen.health_ms
    assert peak < 300, f"peak RSS {peak:.0f} MiB (at start {before:.0f} MiB)"
