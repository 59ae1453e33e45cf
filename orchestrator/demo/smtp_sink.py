"""A local SMTP sink (aiosmtpd on loopback) for the demo and benchmarks.

``SmtpSink(out_dir)`` accepts every message and writes it as an ``.eml`` file a person can
open in a mail client; ``SmtpSink(None)`` only counts. Use it as a context manager; ``port``
is chosen free on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, out_dir: Path | None):
        self.out_dir = out_dir
        self.count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, ARG002 - aiosmtpd's hook signature
        with self._lock:
            self.count += 1
            n = self.count
        if self.out_dir is not None:
            (self.out_dir / f"{n:06d}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 OK"


class SmtpSink:
    def __init__(self, out_dir: Path | None = None, host: str = "127.0.0.1", port: int | None = None):
        self.host = host
        self.port = port or free_port(host)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        self.handler = _Handler(out_dir)
        self._controller = Controller(self.handler, hostname=host, port=self.port)

    @property
    def received(self) -> int:
        return self.handler.count

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._controller.stop()
