"""E-mail over SMTP (``smtplib``), one message per recipient over a few reused connections.

Payload (``Outbound``):

* ``recipient``: the ``To`` address (and the only envelope recipient);
* ``parts["subject"]``: the subject (required; line breaks are folded to spaces);
* ``parts["text"]`` and/or ``parts["html"]``: the body; at least one, both make a
  ``multipart/alternative`` message;
* ``key``: the ``Message-ID`` (``<local@domain>``; a key without ``@`` gets the sender's
  domain, missing angle brackets are added). It is also the result's ``provider_id``;
* ``headers``: added as they are, e.g. ``List-Unsubscribe`` and ``List-Unsubscribe-Post``;
  they may not replace ``From``, ``To``, ``Subject``, ``Message-ID``, ``Date`` or the MIME
  headers.

``From`` is the ``sender`` given to the channel (``"Bank <news@bank.example>"`` is fine; the
envelope sender is its address), ``Reply-To`` the optional ``reply_to``.

Building: the channel's ``MessageSkeleton`` (``channels.mime``) holds what all its messages
share and fills in each message's parts (7bit or quoted-printable, CRLF, lines of at most 998
octets); what it does not cover (an internationalised address, which needs SMTPUTF8, or an odd
header) is built by the standard ``email`` package. ``signer`` (optional, e.g. DKIM) then gets
each message's bytes and returns the bytes to send (``channels.mime.MessageSigner``).

Sending: when the server offers PIPELINING (RFC 2920) and ``pipelining`` is on, each
connection streams (``channels.smtp_stream.multiplex``): one write carries a message's content
and final dot plus the next message's MAIL, RCPT and DATA, so a message costs one round trip.
The open streaming connections are served together by one thread (``poll``; replies read in
bulk and parsed there, not line by line through ``smtplib``); the results of the replies found
in one poll are reported together (``channels.base.report_all``: a send journal writes them
with one system call) before the next message's content is written on any connection, so at
most one message per connection is in flight. Without PIPELINING, one command at a time
(``smtplib``).

Outcomes, per message: a 2xx reply is ``"sent"``; a 4xx reply to MAIL, RCPT or DATA is
retried (at the end of the batch, up to ``max_retries`` times with exponential back-off
from ``retry_wait`` plus jitter) and then ``"transient"``; a 5xx reply is ``"permanent"``
with the reply as detail (``"550 5.1.1 <address>: Recipient address rejected"``; e-mail
addresses are blanked out). A permanent reply saying that the address does not exist
(``is_hard_bounce``: 550/551/553 with enhanced status 5.1.0-3, 5.1.6 or 5.1.10, or a
bare 550 "user unknown") also has ``hard_bounce=True``; policy and content rejections
(5.7.x, 552, ...) do not. For the channel as a whole: a lost or refused connection, a
timeout or a ``421`` is retried on a new connection with the same back-off, and raises
``TransientDeliveryError`` if it persists on every connection; refused credentials, a
refused sender address, a missing STARTTLS/AUTH extension or an invalid TLS certificate
raise ``PermanentDeliveryError``. Results reported before the error stand.
``channels.smtp_errors`` holds the mapping.

Concurrency: a batch is spread over up to ``connections`` SMTP connections; a connection
is opened when first needed (one thread each, which sends the slow way until the
connection streams: its first message, or every message without PIPELINING), kept open
across batches (re-opened transparently when the server dropped it) and closed by
``close()``. A connection lost while streaming gives its messages back to the queue and is
re-opened the slow way. A connection that cannot be (re)opened while others still work
leaves its messages to them (e.g. a server that allows fewer connections than configured).
``on_result`` is called from one thread at a time, so it need not be thread-safe.
``max_per_second`` caps SMTP transactions per second over all connections
(``pyrate_limiter``, GCRA with a burst of a tenth of a second's worth).

Limits: one recipient per SMTP transaction; one ``send`` at a time per channel (concurrent
calls wait for each other). A message whose reply was lost to a timeout or a dropped
connection after its DATA is sent again (on another or a new connection): delivery is at least once
in that window, and the receiver sees the same ``Message-ID``.

Settings (``SmtpSettings``, ``CAMPAIGN_SMTP_*``): ``host``, ``port``, ``security``
(``none`` / ``starttls`` / ``tls``), ``username`` and ``password`` (login when a username
is set; the password is never logged), ``timeout`` (seconds per command), ``max_retries``,
``retry_wait``, ``local_hostname`` (EHLO name), ``validate_certs``, ``connections``,
``max_per_second``.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from fractions import Fraction
from typing import Any, NamedTuple

from pyrate_limiter import Limiter, Rate, SingleBucketFactory, StateBucket
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from channels.base import (
    Channel,
    DeliveryReport,
    DeliveryResult,
    Outbound,
    Outcome,
    ResultCallback,
    TransientDeliveryError,
    report_all,
)
from channels.mime import MessageSigner, MessageSkeleton
from channels.smtp_errors import classify_smtp_error, connect_error, says_no_such_address
from channels.smtp_stream import Reply, Taken, Wire, envelope_error, envelope_group, multiplex, pipelined_sendmail
from orchestrator.settings import SmtpSettings

__all__ = [
    "EmailChannel",
    "SmtpFactory",
    "open_smtp",
    "pipelined_sendmail",
    "rate_limiter",
]

log = logging.getLogger(__name__)

# RFC 5322 allows 998 characters a line; with the default 78, a long List-Unsubscribe URL
# would be turned into an encoded word that mail clients cannot use as a link.
_POLICY = email_policy.default.clone(max_line_length=998)
_WIRE = _POLICY.clone(linesep="\r\n")
_WIRE_UTF8 = _WIRE.clone(utf8=True)

SmtpFactory = Callable[[SmtpSettings], smtplib.SMTP]
"""Opens a connected client for the settings (TLS set up, not logged in); default ``open_smtp``."""

_RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Subject",
        "Message-ID",
        "Date",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)


def rate_limiter(max_per_second: float | None) -> Limiter | None:
    """A thread-safe ``pyrate_limiter.Limiter`` admitting ``max_per_second`` overall, or ``None``.

    GCRA (a leaky bucket as one timestamp) with a burst of a tenth of a second's worth (at
    least 1), so the output is smooth; ``try_acquire("smtp")`` blocks until a slot is free.
    """
    if max_per_second is None:
        return None
    if max_per_second <= 0:
        raise ValueError(
            f"The 'max_per_second' parameter must be a positive number or None. Got {max_per_second!r} instead."
        )
    per_second = Fraction(max_per_second).limit_denominator(1000)  # 0.5 -> 1 per 2 s, 20 -> 20 per 1 s
    burst = max(1, int(max_per_second / 10))
    rate = Rate(per_second.numerator, per_second.denominator * 1000, burst=burst)
    # The state lives in memory and leaking is a no-op for GCRA: no background thread; the
    # clock is monotonic in-process, so no buffer against clock drift is needed.
    return Limiter(SingleBucketFactory(StateBucket([rate]), schedule_leak=False), buffer_ms=0)


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not settings.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def open_smtp(settings: SmtpSettings) -> smtplib.SMTP:
    """Connect to the configured server, with implicit TLS or STARTTLS as configured (no login)."""
    common: dict[str, Any] = {"local_hostname": settings.local_hostname, "timeout": settings.timeout}
    if settings.security == "tls":
        return smtplib.SMTP_SSL(settings.host, settings.port, context=_tls_context(settings), **common)
    client = smtplib.SMTP(settings.host, settings.port, **common)
    if settings.security == "starttls":
        try:
            client.starttls(context=_tls_context(settings))
        except BaseException:
            client.close()
            raise
    return client


class _Deferred(Exception):
    """Some messages got a 4xx reply in this round; try them again after a pause."""


class _Reply(NamedTuple):
    """What became of one message: its outcome, the reply as detail, whether it hard-bounced."""

    outcome: Outcome
    detail: str | None = None
    hard_bounce: bool = False


class _Round:
    """One pass of ``EmailChannel.send`` over the pool: the shared queue and results of its threads."""

    def __init__(
        self,
        channel: EmailChannel,
        batch: Sequence[Outbound],
        pending: list[int],
        built: dict[int, Wire],
        deferred: dict[int, str | None],
        done: ResultCallback,
        done_all: Callable[[list[DeliveryResult]], None],
    ):
        self.channel = channel
        self.batch = batch
        self.work = deque(pending)
        self.built = built
        self.deferred = deferred
        self.done = done
        self.done_all = done_all
        self.still: list[int] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.live = min(len(channel._connections), len(self.work))  # connections still taking messages
        self._retired: set[int] = set()  # id() of the connections that stopped taking messages

    def take(self, connection: _Connection) -> int | None:
        """The next message for ``connection``; None once there is none (the connection retires, once)."""
        with self.lock:
            if self.work and not self.errors and id(connection) not in self._retired:
                return self.work.popleft()
            self._retire(connection)
            return None

    def _retire(self, connection: _Connection) -> None:
        """Count ``connection`` out of the live ones (idempotent); call under the lock."""
        if id(connection) not in self._retired:
            self._retired.add(id(connection))
            self.live -= 1

    def next(self) -> int | None:
        """The next message for the multiplexer (which retires no connection), None once there is none."""
        with self.lock:
            return self.work.popleft() if self.work else None

    def retired(self, connection: _Connection) -> bool:
        return id(connection) in self._retired

    def requeue(self, i: int, wire: Wire | None = None) -> None:
        """Put message ``i`` back at the head of the queue (with its bytes, so it goes out the same)."""
        with self.lock:
            self.work.appendleft(i)
            if wire is not None:
                self.built[i] = wire

    def wire_of(self, i: int) -> Wire:
        wire = self.built.pop(i, None)  # built in an earlier round (a 4xx reply), else now
        return wire if wire is not None else self.channel.encode(self.batch[i])

    def outcome(self, i: int, wire: Wire, reply: _Reply) -> DeliveryResult | None:
        """One message's result to report; None for a 4xx, which keeps it (and its bytes) for the next round."""
        contact_id = self.batch[i].contact_id
        if reply.outcome == "sent":
            return DeliveryResult(contact_id, "sent", provider_id=wire.message_id)
        if reply.outcome == "transient":
            with self.lock:
                self.built[i], self.deferred[i] = wire, reply.detail
                self.still.append(i)
            return None
        return DeliveryResult(contact_id, "permanent", reply.detail, hard_bounce=reply.hard_bounce)

    def handle(self, i: int, wire: Wire, reply: _Reply) -> None:
        """Report one message's outcome at once (see ``outcome``)."""
        result = self.outcome(i, wire, reply)
        if result is not None:
            self.done(result)

    def run(self, connection: _Connection) -> None:
        """One connection's thread: messages one by one the slow way (connecting, reconnecting with
        back-off) until the connection is open and pipelined: then it is left to ``multiplex``."""
        channel = self.channel
        i = self.take(connection)
        while i is not None:
            position = i
            try:
                wire = self.wire_of(i)
                self.handle(i, wire, channel._deliver(connection, wire, self.batch[i].recipient))
                if connection.open and connection.pipelining:
                    return
                i = self.take(connection)
            except TransientDeliveryError as exc:
                with self.lock:
                    self._retire(connection)
                    if self.live > 0 and not self.errors:
                        # Others still send: they take this message too (a server that
                        # allows fewer connections than configured, one bad connection).
                        self.work.appendleft(position)
                        log.warning("SMTP connection to %s given up, %d left: %s", channel._server, self.live, exc)
                    else:
                        self.errors.append(exc)
                return
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                with self.lock:
                    self._retire(connection)
                    self.errors.append(exc)
                return


