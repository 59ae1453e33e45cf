"""The SMTP sink the benchmarks send to: postfix's C ``smtp-sink`` when it is installed, else the Python sink.

Install ``smtp-sink`` on Debian (it comes with postfix; the postfix daemon itself is not needed,
and is stopped if the package started it)::

    sudo sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y postfix && (postfix stop || true)'

``smtp_sink()`` starts one on a free loopback port and stops it on exit; ``sink.name`` says
which one runs (the benchmarks print it). ``sink.count()`` is the number of messages it
accepted so far. ``smtp-sink`` runs with ``-c`` (a running message counter on its output);
with ``dump=True`` it also appends every transaction to a dump file on ``/dev/shm`` and
``sink.recipients()`` counts the messages per envelope recipient (slower: the sink writes
every message). The Python sink (``orchestrator.demo.smtp_sink.SmtpSink``, aiosmtpd) runs in a
process of its own and always counts per recipient.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SMTP_SINK = "smtp-sink"
APT_COMMAND = "DEBIAN_FRONTEND=noninteractive apt-get install -y postfix && (postfix stop || true)"
_COUNTER = re.compile(rb"mesg=(\d+)")
_RCPT = re.compile(rb"^X-Rcpt-Args: <([^>]*)>", re.MULTILINE)


def smtp_sink_path() -> str | None:
    """Where postfix's ``smtp-sink`` is installed, or None."""
    return shutil.which(SMTP_SINK) or next(
        (p for p in ("/usr/sbin/smtp-sink", "/usr/local/sbin/smtp-sink") if os.access(p, os.X_OK)), None
    )


class CSink:
    """postfix's ``smtp-sink`` on 127.0.0.1:``port`` (a C process; counts messages, optionally dumps them)."""

    def __init__(self, path: str, port: int, *, dump: bool = False):
        self.port = port
        self.name = "postfix smtp-sink (C)" + (", dumping every message" if dump else "")
        shm = Path("/dev/shm")
        self._dir = Path(tempfile.mkdtemp(prefix="bench-sink-", dir=shm if shm.is_dir() else None))
        self._dir.chmod(0o777)  # smtp-sink drops to an unprivileged user when started as root
        self._out = self._dir / "counter.out"
        self._dump = self._dir / "dump" if dump else None
        command = [path, "-c"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]
        if self._dump is not None:
            command += ["-D", str(self._dump)]
        command += [f"127.0.0.1:{port}", "256"]
        self._stdout = self._out.open("wb")
        self._process = subprocess.Popen(command, stdout=self._stdout, stderr=subprocess.STDOUT, cwd=self._dir)

    def wait_ready(self, timeout: float = 30.0) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"smtp-sink exited: {self._out.read_text(errors='replace')[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.recv(100)
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"smtp-sink did not answer on port {self.port} within {timeout:g} s")

    def count(self) -> int:
        """Messages accepted so far (the sink's own counter)."""
        with self._out.open("rb") as out:
            out.seek(max(0, self._out.stat().st_size - 256))
            found = _COUNTER.findall(out.read())
        return int(found[-1]) if found else 0

    def recipients(self) -> Counter[str] | None:
        """Messages per envelope recipient so far (None without a dump)."""
        if self._dump is None:
            return None
        if not self._dump.exists():
            return Counter()
        return Counter(m.decode() for m in _RCPT.findall(self._dump.read_bytes()))

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _python_sink(port: int, ready, stop, pipe) -> None:  # noqa: ANN001 - multiprocessing objects
    """Child process: the aiosmtpd sink counting per recipient; answers ``pipe`` with the counter on request."""
    from orchestrator.demo.smtp_sink import SmtpSink

    counter: Counter[str] = Counter()
    with SmtpSink(None, port=port) as sink:
        count_data = sink.handler.handle_DATA

        async def handle_data(server, session, envelope):  # noqa: ANN001, ANN202
            reply = await count_data(server, session, envelope)
            counter.update(envelope.rcpt_tos)
            return reply

        sink.handler.handle_DATA = handle_data  # type: ignore[method-assign]  # aiosmtpd looks the hook up on the handler
        ready.set()
        while not stop.is_set():
            if pipe.poll(0.05):
                pipe.recv()
                pipe.send(dict(counter))


class PySink:
    """The aiosmtpd sink in a process of its own (counts per recipient)."""

    name = "aiosmtpd sink (Python; install postfix for smtp-sink)"

    def __init__(self, port: int):
        self.port = port
        context = multiprocessing.get_context("spawn")
        self._ready, self._stop = context.Event(), context.Event()
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_python_sink, args=(port, self._ready, self._stop, child), daemon=True)
        self._process.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not self._ready.wait(timeout):
            raise RuntimeError("the Python SMTP sink did not start")

    def recipients(self) -> Counter[str]:
        self._pipe.send("counts")
        return Counter(self._pipe.recv())

    def count(self) -> int:
        return sum(self.recipients().values())

    def close(self) -> None:
        self._stop.set()
        self._process.join(30)


@contextmanager
def smtp_sink(*, dump: bool = False, python: bool = False) -> Iterator[CSink | PySink]:
    """A sink on a free loopback port: ``smtp-sink`` if installed (and not ``python``), else the Python one."""
    from orchestrator.demo.smtp_sink import free_port

    path = None if python else smtp_sink_path()
    sink: CSink | PySink = CSink(path, free_port(), dump=dump) if path else PySink(free_port())
    try:
        sink.wait_ready()
        yield sink
    finally:
        sink.close()


def settled_count(sink: CSink | PySink, expected: int, timeout: float = 60.0) -> int:
    """The sink's count once it reached ``expected`` or stopped growing (it updates after each message)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now = sink.count()
        if now >= expected or now == last:
            return now
        last = now
        time.sleep(0.05)
    return sink.count()
