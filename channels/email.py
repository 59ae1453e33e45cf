"""E-mail over SMTP (``smtplib``), one message per recipient on one reused connection.

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

Outcomes, per message: a 2xx reply is ``"sent"``; a 4xx reply to MAIL, RCPT or DATA is
retried (at the end of the batch, up to ``max_retries`` times with exponential back-off
from ``retry_wait`` plus jitter) and then ``"transient"``; a 5xx reply is ``"permanent"``
with the reply as detail (``"550 5.1.1 <address>: Recipient address rejected"``; e-mail
addresses are blanked out). For the channel as a whole: a lost or refused connection, a
timeout or a ``421`` is retried on a new connection with the same back-off, and raises
``TransientDeliveryError`` if it persists; refused credentials, a refused sender address,
a missing STARTTLS/AUTH extension or an invalid TLS certificate raise
``PermanentDeliveryError``. ``classify_smtp_error`` and ``connect_error`` hold the mapping.

Limits: one recipient per SMTP transaction, messages sent one after the other on one
connection (not thread-safe: use one channel per thread). A message whose reply was lost
to a timeout or a dropped connection after its DATA is sent again on the new connection:
delivery is at least once in that window, and the receiver sees the same ``Message-ID``.

Settings (``SmtpSettings``, ``CAMPAIGN_SMTP_*``): ``host``, ``port``, ``security``
(``none`` / ``starttls`` / ``tls``), ``username`` and ``password`` (login when a username
is set; the password is never logged), ``timeout`` (seconds per command), ``max_retries``,
``retry_wait``, ``local_hostname`` (EHLO name), ``validate_certs``.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from channels.base import (
    Channel,
    DeliveryError,
    DeliveryReport,
    DeliveryResult,
    Outbound,
    Outcome,
    PermanentDeliveryError,
    ResultCallback,
    TransientDeliveryError,
)
from orchestrator.settings import SmtpSettings

__all__ = ["SMTP_ERRORS", "EmailChannel", "SmtpFactory", "classify_smtp_error", "connect_error", "open_smtp"]

log = logging.getLogger(__name__)

# RFC 5322 allows 998 characters a line; with the default 78, a long List-Unsubscribe URL
# would be turned into an encoded word that mail clients cannot use as a link.
_POLICY = email_policy.default.clone(max_line_length=998)

SmtpFactory = Callable[[SmtpSettings], smtplib.SMTP]
"""Opens a connected client for the settings (TLS set up, not logged in); default ``open_smtp``."""

Handling = Literal["reply", "sender", "login", "unsupported", "setup", "certificate", "connection"]

SMTP_ERRORS: dict[type[OSError], Handling] = {
    # A reply to this message: 4xx retry it later, 5xx permanent (421: the server is closing).
    smtplib.SMTPRecipientsRefused: "reply",
    smtplib.SMTPDataError: "reply",
    smtplib.SMTPResponseException: "reply",
    # A reply to MAIL FROM: like "reply", but 5xx (other than 552, too large) refuses every message.
    smtplib.SMTPSenderRefused: "sender",
    # Credentials refused: 4xx try again, 5xx permanent for the channel.
    smtplib.SMTPAuthenticationError: "login",
    # The server lacks an extension: STARTTLS/AUTH when connecting, SMTPUTF8 for one message.
    smtplib.SMTPNotSupportedError: "unsupported",
    # smtplib raises the bare class when no AUTH mechanism fits; unknown subclasses: retry.
    smtplib.SMTPException: "setup",
    ssl.SSLCertVerificationError: "certificate",
    # The connection: refused, reset, closed, timed out, bad greeting or EHLO, DNS, TLS.
    smtplib.SMTPServerDisconnected: "connection",
    smtplib.SMTPConnectError: "connection",
    smtplib.SMTPHeloError: "connection",
    OSError: "connection",
}
"""How each error under ``smtplib`` is handled; every ``smtplib`` exception class is listed."""

_ADDRESS = re.compile(r"[^\s<>@:;,\"']+@[^\s<>:;,\"']+")
_RESERVED_HEADERS = frozenset(
    h.lower()
    for h in ("From", "To", "Subject", "Message-ID", "Date", "MIME-Version", "Content-Type", "Content-Transfer-Encoding")
)


def _handling(exc: BaseException) -> Handling | None:
    for cls in type(exc).__mro__:
        if cls in SMTP_ERRORS:
            return SMTP_ERRORS[cls]
    return None


def _reply_code(exc: BaseException) -> tuple[int, str]:
    """The SMTP reply code and text of an error, with e-mail addresses blanked out."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, text = next(iter(exc.recipients.values()))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, text = exc.smtp_code, exc.smtp_error
    else:
        return -1, str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = _ADDRESS.sub("address", " ".join(str(text).split()))
    return code, text[:300]


