"""Links put into messages: opaque link tokens and tracked click links.

**Link tokens** (``LinkTokens``) name one contact of the ledger in the links of an e-mail:
the tracking token (header ``X-Campaign-Token``, the open pixel, tracked links) and the
unsubscribe token. A token is ``[version, issued day, wave id, contact id]`` encrypted and
authenticated with AES-SIV (``cryptography``) under a key derived from the link secret
(HKDF-SHA256), the purpose (``tracking``, ``unsubscribe``) bound as associated data, in
base64url (50 characters). So a token

* is opaque: it shows no id (and never a customer id) to whoever reads the link;
* cannot be altered or forged without the link secret, nor used for another purpose (a
  tracking token is never an unsubscribe token);
* carries its wave and the day it was made, so the response API refuses it after
  ``links.tracking_days`` / ``links.unsubscribe_days`` (unsubscribe: at least 60 days);
* is the same for a contact re-sent on the same day (AES-SIV is deterministic).

**Preview links.** Builders without a wave (``campaign preview``, dry runs, the sample
rendered before a wave) sign with the *preview key*, derived from the link secret for
previews only: ``read`` raises ``PreviewLinkToken`` for such a token, so the API answers
with a page saying it is a preview and changes nothing. A preview never holds a link that
acts on a real customer.

**Click links**: ``{base}/c/{tracking token}?u=<url>&s=<signature of url>``. The response API
redirects only to a URL whose signature it can verify with the link secret (salt ``click``),
so a link can't be turned into an open redirect. Templates write
``{{ click("https://www.acme.example/offer") }}``; the message builder binds ``click`` to the
message's tracking token.
"""

from __future__ import annotations

import base64
import binascii
import struct
from datetime import UTC, date, datetime
from typing import Literal
from urllib.parse import quote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import Signer

__all__ = [
    "CLICK_SALT",
    "ClickLinks",
    "ExpiredLinkToken",
    "InvalidLinkToken",
    "LinkTokens",
    "PreviewLinkToken",
    "Purpose",
    "click_link",
    "click_signer",
    "is_http_url",
    "today_number",
]

CLICK_SALT = "click"
Purpose = Literal["tracking", "unsubscribe"]

_VERSION = 1
_PAYLOAD = struct.Struct(">BIQQ")  # version, issued day (days since 1970-01-01), wave id, contact id
_EPOCH = date(1970, 1, 1)


class InvalidLinkToken(ValueError):
    """A link token that was altered, cut, made for another purpose or with another key."""


class PreviewLinkToken(InvalidLinkToken):
    """A token of a preview or dry run: authentic, but it names no real contact and must change nothing."""


class ExpiredLinkToken(InvalidLinkToken):
    """A token older than its purpose allows (``links.tracking_days`` / ``links.unsubscribe_days``)."""


def today_number(today: date | None = None) -> int:
    """Days since 1970-01-01 of ``today`` (UTC today by default): the issued day of a token."""
    return ((today or datetime.now(UTC).date()) - _EPOCH).days


def _key(secret: str, label: bytes) -> AESSIV:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"campaign link tokens v1 " + label)
    return AESSIV(derived.derive(secret.encode()))


