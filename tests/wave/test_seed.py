"""``campaign run FILE --test-to``: a sample of the campaign's e-mails to internal addresses, through the real
SMTP server, marked as tests, with nothing recorded in the ledger."""

from __future__ import annotations

import base64
import json

import dkim
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from orchestrator.cli import main as cli_main
from orchestrator.ledger import contacts as ledger
from orchestrator.settings import DkimSettings, Settings, use_settings
from tests.support.wave import RULES, WAVE, wave_settings_for

TESTERS = ["qa@bank-internal.example", "seed@inbox-test.example"]


def _run(settings: Settings, *args: str):
    with use_settings(settings):
        return CliRunner().invoke(cli_main.app, ["run", str(RULES), "--wave", WAVE, *args])


def test_test_sends_go_to_the_test_addresses_only_marked_and_unrecorded(settings, smtp, customers):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    signed = wave_settings_for(settings, smtp.port).model_copy(
        update={"dkim": DkimSettings(private_key=pem, selector="s1", domain="acme.example")}
    )
    result = _run(signed, "--test-to", ",".join(TESTERS), "--test-sample", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rendered"] == 2 and report["sent"] == 4 and report["recorded"] == 0 and report["failed"] == []
    assert sorted(smtp.recipients) == sorted(TESTERS * 2)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: float = 5) -> bytes | None:  # noqa: ARG001 - dkimpy's dnsfunc signature
        return record if name == b"s1._domainkey.acme.example." else None

    for received in smtp.received:
        message = received.message
        assert message["Subject"].startswith("[TEST] ") and message["X-Campaign-Test"] == "seed"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert dkim.verify(received.raw, dnsfunc=dns)
    with customers.connect() as conn:  # nothing recorded: no wave, no contact, no attempt
        for table in (ledger.waves, ledger.contacts, ledger.attempts):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0


def test_a_bad_test_address_sends_nothing(settings, smtp, customers):
    result = _run(wave_settings_for(settings, smtp.port), "--test-to", "qa@bank.example,not-an-address")
    assert result.exit_code == 2
    assert "'not-an-address' is not an e-mail address" in result.output
    assert smtp.received == []
