"""SMTP PIPELINING (RFC 2920) for the e-mail channel: the wire format and the one-thread streamer.

What this module offers (``channels.email`` is its only user; nothing here knows about batches,
outcomes or journals):

* **Wire helpers.** ``Wire`` is one message ready to send (CRLF bytes, not dot-stuffed, its
  Message-ID, whether it needs SMTPUTF8); ``envelope_group`` its MAIL, RCPT and DATA as one
  pipelined group; ``content`` its DATA content (dot-stuffed, with the final dot);
  ``read_replies`` the first ``n`` complete replies in a buffer, parsed as
  ``smtplib.SMTP.getreply`` parses them; ``envelope_error`` the exception ``smtplib`` raises for
  a refused envelope; ``pipelined_sendmail`` one message over an ``smtplib`` client with the
  envelope as one group (two round trips; the channel's slow path).

* **The streamer.** ``multiplex(connections, work, timeout)`` streams messages over open,
  greeted connections whose server offered PIPELINING, all from the calling thread with one
  ``poll``, until ``work`` has no more. Each write on a connection carries one message's
  content and final dot plus the next message's envelope group, so a message costs one round
  trip; a refused envelope is ended (an empty DATA, if it was accepted) and followed by RSET.
  ``work`` (``StreamWork``) is the caller's side: ``take`` the next message for a connection
  (``None``: no more), ``sent`` / ``refused`` record what the server said of one message,
  ``report`` reports what was recorded, ``requeue`` gives back a message of a lost connection,
  ``lost`` discards that connection.

What the streamer guarantees:

* **Crash bound.** ``work.report()`` is called after the replies of one ``poll`` are handled
  and before anything more is written on any connection, so at most one message per
  connection is in flight (its content written, its result not yet reported).
* **Nothing lost, nothing doubled by the streamer.** Every message taken is recorded
  (``sent``/``refused``) exactly once or given back (``requeue``) exactly once. A connection
  that is lost, silent for ``timeout`` seconds, says more than was asked or closes (421) is
  given up: its taken messages are requeued (one whose content was written is then sent again:
  at least once in that window) and ``work.lost(connection)`` is called. A connection whose
  work ran out is left open (blocking again, with ``timeout``) for the next batch.
* On an exception (raised by ``work``), every connection is given up as above, what was recorded
  is reported, and the exception propagates.

TLS sockets are written blocking (``sendall``), plain ones non-blocking (the rest of a write
waits for ``POLLOUT``); bytes TLS has decrypted but ``poll`` cannot see are read at once.
"""

from __future__ import annotations

import re
import select
import smtplib
import socket
import ssl
import time
from collections.abc import Sequence
from typing import Generic, NamedTuple, Protocol, TypeVar

from channels.base import TransientDeliveryError

__all__ = [
    "Reply",
    "StreamWork",
    "Taken",
    "Wire",
    "content",
    "envelope_error",
    "envelope_group",
    "multiplex",
    "pipelined_sendmail",
    "read_replies",
]


class Wire(NamedTuple):
    """One message ready to send: its bytes (CRLF, not dot-stuffed), Message-ID, whether it needs SMTPUTF8."""

    data: bytes
    message_id: str
    international: bool = False


Reply = tuple[int, bytes]
"""One SMTP reply: its code (``-1`` when not a number) and text."""

Taken = tuple[int, Wire, bytes]
"""A message taken for a stream: the caller's index of it, its bytes, its MAIL/RCPT/DATA group."""

_LEADING_DOT = re.compile(rb"(?m)^\.")
_LINE_DOT = re.compile(rb"\n\.")  # a regex finds it several times faster than ``in`` in a message's bytes
_MAX_REPLY_BYTES = 65536  # unread reply bytes a stream may hold before the server counts as broken


def envelope_group(sender: str, recipient: str, options: Sequence[str] = ()) -> bytes:
    """MAIL, RCPT and DATA of one message as one pipelined group (RFC 2920)."""
    if not options:
        return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii")
    extra = "".join(f" {o}" for o in options)
    envelope = f"MAIL FROM:<{sender}>{extra}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n"
    return envelope.encode("utf-8" if "SMTPUTF8" in options else "ascii")