def _detail(exc: BaseException) -> str:
    code, text = _reply_code(exc)
    return f"{code} {text}" if code > 0 else (text or type(exc).__name__)


def classify_smtp_error(exc: OSError, *, server: str) -> tuple[Outcome, str]:
    """Map an error raised while sending one message to its outcome and detail.

    Returns ``("transient", "451 4.7.1 ...")`` for a 4xx reply (retry the message later) or
    ``("permanent", "550 5.1.1 ...")`` for a 5xx reply. Raises ``TransientDeliveryError``
    when the connection failed (reconnect and retry) and ``PermanentDeliveryError`` when no
    message can be sent (sender or credentials refused), chained from ``exc``. ``server`` is
    ``"host:port"`` for the messages.
    """
    handling = _handling(exc)
    code, _ = _reply_code(exc)
    detail = _detail(exc)
    if handling in ("reply", "sender") and code != 421 and 400 <= code < 600:
        if code < 500:
            return "transient", detail
        if handling == "sender" and code == 530:
            raise PermanentDeliveryError(
                f"SMTP server {server} requires a login: set CAMPAIGN_SMTP_USERNAME and CAMPAIGN_SMTP_PASSWORD ({detail})"
            ) from exc
        if handling == "sender" and code != 552:
            raise PermanentDeliveryError(f"SMTP server {server} refused the sender address: {detail}") from exc
        return "permanent", detail
    if handling == "unsupported":
        return "permanent", detail
    if handling in ("login", "certificate"):
        raise connect_error(exc, server=server) from exc
    raise TransientDeliveryError(f"SMTP server {server} unreachable: {detail}") from exc


def connect_error(exc: OSError, *, server: str) -> DeliveryError:
    """The error to raise for ``exc`` raised while connecting, securing or logging in.

    ``PermanentDeliveryError`` for what configuration must fix (credentials refused with a
    5xx, STARTTLS or AUTH not offered, no usable AUTH mechanism, invalid certificate);
    ``TransientDeliveryError`` for everything else. Raise it ``from exc``.
    """
    handling = _handling(exc)
    code, _ = _reply_code(exc)
    detail = _detail(exc)
    if handling == "login":
        if 400 <= code < 500:
            return TransientDeliveryError(f"SMTP server {server} could not log in for now: {detail}")
        return PermanentDeliveryError(
            f"SMTP server {server} refused the login; check CAMPAIGN_SMTP_USERNAME and CAMPAIGN_SMTP_PASSWORD ({detail})"
        )
    if handling in ("unsupported", "setup"):
        return PermanentDeliveryError(f"SMTP server {server} does not support what the settings ask for: {detail}")
    if handling == "certificate":
        return PermanentDeliveryError(
            f"TLS certificate of SMTP server {server} is not valid: {detail}; "
            "fix the certificate or set CAMPAIGN_SMTP_VALIDATE_CERTS=false for a test server"
        )
    if handling in ("reply", "sender") and 500 <= code < 600:
        return PermanentDeliveryError(f"SMTP server {server} refused the connection setup: {detail}")
    return TransientDeliveryError(f"SMTP server {server} unreachable: {detail}")


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not settings.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def open_smtp(settings: SmtpSettings) -> smtplib.SMTP:
    """Connect to the configured server, with implicit TLS or STARTTLS as configured (no login)."""
    common = {"local_hostname": settings.local_hostname, "timeout": settings.timeout}
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


