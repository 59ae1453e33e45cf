"""What an SMTP error means: for one message (sent later, refused) and for the channel (reconnect, stop).

``SMTP_ERRORS`` says how each exception class under ``smtplib`` is handled; three functions apply it:

* ``classify_smtp_error(exc, server=...)``: an error raised while sending one message. Returns
  ``("transient", "451 4.7.1 ...")`` (a 4xx reply: retry the message later) or ``("permanent",
  "550 5.1.1 ...")`` (a 5xx reply); raises ``TransientDeliveryError`` when the connection failed and
  ``PermanentDeliveryError`` when no message can be sent (sender or credentials refused).
* ``connect_error(exc, server=...)``: the error to raise for one raised while connecting, securing
  or logging in (permanent for what configuration must fix).
* ``is_hard_bounce(code, text)`` and ``says_no_such_address(exc)``: whether a refusal says the
  recipient's address does not exist (a hard bounce, which puts it on the suppression list).

Details keep the reply code and text with e-mail addresses blanked out (no personal data in results
or logs). Used by ``channels.email``; imports nothing of the engine.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from typing import Literal

from channels.base import DeliveryError, Outcome, PermanentDeliveryError, TransientDeliveryError

__all__ = ["SMTP_ERRORS", "Handling", "classify_smtp_error", "connect_error", "is_hard_bounce", "says_no_such_address"]

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


def _handling(exc: BaseException) -> Handling | None:
    for cls in type(exc).__mro__:
        if cls in SMTP_ERRORS:
            return SMTP_ERRORS[cls]
    return None


def _reply_code(exc: BaseException) -> tuple[int, str]:
    """The SMTP reply code and text of an error, with e-mail addresses blanked out."""
    raw: bytes | str
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, raw = next(iter(exc.recipients.values()))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, raw = exc.smtp_code, exc.smtp_error
    else:
        return -1, str(exc)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    text = _ADDRESS.sub("address", " ".join(str(raw).split()))
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
                f"SMTP server {server} requires a login: "
                f"set CAMPAIGN_SMTP_USERNAME and CAMPAIGN_SMTP_PASSWORD ({detail})"
            ) from exc
        if handling == "sender" and code != 552:
            raise PermanentDeliveryError(f"SMTP server {server} refused the sender address: {detail}") from exc
        return "permanent", detail
    if handling == "unsupported":
        return "permanent", detail
    if handling in ("login", "certificate"):
        raise connect_error(exc, server=server) from exc
    raise TransientDeliveryError(f"SMTP server {server} unreachable: {detail}") from exc


_ENHANCED_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_HARD_BOUNCE_STATUSES = frozenset({"5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10"})
"""Enhanced status codes (RFC 3463) of a destination address that does not exist: other
address status, bad mailbox, bad system, bad mailbox syntax, mailbox moved, null MX.
Not 5.1.4 (ambiguous), 5.1.7/5.1.8 (the sender's address)."""
_UNKNOWN_USER = re.compile(
    r"user unknown|unknown user|recipient unknown|unknown recipient|no such (user|mailbox|recipient|address)"
    r"|(mailbox|user|recipient|address|account) (does not|doesn't) exist|mailbox not found|invalid (recipient|mailbox)",
    re.IGNORECASE,
)


def is_hard_bounce(code: int, text: str) -> bool:
    """Whether the SMTP reply ``code`` ``text`` to one recipient says its address does not exist.

    True for 550, 551 and 553 with an enhanced status in ``5.1.0-3``, ``5.1.6`` or
    ``5.1.10`` (``"5.1.1 <address>: Recipient address rejected"``), and for a 550 without
    enhanced status whose text says so (``"User unknown"``, ``"No such user"``, ...). False
    for everything else: 4xx, policy or content rejections (``5.7.x``, ``552``), a full
    mailbox, an enhanced status of another class even when the text says "unknown".
    """
    if code not in (550, 551, 553):
        return False
    status = _ENHANCED_STATUS.match(text)
    if status is not None:
        return ".".join(status.groups()) in _HARD_BOUNCE_STATUSES
    return code == 550 and _UNKNOWN_USER.search(text) is not None


def says_no_such_address(exc: BaseException) -> bool:
    """Whether ``exc``, a refusal of one message, says its recipient's address does not exist (``is_hard_bounce``)."""
    return _handling(exc) == "reply" and is_hard_bounce(*_reply_code(exc))


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
            f"SMTP server {server} refused the login; "
            f"check CAMPAIGN_SMTP_USERNAME and CAMPAIGN_SMTP_PASSWORD ({detail})"
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