def content(data: bytes) -> bytes:
    """A message's bytes as DATA content: dot-stuffed, ending with CRLF and the final ``.`` line."""
    if data[:1] == b"." or _LINE_DOT.search(data) is not None:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def envelope_error(sender: str, recipient: str, mail: Reply, rcpt: Reply, data: Reply) -> smtplib.SMTPException | None:
    """The exception ``smtplib.SMTP.sendmail`` raises for these replies to MAIL, RCPT and DATA, or None (354)."""
    if mail[0] != 250:
        return smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
    if rcpt[0] not in (250, 251):
        return smtplib.SMTPRecipientsRefused({recipient: rcpt})
    if data[0] != 354:
        return smtplib.SMTPDataError(*data)
    return None


def pipelined_sendmail(
    client: smtplib.SMTP, sender: str, recipient: str, data: bytes, options: Sequence[str] = ()
) -> None:
    """``client.sendmail(sender, [recipient], data, options)`` with MAIL, RCPT and DATA as one group (RFC 2920).

    Two round trips instead of four: the envelope commands go out together and their replies are
    read in order, then the content. Raises the exceptions ``smtplib.SMTP.sendmail`` raises for
    the same replies (``SMTPSenderRefused``, ``SMTPRecipientsRefused``, ``SMTPDataError``, and
    ``SMTPServerDisconnected`` when the connection is lost), so the error mapping is the same.
    The server must have offered PIPELINING and the client must have greeted it (EHLO).
    """
    client.send(envelope_group(sender, recipient, options))
    mail, rcpt, data_reply = client.getreply(), client.getreply(), client.getreply()
    error = envelope_error(sender, recipient, mail, rcpt, data_reply)
    if error is not None:
        if data_reply[0] == 354:
            client.send(b".\r\n")  # RFC 2920: DATA was accepted although the envelope was not; end it empty
            client.getreply()
        if 421 in (mail[0], rcpt[0], data_reply[0]):
            client.close()
        else:
            _reset(client)
        raise error
    client.send(content(data))
    code, reply = client.getreply()
    if code != 250:
        if code == 421:
            client.close()
        else:
            _reset(client)
        raise smtplib.SMTPDataError(code, reply)


def _reset(client: smtplib.SMTP) -> None:
    """RSET after a refused transaction, as ``sendmail`` does; a dropped connection shows on the next command."""
    try:
        client.rset()
    except smtplib.SMTPServerDisconnected:
        pass


def read_replies(buffer: bytes, n: int) -> tuple[list[Reply], int] | None:
    """The first ``n`` complete SMTP replies in ``buffer`` and how many bytes they take; None until all are there.

    Each reply is ``(code, text)`` as ``smtplib.SMTP.getreply`` gives it (the code of the last
    line, ``-1`` when it is not a number; the lines' texts joined by LF), except that the text
    of a one-line reply still has its line end: ``stripped`` strips it when the text is used.
    """
    lines = buffer.split(b"\n", n)
    if len(lines) == n + 1 and not lines[n]:  # the common case: exactly n lines, each a reply of its own
        try:
            replies = [(int(line[:3]), line[4:]) for line in lines[:n] if line[3:4] != b"-"]
        except ValueError:
            replies = []
        if len(replies) == n:
            return replies, len(buffer)
    replies = []
    continued: list[bytes] = []
    start = 0
    while len(replies) < n:
        end = buffer.find(b"\n", start)
        if end < 0:
            return None
        line = buffer[start:end]
        start = end + 1
        if line[3:4] == b"-":
            continued.append(line[4:].strip(b" \t\r\n"))
            continue
        try:
            code = int(line[:3])
        except ValueError:
            code = -1
        if continued:
            continued.append(line[4:].strip(b" \t\r\n"))
            replies.append((code, b"\n".join(continued)))
            continued = []
        else:
            replies.append((code, line[4:]))
    return replies, start


