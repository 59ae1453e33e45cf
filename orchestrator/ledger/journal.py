"""Send journal: an append-only file of deliveries not yet written to the ledger.

The ledger is updated in bulk per chunk; a process killed in the middle of a chunk would
otherwise forget which of the chunk's messages the channel already accepted, and send them
again. Each accepted delivery is therefore appended here (one ``write`` system call, which
survives the process being killed) the moment the channel confirms it; deliveries the channel
confirms together (``report_all``: the replies of several SMTP connections read at once) are
appended with one ``write`` between them, a group commit that the channel makes before it
sends anything more, so the window a kill leaves is unchanged. On the next run
``recover`` marks the journalled contacts sent before anything else is sent, then the
journal is emptied. The file is also locked while a wave is being sent, so two processes on
one machine never send the same wave at once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

from channels.base import DeliveryResult
from orchestrator.settings import private_dir


class WaveBusy(RuntimeError):
    """Another process is sending this wave right now."""


class SendJournal:
    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> SendJournal:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise WaveBusy(f"the wave is being sent by another process (lock on {self.path})") from exc
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def entries(self) -> dict[int, str]:
        """``{contact_id: message_id}`` of journalled deliveries (a torn last line is ignored)."""
        if not self.path.exists():
            return {}
        found: dict[int, str] = {}
        for line in self.path.read_text().splitlines():
            contact_id, sep, message_id = line.partition("\t")
            if sep and contact_id.isdigit():
                found[int(contact_id)] = message_id
        return found

    def append(self, result: DeliveryResult) -> None:
        """Journal an accepted delivery (other outcomes are not needed for exactly-once)."""
        if result.outcome != "sent":
            return
        assert self._fd is not None, "journal not open"
        os.write(self._fd, f"{result.contact_id}\t{result.provider_id or ''}\n".encode())

    __call__ = append  # the journal is a channel's ``on_result`` callback

    def report_all(self, results: Sequence[DeliveryResult]) -> None:
        """Journal the accepted deliveries among ``results`` with one ``write`` (``channels.base.report_all``)."""
        lines = "".join([f"{r.contact_id}\t{r.provider_id or ''}\n" for r in results if r.outcome == "sent"])
        if lines:
            assert self._fd is not None, "journal not open"
            os.write(self._fd, lines.encode())

    def clear(self) -> None:
        """Forget the journalled deliveries once the ledger has them."""
        assert self._fd is not None, "journal not open"
        os.ftruncate(self._fd, 0)
