"""DKIM signing of e-mail: messages sent through a real SMTP server (aiosmtpd) and verified with dkimpy.

The key pair is generated in the test; ``dkim.verify`` gets a ``dnsfunc`` that answers the
selector's TXT record with the test public key, as DNS would.
"""

from __future__ import annotations

import base64
import re

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.base import Outbound
from channels.dkim import DkimSigner, from_domain, signer_for
from channels.email import EmailChannel
from orchestrator.rules.kinds import channel_kind
from orchestrator.settings import DkimKey, DkimSettings, Settings
from tests.smtp_server import SmtpServer

SENDER = "Bank News <news@bank.example>"


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    """(private key PEM, public key DER) of a fresh 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, der


def dns_for(public_der: bytes, name: bytes = b"s2026._domainkey.bank.example."):
    """A ``dnsfunc`` for ``dkim.verify`` that publishes the public key under ``name`` only."""
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    asked: list[bytes] = []

    def dnsfunc(query: bytes, timeout: float = 5) -> bytes | None:  # noqa: ARG001 - dkimpy's signature
        asked.append(query)
        return record if query == name else None

    dnsfunc.asked = asked  # type: ignore[attr-defined]
    return dnsfunc


def outbound(i: int, **changes) -> Outbound:
    values: dict = {
        "contact_id": i,
        "recipient": f"customer{i}@example.com",
        "parts": {
            "subject": f"Offer {i} für Sie",
            "text": f"Hello {i}\n.line with a dot",
            "html": f"<p>Hi <b>{i}</b></p>",
        },
        "key": f"<w12.c{i}.abcd@bank.example>",
        "headers": {
            "List-Unsubscribe": f"<https://links.bank.example/unsubscribe/{i}.token>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Campaign-Token": f"tok-{i}",
        },
    }
    values.update(changes)
    return Outbound(**values)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_messages_received_by_the_smtp_server_carry_a_valid_signature(key_pair, pipelining):
    pem, der = key_pair
    signer = DkimSigner(domain="bank.example", selector="s2026", private_key=pem)
    batch = [outbound(i) for i in range(20)]
    batch.append(outbound(20, headers={"List-Unsubscribe": "<https://x.example/u/20>", "X-Odd": "caf\u00e9"}))
    with SmtpServer(pipelining=pipelining) as server:
        with EmailChannel(server.settings(), sender=SENDER, reply_to="help@bank.example", signer=signer) as channel:
            report = channel.send(batch)
        assert report.sent == len(batch) == len(server.received)
        dnsfunc = dns_for(der)
        for received in server.received:
            assert dkim.verify(received.raw, dnsfunc=dnsfunc), received.raw[:600]
            fields = _signature_fields(received.raw)
            assert fields["d"] == "bank.example" and fields["s"] == "s2026" and fields["a"] == "rsa-sha256"
            signed = fields["h"].split(":")
            for name in ("from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"):
                assert name in signed
            # oversigned: listed once more than present, so none can be added on the way
            assert signed.count("list-unsubscribe") == 2 and signed.count("from") == 2
        assert set(dnsfunc.asked) == {b"s2026._domainkey.bank.example."}


def test_a_changed_or_added_unsubscribe_header_breaks_the_signature(key_pair):
    pem, der = key_pair
    signer = DkimSigner(domain="bank.example", selector="s2026", private_key=pem)
    with SmtpServer() as server:
        with EmailChannel(server.settings(), sender=SENDER, signer=signer) as channel:
            channel.send([outbound(1)])
        raw = server.received[0].raw
    dnsfunc = dns_for(der)
    assert dkim.verify(raw, dnsfunc=dnsfunc)
    changed = raw.replace(b"unsubscribe/1.token", b"unsubscribe/2.token")
    assert changed != raw and not dkim.verify(changed, dnsfunc=dnsfunc)
    no_post = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"")
    assert no_post != raw and not dkim.verify(no_post, dnsfunc=dnsfunc)
    head, _, body = raw.partition(b"\r\n\r\n")
    added = head + b"\r\nList-Unsubscribe: <https://evil.example/u>\r\n\r\n" + body
    assert not dkim.verify(added, dnsfunc=dnsfunc)
    assert not dkim.verify(raw.replace(b"Hello 1", b"Hello 2"), dnsfunc=dnsfunc)  # the body is covered too
    assert not dkim.verify(raw, dnsfunc=dns_for(rsa_public_der()))  # another domain's key


def rsa_public_der() -> bytes:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return other.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_signer_for_picks_the_key_of_the_sender_domain_or_its_parent(key_pair, tmp_path):
    pem, _ = key_pair
    key_file = tmp_path / "other.pem"
    key_file.write_bytes(pem)
    settings = DkimSettings(
        private_key=pem.decode(),
        selector="s2026",
        domain="bank.example",
        signing_keys=(DkimKey(domain="shop.example", selector="mail", private_key_file=key_file),),
    )
    signer = signer_for(settings, "News <news@bank.example>")
    assert signer is not None and (signer.domain, signer.selector) == ("bank.example", "s2026")
    parent = signer_for(settings, "offers@mail.bank.example")  # relaxed alignment: a subdomain of d=
    assert parent is not None and parent.domain == "bank.example"
    shop = signer_for(settings, "Shop <hi@Shop.Example>")
    assert shop is not None and (shop.domain, shop.selector) == ("shop.example", "mail")
    assert signer_for(settings, "news@otherbank.example") is None  # not a subdomain: unsigned
    assert from_domain("A <b@C.Example>") == "c.example"


def test_settings_errors_name_the_setting(key_pair, tmp_path):
    pem, _ = key_pair
    with pytest.raises(ValueError, match="CAMPAIGN_DKIM_SELECTOR or CAMPAIGN_DKIM_DOMAIN"):
        DkimSettings(private_key=pem.decode(), domain=None)
    required = DkimSettings(required=True, private_key=pem.decode(), selector="s", domain="bank.example")
    with pytest.raises(ValueError, match="No DKIM key signs mail from 'shop.example'.*keys for: bank.example"):
        signer_for(required, "hi@shop.example")
    missing = DkimSettings(private_key_file=tmp_path / "nope.pem", selector="s", domain="bank.example")
    with pytest.raises(ValueError, match="private key file of bank.example cannot be read"):
        signer_for(missing, "news@bank.example")
    with pytest.raises(ValueError, match="not PEM text"):
        DkimSigner(domain="bank.example", selector="s", private_key=b"secret")
    garbled = b"-----BEGIN RSA PRIVATE KEY-----\nTUlJQ1hRSUJBQUtCZ1FDNA==\n-----END RSA PRIVATE KEY-----\n"
    with pytest.raises(ValueError, match="cannot be read as an RSA key"):
        DkimSigner(domain="bank.example", selector="s", private_key=garbled)
    assert "BEGIN" not in repr(DkimSettings(private_key=pem.decode(), selector="s", domain="bank.example"))


def test_settings_from_the_environment_reach_the_email_adapter(key_pair, tmp_path, monkeypatch):
    pem, der = key_pair
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(pem)
    monkeypatch.setenv("CAMPAIGN_DKIM_PRIVATE_KEY_FILE", str(key_file))
    monkeypatch.setenv("CAMPAIGN_DKIM_SELECTOR", "s2026")
    monkeypatch.setenv("CAMPAIGN_DKIM_DOMAIN", "bank.example")
    settings = Settings()
    kind = channel_kind("email")
    section = kind.spec.model_validate({"template": "winback", "sender": SENDER})
    with SmtpServer() as server:
        settings = settings.model_copy(update={"smtp": server.settings()})
        channel = kind.make_adapter(settings, section)
        assert isinstance(channel, EmailChannel) and isinstance(channel.signer, DkimSigner)
        with channel:
            channel.send([outbound(7)])
        assert dkim.verify(server.received[0].raw, dnsfunc=dns_for(der))


def _signature_fields(raw: bytes) -> dict[str, str]:
    header = re.search(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", raw, re.S | re.M)
    assert header is not None, "no DKIM-Signature header"
    value = re.sub(rb"\s+", b"", header.group(1)).decode()
    return dict(part.split("=", 1) for part in value.split(";") if part)


def test_a_pkcs8_key_as_openssl_3_writes_it_signs_too(key_pair):
    pem, der = key_pair
    key = serialization.load_pem_private_key(pem, password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert pkcs8.startswith(b"-----BEGIN PRIVATE KEY-----")
    signer = DkimSigner(domain="Bank.Example", selector="s2026", private_key=pkcs8.replace(b"\n", b"\r\n"))
    with SmtpServer() as server:
        with EmailChannel(server.settings(), sender=SENDER, signer=signer) as channel:
            channel.send([outbound(3)])
        assert dkim.verify(server.received[0].raw, dnsfunc=dns_for(der))