def stripped(reply: Reply) -> Reply:
    """``reply`` with its text's surrounding white space (the line end ``read_replies`` leaves) removed."""
    return reply[0], reply[1].strip(b" \t\r\n")


C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)


class StreamWork(Protocol[C_contra]):
    """The caller's side of ``multiplex``: where messages come from and where their fate goes."""

    def take(self, connection: C_contra) -> Taken | None:
        """The next message for ``connection`` (a rate-limit slot taken), or None: no more work.

        A message the connection cannot take (e.g. SMTPUTF8 not offered) is recorded by the
        caller on the way, as it would record a refusal."""

    def sent(self, taken: Taken) -> None:
        """The server accepted the message (250 to its content)."""

    def refused(self, taken: Taken, replies: tuple[Reply, ...]) -> None:
        """The server refused the message: ``(content_reply,)`` or ``(mail, rcpt, data)``, texts stripped.

        Raises ``TransientDeliveryError`` when the reply says the connection is broken (e.g. a code
        that is not one): the connection is then given up and the message requeued."""

    def report(self) -> None:
        """Report what ``sent``/``refused`` recorded since the last call (called before any further write)."""

    def requeue(self, taken: Taken) -> None:
        """Give the message back (its connection was lost); it goes out again, the same bytes."""

    def lost(self, connection: C_contra) -> None:
        """``connection`` is given up: discard it (its messages were requeued)."""


_Pieces = tuple[bytes, ...]
"""One write: the pieces sent together (``socket.sendmsg``)."""


_GOOD_CODES = {
    1: [b"250 ", b""],  # the content's reply
    3: [b"250 ", b"250 ", b"354 ", b""],  # MAIL, RCPT, DATA (or RSET's reply, then content's with no more work)
    4: [b"250 ", b"250 ", b"250 ", b"354 ", b""],  # the content's (or RSET's), then MAIL, RCPT, DATA
}
"""The reply codes of a write whose replies all say yes, as the first four bytes of their lines (and the
empty rest after the last line end): handled without parsing (``_receive``)."""
_GOOD_REPLIES: dict[int, list[Reply]] = {n: [(int(c[:3]), b"") for c in codes[:-1]] for n, codes in _GOOD_CODES.items()}
"""What ``read_replies`` returns for them, but for the texts, which only refusals use."""


class _Lost(Exception):
    """A pipelined connection is gone, timed out or closing (421): discard it, requeue its messages."""


class _Stream(Generic[C]):
    """One pipelined connection in ``multiplex`` and what its last write asked the server."""

    __slots__ = (
        "buffer",
        "connection",
        "ended",
        "expect",
        "following",
        "outbox",
        "plain",
        "since",
        "skip",
        "sock",
        "spare",
    )

    def __init__(self, connection: C, sock: socket.socket):
        self.connection = connection
        self.sock = sock
        self.buffer = b""  # reply bytes read, not yet handled
        self.ended: Taken | None = None  # content and final dot written: its reply is awaited
        self.skip = 0  # or: replies to skip (the end of an empty DATA and RSET after a refused envelope)
        self.following: Taken | None = None  # MAIL, RCPT and DATA written: their three replies are awaited
        self.spare: Taken | None = None  # the message after it, built while the server works (not written)
        self.expect = 0  # replies the last write asks for
        self.since = 0.0  # time.monotonic() of the last write
        self.outbox = b""  # the rest of the last write, to send when the socket can take it
        self.plain = not isinstance(sock, ssl.SSLSocket)  # non-blocking while streaming (TLS: blocking)


def multiplex(connections: Sequence[tuple[C, socket.socket]], work: StreamWork[C], timeout: float) -> None:
    """Stream messages from ``work`` over the ``(connection, socket)`` pairs until the work runs out.

    See the module's docstring for what is written, when ``work`` is called and what is guaranteed.
    A connection is given up after ``timeout`` seconds without a reply it waits for.
    """
    _Multiplexer(work, timeout).run(connections)