class LinkTokens:
    """Makes and reads the opaque link tokens of one link secret (see the module docstring).

    ``preview=True`` makes preview tokens (the preview key); ``read`` always knows both keys.
    """

    def __init__(self, secret: str, *, preview: bool = False):
        if not isinstance(secret, str) or len(secret) < 16:
            raise ValueError("The link secret must be text of at least 16 characters (CAMPAIGN_LINKS_SECRET_KEY).")
        self.preview = preview
        self._real = _key(secret, b"real")
        self._preview = _key(secret, b"preview")
        self._issuer = self._preview if preview else self._real

    def make(self, purpose: Purpose, wave_id: int, contact_id: int, *, issued: int | None = None) -> str:
        """The token of contact ``contact_id`` of wave ``wave_id`` for ``purpose``, made on day ``issued``."""
        day = today_number() if issued is None else issued
        payload = _PAYLOAD.pack(_VERSION, day, wave_id, contact_id)
        return _encode(self._issuer.encrypt(payload, [purpose.encode()]))

    def read(self, purpose: Purpose, token: str, *, max_age_days: int | None = None) -> tuple[int, int]:
        """``(wave_id, contact_id)`` of ``token``.

        Raises ``PreviewLinkToken`` for a preview's token, ``ExpiredLinkToken`` when it is
        older than ``max_age_days``, ``InvalidLinkToken`` for anything else that is not a
        token of ``purpose`` made with this link secret.
        """
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError, TypeError):
            raise InvalidLinkToken(_invalid(purpose)) from None
        if len(raw) != 16 + _PAYLOAD.size or _encode(raw) != token:  # one spelling per token (no padding-bit twins)
            raise InvalidLinkToken(_invalid(purpose))
        associated = [purpose.encode()]
        try:
            payload = self._real.decrypt(raw, associated)
        except InvalidTag:
            try:
                self._preview.decrypt(raw, associated)
            except InvalidTag:
                raise InvalidLinkToken(_invalid(purpose)) from None
            raise PreviewLinkToken(
                f"This {purpose} token comes from a preview or dry run; it names no real contact and changes nothing."
            ) from None
        version, issued, wave_id, contact_id = _PAYLOAD.unpack(payload)
        if version != _VERSION:
            raise InvalidLinkToken(_invalid(purpose))
        age = today_number() - issued
        if max_age_days is not None and age > max_age_days:
            raise ExpiredLinkToken(f"This {purpose} token expired: {age} days old, at most {max_age_days} allowed.")
        return wave_id, contact_id


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _invalid(purpose: str) -> str:
    return (
        f"The {purpose} token is not valid: it was altered or cut, or made for another purpose or with another key "
        "(CAMPAIGN_LINKS_SECRET_KEY). Use the link of the e-mail as it is."
    )


def click_signer(secret: str) -> Signer:
    return Signer(secret, salt=CLICK_SALT)


def is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def click_link(signer: Signer, base_url: str, tracking_token: str, url: str) -> str:
    """The tracked link; raises ``ValueError`` unless ``url`` is an absolute http(s) URL."""
    return f"{base_url.rstrip('/')}/c/{quote(tracking_token, safe='')}{_signed_target(signer, url)}"


def _signed_target(signer: Signer, url: str) -> str:
    """``?u=<url>&s=<signature>`` of a tracked link; raises ``ValueError`` unless ``url`` is an absolute http(s) URL."""
    if not isinstance(url, str) or not is_http_url(url):
        raise ValueError(
            f"click() needs an absolute http(s) URL, e.g. click('https://www.acme.example/offer'); got {url!r}"
        )
    return f"?u={quote(url, safe='')}&s={signer.get_signature(url).decode()}"


class ClickLinks:
    """``click_link`` for the many messages of one builder: each URL's quoted, signed target is made once.

    The signature depends on the URL alone (not on the contact), and a wave's messages link to a few
    URLs, so the target is kept (up to ``MAX_URLS`` distinct URLs; more are signed each time).
    ``links(quoted_token, url)`` takes the tracking token already quoted (``quote(token, safe='')``,
    once per message) and returns what ``click_link(signer, base_url, token, url)`` returns.
    """

    MAX_URLS = 1000

    def __init__(self, signer: Signer, base_url: str):
        self._signer = signer
        self._prefix = f"{base_url.rstrip('/')}/c/"
        self._targets: dict[str, str] = {}

    def __call__(self, quoted_token: str, url: str) -> str:
        target = self._targets.get(url) if isinstance(url, str) else None
        if target is None:
            target = _signed_target(self._signer, url)  # raises for what is not an http(s) URL: never kept
            if len(self._targets) < self.MAX_URLS:
                self._targets[url] = target
        return f"{self._prefix}{quoted_token}{target}"