class EmailChannel(Channel):
    """Sends each ``Outbound`` as one e-mail through the SMTP server of ``settings``.

    ``smtp_factory(settings)`` opens a connected client (default ``open_smtp``); the channel
    logs in when ``settings.username`` is set. The connection is opened on the first
    message, reused across batches and closed by ``close()``.
    """

    name = "email"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        sender: str,
        reply_to: str | None = None,
        smtp_factory: SmtpFactory | None = None,
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
        self._envelope_sender = envelope_sender
        self._domain = envelope_sender.rpartition("@")[2]
        self._server = f"{settings.host}:{settings.port}"
        self._smtp: smtplib.SMTP | None = None

    # -- the contract ------------------------------------------------------------------

    def send(
        self, batch: Sequence[Outbound], *, on_result: ResultCallback | None = None, batch_key: str | None = None
    ) -> DeliveryReport:
        report = DeliveryReport()
        if not batch:
            return report
        for message in batch:
            self._check(message)

        def done(result: DeliveryResult) -> None:
            report.add(result)
            if on_result is not None:
                on_result(result)

        built: dict[int, EmailMessage] = {}
        deferred: dict[int, str] = {}  # index in batch -> detail of the last 4xx reply
        pending = list(range(len(batch)))
        rounds = self._retrying(_Deferred)
        try:
            for attempt in rounds:
                with attempt:
                    still: list[int] = []
                    for i in pending:
                        email = built[i] if i in built else self._build(batch[i])
                        outcome, detail = self._deliver(email, batch[i].recipient)
                        if outcome == "transient":
                            built[i], deferred[i] = email, detail
                            still.append(i)
                            continue
                        built.pop(i, None)
                        if outcome == "sent":
                            done(DeliveryResult(batch[i].contact_id, "sent", provider_id=str(email["Message-ID"])))
                        else:
                            done(DeliveryResult(batch[i].contact_id, "permanent", detail=detail))
                    pending = still
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
        client, self._smtp = self._smtp, None
        if client is None:
            return
        try:
            client.quit()
        except OSError:
            pass
        finally:
            client.close()

    # -- messages ------------------------------------------------------------------------

    def _check(self, message: Outbound) -> None:
        missing = [p for p in ("subject",) if p not in message.parts]
        if not (message.parts.get("text") or message.parts.get("html")):
            missing.append("text or html")
        if missing:
            raise ValueError(
                f"The e-mail for contact {message.contact_id} needs the parts 'subject' and 'text' and/or "
                f"'html'; missing {', '.join(missing)}. Got parts {sorted(message.parts)} instead."
            )
        if not message.key.strip() or any(c.isspace() for c in message.key.strip()):
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
        local = key.strip().removeprefix("<").removesuffix(">")
        if "@" not in local:
            local = f"{local}@{self._domain}"
        return f"<{local}>"

    def _build(self, message: Outbound) -> EmailMessage:
        email = EmailMessage(policy=_POLICY)
        email["From"] = self.sender
        email["To"] = message.recipient
        if self.reply_to:
            email["Reply-To"] = self.reply_to
        email["Subject"] = " ".join(message.parts["subject"].split())
        email["Date"] = format_datetime(datetime.now(UTC))
        email["Message-ID"] = self.message_id(message.key)
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

    def _deliver(self, email: EmailMessage, recipient: str) -> tuple[Outcome, str | None]:
        """Send one message, reconnecting with back-off when the connection fails."""
        attempts = 0
        try:
            for attempt in self._retrying(TransientDeliveryError):
                with attempt:
                    attempts += 1
                    return self._transact(email, recipient)
        except TransientDeliveryError as exc:
            raise TransientDeliveryError(f"{exc} (after {attempts} attempts)") from exc.__cause__
        raise AssertionError("unreachable")  # pragma: no cover

    def _transact(self, email: EmailMessage, recipient: str) -> tuple[Outcome, str | None]:
        # A connection that was idle (or dropped by the server after its last message) may
        # be dead: then reconnect once at once, without spending a retry.
        for _ in range(2):
            reused = self._smtp is not None and self._smtp.sock is not None
            client = self._connect()
            try:
                client.send_message(email, from_addr=self._envelope_sender, to_addrs=[recipient])
                return "sent", None
            except OSError as exc:
                try:
                    return classify_smtp_error(exc, server=self._server)
                except TransientDeliveryError:
                    self._discard()
                    if not reused:
                        raise
                    log.info("SMTP connection to %s lost; reconnecting", self._server)
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is not None and self._smtp.sock is not None:
            return self._smtp
        self._discard()
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
        log.debug("connected to SMTP server %s", self._server)
        self._smtp = client
        return client

    def _discard(self) -> None:
        client, self._smtp = self._smtp, None
        if client is not None:
            client.close()