class _Multiplexer(Generic[C]):
    def __init__(self, work: StreamWork[C], timeout: float):
        self.work = work
        self.timeout = timeout
        self.poller = select.poll()
        self.streams: dict[int, _Stream[C]] = {}

    def run(self, connections: Sequence[tuple[C, socket.socket]]) -> None:
        work, streams, poller, timeout = self.work, self.streams, self.poller, self.timeout
        try:
            writes = self._open(connections)
            check = time.monotonic() + 1.0
            while True:
                work.report()  # what the last poll's replies said, reported before anything more is written
                self._write_all(writes)
                if not streams:
                    return
                events = poller.poll(timeout * 1000)
                writes = []
                for fd, event in events:
                    stream = streams[fd]
                    try:
                        if event == select.POLLIN:  # the common case
                            following = self._on_read(stream)
                        else:
                            following = self._on_event(stream, event)
                    except (_Lost, TransientDeliveryError, OSError):
                        self._lose(stream)
                        continue
                    if following is None:  # no more work for it: the connection stays open for the next batch
                        del streams[fd]
                        poller.unregister(fd)
                        stream.sock.settimeout(timeout)
                    elif following:
                        writes.append((stream, following))
                now = time.monotonic()
                if not events or now > check:  # a connection silent for ``timeout`` seconds is lost
                    check = now + 1.0
                    writing = {id(s) for s, _ in writes}
                    for stream in [s for s in streams.values() if id(s) not in writing and now - s.since > timeout]:
                        self._lose(stream)
        except BaseException:
            for stream in list(streams.values()):
                self._lose(stream)
            work.report()  # learnt before the error (e.g. another connection's sender refused): they stand
            raise

    def _open(self, connections: Sequence[tuple[C, socket.socket]]) -> list[tuple[_Stream[C], _Pieces]]:
        """A stream for each connection that gets a message, in ``streams`` and the poller; their first writes."""
        writes: list[tuple[_Stream[C], _Pieces]] = []
        for connection, sock in connections:
            stream = _Stream(connection, sock)
            following = self.work.take(connection)
            if following is not None:  # its first write: the envelope alone
                stream.following, stream.expect = following, 3
                self.streams[sock.fileno()] = stream
                self.poller.register(sock, select.POLLIN)
                if stream.plain:
                    sock.setblocking(False)  # poll says when it can be read; no poll per call
                writes.append((stream, (following[2],)))
        return writes

    def _write_all(self, writes: list[tuple[_Stream[C], _Pieces]]) -> None:
        """Make the ``writes``, then take each stream's next message while the servers work."""
        now = time.monotonic()
        for stream, payload in writes:
            stream.since = now
            try:
                self._write(stream, payload)
            except OSError:
                self._lose(stream)
        for stream, _ in writes:
            if stream.following is not None and stream.spare is None:
                stream.spare = self.work.take(stream.connection)

    def _write(self, stream: _Stream[C], pieces: _Pieces) -> None:
        """Send ``pieces`` on ``stream`` as one write (``sendmsg``: no copy joins them); what a non-blocking
        socket cannot take now waits for POLLOUT."""
        if not stream.plain:
            stream.sock.sendall(b"".join(pieces))
            return
        try:
            n = stream.sock.sendmsg(pieces)
        except BlockingIOError:
            n = 0
        waiting = bool(stream.outbox)
        size = sum(map(len, pieces)) if len(pieces) > 1 else len(pieces[0])
        stream.outbox = (b"".join(pieces) if len(pieces) > 1 else pieces[0])[n:] if n < size else b""
        if stream.outbox or waiting:  # the events to wait for change
            self.poller.modify(stream.sock, select.POLLIN | select.POLLOUT if stream.outbox else select.POLLIN)

    def _on_event(self, stream: _Stream[C], event: int) -> _Pieces | None:
        """Go on sending the rest of the last write (POLLOUT); read what came in (``_on_read``)."""
        if event & select.POLLOUT and stream.outbox:
            self._write(stream, (stream.outbox,))
        if event == select.POLLOUT:
            return ()
        return self._on_read(stream)

    def _on_read(self, stream: _Stream[C]) -> _Pieces | None:
        """Read what ``stream``'s server sent; once it answered the whole last write, what to write next.

        Returns ``()`` while replies are missing, None when the stream has no more work, else
        the pieces of the next write (the content or RSET of the message whose envelope was
        answered, plus the next message's envelope). Raises ``_Lost``.
        """
        replies = self._receive(stream)
        if replies is None:
            return ()
        work = self.work
        k = stream.skip
        if stream.ended is not None:  # the reply to a message's content
            code = replies[0][0]
            if code == 250:
                work.sent(stream.ended)
            elif code == 421:
                raise _Lost
            else:
                work.refused(stream.ended, (stripped(replies[0]),))
            stream.ended, k = None, 1
        following = stream.following
        if following is None:
            if stream.buffer:  # the server said more than asked: not a connection to keep
                raise _Lost
            return None
        mail, rcpt, data_reply = replies[k], replies[k + 1], replies[k + 2]
        if mail[0] == 421 or rcpt[0] == 421 or data_reply[0] == 421:
            raise _Lost
        if mail[0] == 250 and rcpt[0] in (250, 251) and data_reply[0] == 354:
            payload = following[1].data
            if payload[-2:] != b"\r\n" or payload[:1] == b"." or _LINE_DOT.search(payload) is not None:
                payload = content(payload)[:-3]
            stream.ended, stream.skip = following, 0
        else:  # end a DATA the server took without a valid envelope, then reset
            work.refused(following, (stripped(mail), stripped(rcpt), stripped(data_reply)))
            payload = b"RSET\r\n"
            stream.skip = 1
            if data_reply[0] == 354:
                payload, stream.skip = b".\r\n" + payload, 2
        following = stream.spare if stream.spare is not None else work.take(stream.connection)
        stream.following, stream.spare = following, None
        if stream.ended is not None:  # the content ends with the final dot
            stream.expect = 1 if following is None else 4
            return (payload, b".\r\n", following[2]) if following is not None else (payload, b".\r\n")
        stream.expect = stream.skip + (3 if following is not None else 0)
        return (payload,) if following is None else (payload, following[2])

    @staticmethod
    def _receive(stream: _Stream[C]) -> list[Reply] | None:
        """The replies to ``stream``'s last write once they are all in (None until then); raises ``_Lost``."""
        sock = stream.sock
        try:
            data = sock.recv(65536)
            while not stream.plain and sock.pending():  # type: ignore[attr-defined] # decrypted bytes poll cannot see
                data += sock.recv(sock.pending())  # type: ignore[attr-defined]
        except BlockingIOError:
            return None
        except OSError as exc:
            raise _Lost from exc
        if not data:
            raise _Lost
        buffer = stream.buffer + data if stream.buffer else data
        good = _GOOD_CODES.get(stream.expect)
        if good is not None and [line[:4] for line in buffer.split(b"\n", stream.expect)] == good:
            stream.buffer = b""  # the common case, parsed cheaply: every reply the one hoped for, one line each
            return _GOOD_REPLIES[stream.expect]
        parsed = read_replies(buffer, stream.expect)
        if parsed is None:
            if len(buffer) > _MAX_REPLY_BYTES:
                raise _Lost
            stream.buffer = buffer
            return None
        replies, used = parsed
        stream.buffer = buffer[used:]
        return replies

    def _lose(self, stream: _Stream[C]) -> None:
        """Give up ``stream``'s connection; the messages taken for it go back to the work."""
        fd = stream.sock.fileno()
        if self.streams.pop(fd, None) is not None:
            self.poller.unregister(fd)
        for taken in (stream.spare, stream.following, stream.ended):
            if taken is not None:
                self.work.requeue(taken)
        stream.spare = stream.following = stream.ended = None
        self.work.lost(stream.connection)