class _Streamed:
    """The channel's side of ``smtp_stream.multiplex`` in one round: messages from the round's queue (built
    on the way), results collected and reported together (``done_all``: one journal write)."""

    def __init__(self, channel: EmailChannel, state: _Round):
        self.channel = channel
        self.state = state
        self.batch = state.batch
        self.learnt: list[DeliveryResult] = []

    def take(self, connection: _Connection) -> Taken | None:
        """The next message the server can take, with its envelope group (a rate-limit slot taken); None: no work.

        A message the server cannot take (SMTPUTF8 not offered) is recorded permanent on the way.
        """
        channel, state = self.channel, self.state
        client = connection.client
        assert client is not None
        while (i := state.next()) is not None:
            wire = state.wire_of(i)
            try:
                options = channel._options(client, wire) if wire.international else ()
            except smtplib.SMTPNotSupportedError as exc:
                self._record(i, wire, exc)
                continue
            if channel._limiter is not None:
                channel._limiter.try_acquire("smtp")
            return i, wire, envelope_group(channel._envelope_sender, self.batch[i].recipient, options)
        return None

    def sent(self, taken: Taken) -> None:
        self.learnt.append(DeliveryResult(self.batch[taken[0]].contact_id, "sent", None, taken[1].message_id))

    def refused(self, taken: Taken, replies: tuple[Reply, ...]) -> None:
        i, wire, _ = taken
        error: smtplib.SMTPException | None
        if len(replies) == 1:
            error = smtplib.SMTPDataError(*replies[0])
        else:
            error = envelope_error(self.channel._envelope_sender, self.state.batch[i].recipient, *replies)
        assert error is not None
        self._record(i, wire, error)

    def _record(self, i: int, wire: Wire, error: smtplib.SMTPException) -> None:
        """The outcome of a refusal (raises ``TransientDeliveryError`` when it says the connection is broken)."""
        result = self.state.outcome(i, wire, self.channel._reply(error))
        if result is not None:
            self.learnt.append(result)

    def report(self) -> None:
        if self.learnt:
            learnt, self.learnt = self.learnt, []
            self.state.done_all(learnt)

    def requeue(self, taken: Taken) -> None:
        self.state.requeue(taken[0], taken[1])

    def lost(self, connection: _Connection) -> None:
        connection.discard()
        log.info("SMTP connection to %s lost while streaming; its messages go back to the queue", self.channel._server)


