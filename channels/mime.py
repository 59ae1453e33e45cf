"""The fast MIME path of the e-mail channel: one skeleton per channel, each message's parts filled in.

``MessageSkeleton`` holds what every message of a channel shares (``From``, ``Reply-To``, the
MIME structure of ``multipart/alternative``, the part headers, a boundary), built once, and
``build(message, message_id)`` returns one message as the bytes that go on the wire:

* line ends CRLF, every line at most 998 octets (RFC 5322); no dot-stuffing yet (the SMTP
  transport does that), so a signer sees the message as the receiver will;
* ``Subject`` unfolded to one line, RFC 2047 encoded (UTF-8, base64 words) when it is not ASCII;
* each body part ``7bit`` when it is ASCII with short lines, else ``quoted-printable`` of its
  UTF-8 (so the message is 7-bit clean and needs no 8BITMIME); both parts end with a line end;
* the boundary is checked against both parts and replaced by a fresh random one in the rare
  message that contains it;
* ``Date`` is formatted once per second.

It returns ``None`` for a message the skeleton does not cover: a recipient or header value
that is not printable ASCII on one line (an internationalised address needs SMTPUTF8) or
longer than a line may be, a header name that is not a token. The channel builds those with
the standard ``email`` package instead, as it always did; the tests parse every message of
both paths back and compare them.
"""

from __future__ import annotations

import binascii
import random
import re
import time
from collections.abc import Callable
from email.header import Header
from email.headerregistry import HeaderRegistry
from email.policy import default as _default_policy
from email.utils import formatdate

from channels.base import Outbound

__all__ = ["MAX_LINE", "MessageSigner", "MessageSkeleton"]

MAX_LINE = 998  # octets per line without CRLF (RFC 5322 2.1.1)

MessageSigner = Callable[[bytes], bytes]
"""A step run on each message right before it is sent (e.g. DKIM): gets the message's bytes (CRLF
line ends, not dot-stuffed) and returns the bytes to send, e.g. with a ``DKIM-Signature`` header
prepended. It is called from the sending threads, one message at a time per thread."""

_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII without ':' (RFC 5322 field name)
_registry = HeaderRegistry()
_ONE_LINE = _default_policy.clone(max_line_length=None, linesep="\r\n")


def _address_header(name: str, value: str) -> str:
    """``name: value`` as the ``email`` package formats an address header (display names quoted or encoded)."""
    header = _registry(name, value)
    return header.fold(policy=_ONE_LINE).rstrip("\r\n")


def _body(text: str) -> tuple[str, str]:
    """``(Content-Transfer-Encoding, body)`` of one text part, line ends CRLF, ending in one."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    if text.isascii() and (len(text) <= MAX_LINE or max(map(len, text.split("\n"))) <= MAX_LINE):
        return "7bit", text.replace("\n", "\r\n")
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")
    return "quoted-printable", (encoded if encoded.endswith("\n") else encoded + "=\n").replace("\n", "\r\n")


class MessageSkeleton:
    """The fixed parts of one channel's messages, built once; ``build`` fills in one message."""

    def __init__(self, sender: str, reply_to: str | None = None):
        head = [_address_header("From", sender)]
        if reply_to:
            head.append(_address_header("Reply-To", reply_to))
        self._from = "\r\n".join(head) + "\r\n"
        self._rng = random.Random()
        self.boundary = self._new_boundary()
        self._second = -1
        self._date = ""
        self._names: set[str] = set()  # header names found to be valid

    def _new_boundary(self) -> str:
        return "=" * 15 + f"{self._rng.randrange(10**19):019d}" + "=="

    def date(self) -> str:
        """The ``Date`` header value for now (formatted once per second)."""
        now = int(time.time())
        if now != self._second:
            self._second, self._date = now, formatdate(now, localtime=False, usegmt=False)
        return self._date

    def build(self, message: Outbound, message_id: str) -> bytes | None:
        """The message as the bytes to send (CRLF, not dot-stuffed), or None when it needs the ``email`` package."""
        recipient = message.recipient
        if not (recipient.isascii() and recipient.isprintable() and len(recipient) <= MAX_LINE - 4):
            return None
        if "<" in recipient or ">" in recipient:
            return None
        subject = " ".join(message.parts["subject"].split())
        if subject.isascii():
            if len(subject) > MAX_LINE - 9:
                return None
        else:
            subject = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
        head = f"{self._from}To: {recipient}\r\nSubject: {subject}\r\nDate: {self.date()}\r\n"
        head += f"Message-ID: {message_id}\r\n"
        for name, value in message.headers.items():
            if name not in self._names:
                if not _HEADER_NAME.fullmatch(name):
                    return None
                if len(self._names) < 100:  # the few names a channel's messages share
                    self._names.add(name)
            if not (value.isascii() and value.isprintable() and len(value) <= MAX_LINE - 2 - len(name)):
                return None
            head += f"{name}: {value}\r\n"
        text, html = message.parts.get("text"), message.parts.get("html")
        if text and html:
            text_cte, text_body = _body(text)
            html_cte, html_body = _body(html)
            boundary = self.boundary
            while boundary in text_body or boundary in html_body:
                boundary = self._new_boundary()
            body = (
                f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
                f'--{boundary}\r\nContent-Type: text/plain; charset="utf-8"\r\n'
                f"Content-Transfer-Encoding: {text_cte}\r\n\r\n{text_body}"
                f'\r\n--{boundary}\r\nContent-Type: text/html; charset="utf-8"\r\n'
                f"Content-Transfer-Encoding: {html_cte}\r\n\r\n{html_body}\r\n--{boundary}--\r\n"
            )
        else:
            subtype = "plain" if text else "html"
            cte, part = _body(text or html or "")
            body = (
                f'MIME-Version: 1.0\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
                f"Content-Transfer-Encoding: {cte}\r\n\r\n{part}"
            )
        return (head + body).encode("ascii")
