"""DKIM signing (RFC 6376) of outgoing e-mail with ``dkimpy``: a ``MessageSigner`` for ``EmailChannel``.

``DkimSigner(domain=, selector=, private_key=)`` is called with each message's final bytes
(CRLF, not dot-stuffed, as ``channels.mime`` builds them) and returns them with a
``DKIM-Signature`` header in front. It signs with ``rsa-sha256`` (an RSA key of at least 1024 bits;
2048 recommended), canonicalization ``relaxed/relaxed``, and these headers
(``h=``): ``From``, ``To``, ``Subject``, ``Date``, ``Message-ID``, ``Reply-To``,
``MIME-Version``, ``Content-Type``, ``Content-Transfer-Encoding``, ``List-Unsubscribe`` and
``List-Unsubscribe-Post``. ``From``, ``Subject``, ``Reply-To``, ``List-Unsubscribe`` and
``List-Unsubscribe-Post`` are listed once more than they occur ("oversigned"), so nobody can
add another one on the way without breaking the signature; a header that is absent is signed
absent (RFC 6376 5.4). Gmail and Yahoo require both ``List-Unsubscribe`` headers to be covered
by the signature for one-click unsubscribe (RFC 8058).

The signer checks that its domain is aligned with the message's ``From`` domain (equal, or a
parent domain: DMARC relaxed alignment) when it is made for a sender (``signer_for``), not per
message. ``signer_for(settings, sender)`` returns the signer of the key in ``DkimSettings``
whose domain covers the sender's address, ``None`` if there is none (unsigned mail), or raises
``ValueError`` when ``settings.required`` is set and there is none, or the key is unusable.

dkimpy parses, canonicalizes, selects and folds the headers; the RSA signature itself is made by
OpenSSL (``cryptography``), because dkimpy's pure-Python RSA costs tens of milliseconds a message.
Cost: one RSA signature and two SHA-256 hashes per message (``bench/email_bench.py --dkim``
measures it; docs/channels.md has the figure).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from email.utils import parseaddr

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from orchestrator.settings import DkimKey, DkimSettings

__all__ = ["SIGNED_HEADERS", "DkimSigner", "from_domain", "signer_for"]

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)
"""Headers in ``h=``, in this order; those in ``OVERSIGNED`` follow once more."""

OVERSIGNED: tuple[bytes, ...] = (b"from", b"subject", b"reply-to", b"list-unsubscribe", b"list-unsubscribe-post")


def from_domain(sender: str) -> str:
    """The domain of a ``From`` value such as ``"Bank <news@bank.example>"`` (lower case)."""
    return parseaddr(sender)[1].rpartition("@")[2].lower()


class DkimSigner:
    """Signs messages for one signing domain and selector; thread-safe (no state is kept between messages)."""

    def __init__(self, *, domain: str, selector: str, private_key: bytes):
        self.domain = domain.lower()
        self.selector = selector
        pem = private_key.replace(b"\r\n", b"\n").strip() + b"\n"
        if b"-----BEGIN" not in pem:
            raise ValueError(f"The DKIM private key of {domain} is not PEM text ('-----BEGIN ... PRIVATE KEY-----')")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"The DKIM private key of {domain} cannot be read as an RSA key: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"The DKIM private key of {domain} is not an RSA key; DKIM signs with rsa-sha256")
        if key.key_size < 1024:
            raise ValueError(f"The DKIM key of {domain} has {key.key_size} bits; receivers ignore keys under 1024")
        self.bits = key.key_size
        self._key = key
        self._selector = selector.encode("ascii")
        self._domain = self.domain.encode("ascii")

    def __call__(self, message: bytes) -> bytes:
        """``message`` with a ``DKIM-Signature`` header in front."""
        return self.signature(message) + message

    def signature(self, message: bytes) -> bytes:
        """The ``DKIM-Signature:`` header line (folded, ending in CRLF) for ``message``.

        The steps of ``dkim.DKIM.sign`` with dkimpy's parser, canonicalization, header selection
        and folding; the RSA step by OpenSSL (``cryptography``), as dkimpy's pure-Python RSA
        takes 20-40 ms a message here against well under 1 ms.
        """
        headers, body = dkim.rfc822_parse(message)
        present = {name.lower() for name, _ in headers}
        include = [h for h in SIGNED_HEADERS if h in present or h in OVERSIGNED]
        include += [h for h in OVERSIGNED if h in present]
        body_hash = base64.b64encode(hashlib.sha256(_RELAXED.canonicalize_body(body)).digest())
        fields = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", b"relaxed/relaxed"),
            (b"d", self._domain),
            (b"i", b"@" + self._domain),
            (b"q", b"dns/txt"),
            (b"s", self._selector),
            (b"t", str(int(time.time())).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", body_hash),
            (b"b", b"0" * 60),  # folds b= onto a line of its own, as dkim.DKIM.sign does
        ]
        unsigned = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(_NAME), linesep=b"\r\n")
        unsigned = dkim.RE_BTAG.sub(b"\\1", unsigned)
        digest = hashlib.sha256()
        canonical = _RELAXED.canonicalize_headers(headers)
        dkim.hash_headers(digest, _RELAXED, canonical, tuple(include), (_NAME, b" " + unsigned), dict(fields))
        signed = self._key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        fields[-1] = (b"b", base64.b64encode(signed))
        value = b"; ".join(b"=".join(f) for f in fields) + b"\r\n"
        return _NAME + b": " + dkim.fold(value, namelen=len(_NAME), linesep=b"\r\n")


_NAME = b"DKIM-Signature"
_RELAXED = dkim.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_DOMAIN = re.compile(r"^[a-z0-9.-]+$")


def signer_for(settings: DkimSettings, sender: str) -> DkimSigner | None:
    """The signer for mail from ``sender`` (its From domain or a parent domain's key), or ``None``.

    Raises ``ValueError`` naming the setting when ``settings.required`` is set and no key
    covers the sender, or when the key cannot be read.
    """
    domain = from_domain(sender)
    key: DkimKey | None = settings.key_for(domain) if _DOMAIN.match(domain) else None
    if key is None:
        if settings.required:
            known = ", ".join(k.domain for k in settings.all_keys()) or "none"
            raise ValueError(
                f"No DKIM key signs mail from {domain!r} (CAMPAIGN_DKIM_REQUIRED is set; keys for: {known}). "
                "Set CAMPAIGN_DKIM_PRIVATE_KEY_FILE, CAMPAIGN_DKIM_SELECTOR and CAMPAIGN_DKIM_DOMAIN for it, "
                "or add it to CAMPAIGN_DKIM_SIGNING_KEYS."
            )
        return None
    try:
        pem = key.pem()
    except OSError as exc:
        raise ValueError(f"The DKIM private key file of {key.domain} cannot be read: {exc.strerror}") from None
    return DkimSigner(domain=key.domain, selector=key.selector, private_key=pem)