class _Connection:
    """One SMTP connection of the pool; used by one thread at a time, kept open across batches."""

    __slots__ = ("client", "pipelining")

    def __init__(self) -> None:
        self.client: smtplib.SMTP | None = None
        self.pipelining = False  # the server offered PIPELINING (RFC 2920) and the settings allow it

    @property
    def open(self) -> bool:
        return self.client is not None and self.client.sock is not None

    def discard(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.quit()
        except OSError:
            pass
        finally:
            client.close()


class EmailChannel(Channel):
    """Sends each ``Outbound`` as one e-mail through the SMTP server of ``settings``.

    ``smtp_factory(settings)`` opens a connected client (default ``open_smtp``); the channel
    logs in when ``settings.username`` is set. Up to ``settings.connections`` connections
    are opened as the batches need them (a batch of ``n`` uses at most ``n``), reused
    across batches and closed by ``close()``. ``smtp_factory`` is called from the sending
    threads.
    """

    name = "email"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        sender: str,
        reply_to: str | None = None,
        smtp_factory: SmtpFactory | None = None,
        signer: MessageSigner | None = None,
    ):
        envelope_sender = parseaddr(sender)[1]
        if "@" not in envelope_sender:
            raise ValueError(
                f"The 'sender' parameter of EmailChannel must be an e-mail address such as "
                f"'News <news@bank.example>'. Got {sender!r} instead."
            )
        self.settings = settings
        self.sender = sender
        self.reply_to = reply_to
        self.smtp_factory: SmtpFactory = smtp_factory or open_smtp
        self.signer = signer
        self._skeleton = MessageSkeleton(sender, reply_to)
        self._envelope_sender = envelope_sender
        self._domain = envelope_sender.rpartition("@")[2]
        self._server = f"{settings.host}:{settings.port}"
        self._connections = [_Connection() for _ in range(settings.connections)]
        self._limiter = rate_limiter(settings.max_per_second)
        self._sending = threading.Lock()  # one send() at a time: each connection has one user
        self._allowed_headers: set[str] = set()  # header names found not to be reserved

    # -- the contract ------------------------------------------------------------------

    def send(
        self,
        batch: Sequence[Outbound],
        *,
        on_result: ResultCallback | None = None,
        batch_key: str | None = None,  # noqa: ARG002 - the contract's key; e-mail delivers message by message
    ) -> DeliveryReport:
        report = DeliveryReport()
        if not batch:
            return report
        for message in batch:
            self._check(message)
        lock = threading.Lock()

        def done(result: DeliveryResult) -> None:
            with lock:  # one on_result at a time, whichever thread reports
                report.add(result)
                if on_result is not None:
                    on_result(result)

        def done_all(results: list[DeliveryResult]) -> None:
            with lock:  # results learnt at once: one journal write (``report_all``)
                report.results += results
                if on_result is not None:
                    report_all(on_result, results)

        built: dict[int, Wire] = {}
        deferred: dict[int, str | None] = {}  # index in batch -> detail of the last 4xx reply
        pending = list(range(len(batch)))
        with self._sending:
            try:
                for attempt in self._retrying(_Deferred):
                    with attempt:
                        pending = self._round(batch, pending, built, deferred, done, done_all)
                        if pending:
                            raise _Deferred
            except _Deferred:
                for i in pending:
                    done(DeliveryResult(batch[i].contact_id, "transient", detail=deferred[i]))
        log.info(
            "e-mail batch of %d: %d sent, %d transient, %d permanent",
            len(batch),
            report.sent,
            report.count("transient"),
            report.count("permanent"),
        )
        return report

    def close(self) -> None:
        with self._sending:
            for connection in self._connections:
                connection.close()

    def _round(  # noqa: PLR0913
        self,
        batch: Sequence[Outbound],
        pending: list[int],
        built: dict[int, Wire],
        deferred: dict[int, str | None],
        done: ResultCallback,
        done_all: Callable[[list[DeliveryResult]], None],
    ) -> list[int]:
        """Send the messages ``pending`` (indexes into ``batch``) over the pool once.

        Connections that are not open and pipelined yet send the slow way, one thread each
        (``_Round.run``: connect, send a message, reconnect with back-off); the open pipelined
        ones then stream together from this thread (``smtp_stream.multiplex``); a connection lost while
        streaming goes back to the slow way, until the work runs out. Returns the indexes that
        got a 4xx reply (to be tried again after a pause). Raises the first channel-wide error,
        after the other connections finished the message they were on; results reported until
        then stand.
        """
        state = _Round(self, batch, pending, built, deferred, done, done_all)
        pool = self._connections[: state.live]
        while True:
            slow = [c for c in pool if not state.retired(c) and not (c.open and c.pipelining)]
            if len(slow) == 1:
                state.run(slow[0])  # no thread needed
            elif slow:
                threads = [
                    threading.Thread(
                        target=state.run, args=(c,), name=f"smtp-{self._connections.index(c) + 1}", daemon=True
                    )
                    for c in slow
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            if state.errors:
                raise state.errors[0]
            streaming = [c for c in pool if not state.retired(c) and c.open and c.pipelining]
            if not streaming or not state.work:
                break
            socks = [(c, c.client.sock) for c in streaming if c.client is not None and c.client.sock is not None]
            multiplex(socks, _Streamed(self, state), self.settings.timeout)
            if not state.work:
                break
        if state.work:  # not expected: every connection retired without an error
            left = len(state.work)
            raise TransientDeliveryError(f"SMTP server {self._server}: no connection left for {left} e-mails")
        state.still.sort()  # retried in batch order
        return state.still

    # -- messages ------------------------------------------------------------------------

    def _check(self, message: Outbound) -> None:
        parts, headers = message.parts, message.headers
        if (
            "subject" in parts
            and (parts.get("text") or parts.get("html"))
            and len(message.key.split()) == 1
            and (not headers or self._allowed_headers.issuperset(headers))
        ):
            return  # the common case, checked cheaply
        self._check_closely(message)
        if len(self._allowed_headers) < 100:  # the few header names a channel's messages share
            self._allowed_headers.update(headers)

    def _check_closely(self, message: Outbound) -> None:
        missing = [p for p in ("subject",) if p not in message.parts]
        if not (message.parts.get("text") or message.parts.get("html")):
            missing.append("text or html")
        if missing:
            raise ValueError(
                f"The e-mail for contact {message.contact_id} needs the parts 'subject' and 'text' and/or "
                f"'html'; missing {', '.join(missing)}. Got parts {sorted(message.parts)} instead."
            )
        if len(message.key.split()) != 1:
            raise ValueError(
                f"The key of the e-mail for contact {message.contact_id} must be a Message-ID such as "
                f"'<w1.c2.ab12@campaign.local>'. Got {message.key!r} instead."
            )
        reserved = sorted(h for h in message.headers if h.lower() in _RESERVED_HEADERS)
        if reserved:
            raise ValueError(
                f"The headers of the e-mail for contact {message.contact_id} may not set {', '.join(reserved)}; "
                "the channel sets them from the sender, recipient, parts and key."
            )

    def message_id(self, key: str) -> str:
        """``key`` as a Message-ID ``<local@domain>``."""
        if key[:1] == "<" and key[-1:] == ">" and "@" in key:
            return key  # already one
        local = key.strip().removeprefix("<").removesuffix(">")
        if "@" not in local:
            local = f"{local}@{self._domain}"
        return f"<{local}>"

    def encode(self, message: Outbound) -> Wire:
        """The message as it goes on the wire: the skeleton's fast path, else the ``email`` package; then signed."""
        message_id = self.message_id(message.key)
        data = self._skeleton.build(message, message_id)
        international = False
        if data is None:
            international = not (message.recipient.isascii() and self._envelope_sender.isascii())
            data = self._build(message, message_id).as_bytes(policy=_WIRE_UTF8 if international else _WIRE)
        if self.signer is not None:
            data = self.signer(data)
        return Wire(data, message_id, international)

    def _build(self, message: Outbound, message_id: str) -> EmailMessage:
        """The message by the standard ``email`` package (what the skeleton does not cover)."""
        email = EmailMessage(policy=_POLICY)
        email["From"] = self.sender
        email["To"] = message.recipient
        if self.reply_to:
            email["Reply-To"] = self.reply_to
        email["Subject"] = " ".join(message.parts["subject"].split())
        email["Date"] = format_datetime(datetime.now(UTC))
        email["Message-ID"] = message_id
        for name, value in message.headers.items():
            del email[name]
            email[name] = value
        text, html = message.parts.get("text"), message.parts.get("html")
        if text:
            email.set_content(text)
            if html:
                email.add_alternative(html, subtype="html")
                for part in email.iter_parts():
                    del part["MIME-Version"]  # set_content() adds one to each part; only the top needs it
        else:
            email.set_content(html, subtype="html")
        return email

    # -- SMTP ----------------------------------------------------------------------------

    def _retrying(self, error: type[BaseException]) -> Retrying:
        wait = self.settings.retry_wait
        return Retrying(
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=wait_exponential(multiplier=wait, max=max(wait, 300.0)) + wait_random(0, wait),  # plus jitter
            retry=retry_if_exception_type(error),
            reraise=True,
        )

    def _deliver(self, connection: _Connection, wire: Wire, recipient: str) -> _Reply:
        """Send one message, reconnecting with back-off when the connection fails."""
        attempts = 0
        try:
            for attempt in self._retrying(TransientDeliveryError):
                with attempt:
                    attempts += 1
                    return self._transact(connection, wire, recipient)
        except TransientDeliveryError as exc:
            raise TransientDeliveryError(f"{exc} (after {attempts} attempts)") from exc.__cause__
        raise AssertionError("unreachable")  # pragma: no cover

    def _transact(self, connection: _Connection, wire: Wire, recipient: str) -> _Reply:
        # A connection that was idle (or dropped by the server after its last message) may
        # be dead: then reconnect once at once, without spending a retry.
        for _ in range(2):
            reused = connection.open
            client = self._connect(connection)
            if self._limiter is not None:
                self._limiter.try_acquire("smtp")
            try:
                options = self._options(client, wire)
                if connection.pipelining:
                    pipelined_sendmail(client, self._envelope_sender, recipient, wire.data, options)
                else:
                    client.sendmail(self._envelope_sender, [recipient], wire.data, options)
                return _Reply("sent")
            except OSError as exc:
                try:
                    return self._reply(exc)
                except TransientDeliveryError:
                    connection.discard()
                    if not reused:
                        raise
                    log.info("SMTP connection to %s lost; reconnecting", self._server)
                    continue
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _options(client: smtplib.SMTP, wire: Wire) -> list[str]:
        """MAIL options of one message: SMTPUTF8 for an internationalised address (if the server offers it)."""
        if not wire.international:
            return []
        if not client.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError(
                "the recipient or sender address needs SMTPUTF8, which the server does not offer"
            )
        return ["SMTPUTF8", "BODY=8BITMIME"]

    def _reply(self, exc: OSError) -> _Reply:
        """The outcome of one message's refusal; raises what ``classify_smtp_error`` raises for the channel."""
        outcome, detail = classify_smtp_error(exc, server=self._server)
        hard = outcome == "permanent" and says_no_such_address(exc)
        return _Reply(outcome, detail, hard)

    def _connect(self, connection: _Connection) -> smtplib.SMTP:
        if connection.open:
            return connection.client  # type: ignore[return-value]
        connection.discard()
        try:
            client = self.smtp_factory(self.settings)
        except OSError as exc:
            raise connect_error(exc, server=self._server) from exc
        if self.settings.username:
            password = self.settings.password.get_secret_value() if self.settings.password else ""
            try:
                client.login(self.settings.username, password)
            except OSError as exc:
                client.close()
                raise connect_error(exc, server=self._server) from exc
        try:
            client.ehlo_or_helo_if_needed()
        except OSError as exc:
            client.close()
            raise connect_error(exc, server=self._server) from exc
        connection.pipelining = self.settings.pipelining and client.does_esmtp and client.has_extn("pipelining")
        log.debug("connected to SMTP server %s (pipelining: %s)", self._server, connection.pipelining)
        connection.client = client
        return client
