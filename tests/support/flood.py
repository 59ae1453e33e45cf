"""Hostile load on the response API in its own process: many large bodies at once, and the health check meanwhile.

Used by ``tests/responses/test_api_limits.py`` (what the limits do) and ``bench/api_limits_bench.py``
(how much memory and latency they keep). Everything talks to 127.0.0.1 only, with bounded loops.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
PIECE = b"x" * 65536


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def api_process(folder: Path, env: dict[str, str], *, start_timeout: float = 60.0) -> Iterator[tuple[int, str]]:
    """``campaign api`` (``python -m orchestrator.cli.api``) in its own process on a free port: ``(pid, base url)``."""
    port = free_port()
    environment = os.environ | {
        "CAMPAIGN_DATABASE_URL": f"sqlite:///{folder / 'api.db'}",
        "CAMPAIGN_PATHS_DATA_DIR": str(folder / "var"),
        "CAMPAIGN_PATHS_RULES_DIR": str(REPO / "rules"),
        "CAMPAIGN_API_PORT": str(port),
        "PYTHONPATH": str(REPO),
        **env,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.api"],
        cwd=folder,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("campaign api did not start") from None
                time.sleep(0.1)
        yield server.pid, base
    finally:
        server.terminate()
        server.wait(timeout=30)


def health_latencies(base: str, n: int = 20) -> list[float]:
    """Milliseconds of ``n`` health checks one after another (no load)."""
    times = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(n):
            start = time.perf_counter()
            client.get("/healthz").raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    return times


def rss_mb(pid: int, field_name: str = "VmHWM") -> float:
    """Resident memory of process ``pid`` in MiB: ``VmHWM`` is the peak so far, ``VmRSS`` now (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field_name} for process {pid}")


def post_large(base: str, size: int, *, chunked: bool, timeout: float = 60.0) -> int:
    """POST ``size`` bytes to ``/v1/outcomes`` over a raw socket (with Content-Length, or chunked);
    the status code the server answered (0 when it closed without one)."""
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        head = "POST /v1/outcomes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
        try:
            sock.sendall(head.encode())
            sent = 0
            while sent < size:
                piece = PIECE[: min(len(PIECE), size - sent)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed while we were still sending: read its answer
            pass
        try:
            first = sock.recv(64)
        except OSError:
            return 0
    parts = first.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


@dataclass
class Flood:
    """What ``flood`` saw: the answers to the large requests and the health check's latencies meanwhile."""

    statuses: list[int] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    health_failures: int = 0
    seconds: float = 0.0


def _senders(base: str, requests: int, size: int, seconds: float, out) -> None:  # noqa: ANN001 - a Queue
    """In a child process (its own GIL, so the health probe measures the server, not the senders):
    ``requests`` threads posting until ``seconds`` have passed; the statuses go to ``out``."""
    statuses: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        until = time.monotonic() + seconds
        while True:
            status = post_large(base, size, chunked=bool(i % 2))
            with lock:
                statuses.append(status)
            if time.monotonic() >= until:
                break

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600 + seconds)
    out.put(statuses)


def flood(
    base: str, *, requests: int = 50, size: int = 50 * 2**20, seconds: float = 0.0, health_interval: float = 0.05
) -> Flood:
    """``requests`` concurrent POSTs of ``size`` bytes (half with Content-Length, half chunked) from a
    child process, each client posting again until ``seconds`` have passed (once when 0), while
    ``/healthz`` is asked every ``health_interval`` seconds from this process; returns what was seen."""
    import multiprocessing

    result = Flood()
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while not done.is_set():
                start = time.perf_counter()
                try:
                    ok = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    result.health_ms.append((time.perf_counter() - start) * 1000)
                else:
                    result.health_failures += 1
                done.wait(health_interval)

    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    prober = threading.Thread(target=probe, daemon=True)
    start = time.perf_counter()
    senders = context.Process(target=_senders, args=(base, requests, size, seconds, out), daemon=True)
    senders.start()
    prober.start()
    try:
        result.statuses = out.get(timeout=900 + seconds)
    finally:
        result.seconds = time.perf_counter() - start
        done.set()
        senders.join(timeout=60)
        prober.join(timeout=60)
    return result
