"""``campaign deliverability check``: the pre-flight lint of a campaign's e-mail, on the real database,
the repository's campaign and templates, and a DKIM key made in the test."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from orchestrator.cli import main as cli_main
from orchestrator.db.tables import ContactStatus, utcnow
from orchestrator.ledger import contacts as ledger
from orchestrator.settings import DkimSettings, Settings, use_settings
from orchestrator.wave.deliverability import events
from tests.support.wave import RULES


def _check(settings: Settings, *args: str):
    with use_settings(settings):
        result = CliRunner().invoke(cli_main.app, ["deliverability", "check", *map(str, args)])
    return result


def _findings(result) -> dict[str, tuple[str, str]]:
    report = json.loads(result.stdout)
    return {f["check"]: (f["status"], f["message"]) for f in report["findings"]}


def _signed(settings: Settings) -> Settings:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return settings.model_copy(
        update={
            "dkim": DkimSettings(private_key=pem, selector="s2026", domain="acme.example"),
            "links": settings.links.model_copy(update={"base_url": "https://links.acme.example"}),
        }
    )


def test_a_well_set_up_campaign_passes(settings, customers):
    result = _check(_signed(settings), RULES, "--format", "json")
    assert result.exit_code == 0, result.output
    found = _findings(result)
    assert found["dkim"][0] == "ok" and "d=acme.example s=s2026, 2048-bit" in found["dkim"][1]
    assert found["one_click_unsubscribe"] == (
        "ok",
        "List-Unsubscribe (HTTPS) and List-Unsubscribe-Post: List-Unsubscribe=One-Click in every message, "
        "both covered by the DKIM signature",
    )
    assert found["unsubscribe_link"][0] == "ok" and found["plain_text_part"][0] == "ok"
    assert found["message_size"][0] == "ok"
    assert found["complaint_rate"] == ("ok", "this campaign: no e-mail sent in the last 30 days")
    assert json.loads(result.stdout)["sample_messages"] == 5


def test_missing_dkim_and_plain_http_unsubscribe_are_errors(settings, customers):
    result = _check(settings, RULES, "--format", "json")
    assert result.exit_code == 1
    found = _findings(result)
    assert found["dkim"][0] == "error" and "no DKIM key signs mail from acme.example" in found["dkim"][1]
    assert "CAMPAIGN_DKIM_PRIVATE_KEY_FILE" in found["dkim"][1]
    assert found["one_click_unsubscribe"][0] == "error" and "no HTTPS URL" in found["one_click_unsubscribe"][1]
    other = settings.model_copy(update={"dkim": _signed(settings).dkim.model_copy(update={"domain": "bank.example"})})
    found = _findings(_check(other, RULES, "--format", "json"))
    assert "the keys are for bank.example, not aligned with acme.example" in found["dkim"][1]


def test_a_template_without_unsubscribe_link_or_text_part(settings, customers, tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(settings.paths.templates_dir, templates)
    folder = templates / "email" / "winback"
    (folder / "body.txt").unlink()
    (folder / "body.html").write_text("<p>Hello {{ first_name }}, welcome back.</p>\n")
    changed = _signed(settings)
    changed = changed.model_copy(update={"paths": changed.paths.model_copy(update={"templates_dir": templates})})
    result = _check(changed, RULES)
    assert result.exit_code == 1
    assert "1 error(s), 1 warning(s) in 5 sample message(s)" in result.stdout
    found = _findings(_check(changed, RULES, "--format", "json"))
    assert found["unsubscribe_link"][0] == "error"
    assert "the e-mail: the HTML body has no link to the unsubscribe URL" in found["unsubscribe_link"][1]
    assert found["plain_text_part"] == (
        "warning",
        "the e-mail has no plain-text part; add body.txt (spam filters and text-only readers)",
    )
    assert _check(changed, RULES, "--strict").exit_code == 1


def test_invalid_rules_file_cannot_be_checked(settings, customers, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.read_text().replace("recency_days", "recency_dayz", 1))
    result = _check(settings, bad)
    assert result.exit_code == 2
    assert "cannot be checked" in result.output


@pytest.mark.parametrize(("rate", "status", "code"), [(0.0015, "warning", 0), (0.004, "error", 1)])
def test_complaint_rate_of_recent_waves(settings, customers, rate, status, code):
    sent = 1000
    complaints = math.ceil(rate * sent)
    now = utcnow()
    with customers.begin() as conn:
        campaign = conn.execute(
            ledger.campaigns.insert().values(name="winback-email", created_at=now).returning(ledger.campaigns.c.id)
        ).scalar_one()
        wave = conn.execute(
            ledger.waves.insert()
            .values(campaign_id=campaign, key="2026-11-24", status="completed", rules_sha256="0" * 64, created_at=now)
            .returning(ledger.waves.c.id)
        ).scalar_one()
        conn.execute(
            ledger.contacts.insert(),
            [
                {
                    "wave_id": wave,
                    "customer_id": f"C{i:05d}",
                    "arm": "treatment",
                    "channel": "email",
                    "status": ContactStatus.SENT,
                    "attempts": 1,
                    "created_at": now,
                    "updated_at": now,
                    "sent_at": now,
                }
                for i in range(sent)
            ],
        )
        ids = conn.execute(sa.select(ledger.contacts.c.id).order_by(ledger.contacts.c.id)).scalars().all()
        conn.execute(
            events.insert(),
            [
                {
                    "source": "links",
                    "event_id": f"complaint-{cid}",
                    "contact_id": cid,
                    "wave_id": wave,
                    "customer_id": f"C{n:05d}",
                    "channel": "email",
                    "type": "complaint",
                    "occurred_at": now,
                    "received_at": now,
                }
                for n, cid in enumerate(ids[:complaints])
            ],
        )
    result = _check(_signed(settings), RULES, "--format", "json")
    assert result.exit_code == code, result.output
    found = _findings(result)
    assert found["complaint_rate"][0] == status
    assert (
        f"{complaints} complaint(s) / {sent} e-mails sent in the last 30 days = {complaints / sent:.3%}"
        in (found["complaint_rate"][1])
    )
    assert found["complaint_rate_all"][0] == status


def test_a_required_but_missing_dkim_key_fails_validation_before_anything_is_recorded(settings, customers):
    from orchestrator.customers.table import customer_columns
    from orchestrator.wave.validation import validate_campaign

    required = settings.model_copy(update={"dkim": DkimSettings(required=True)})
    columns = customer_columns(customers, settings.database.customer_table)
    check = validate_campaign(required, RULES, columns, customers)
    [problem] = [p for p in check.problems if "DKIM" in p.message]
    assert problem.file == str(RULES) and problem.severity == "error"
    assert "No DKIM key signs mail from 'acme.example' (CAMPAIGN_DKIM_REQUIRED is set; keys for: none)" in (
        problem.message
    )
    assert not [
        p for p in validate_campaign(_signed(required), RULES, columns, customers).problems if "DKIM" in p.message
    ]


def test_with_dkim_required_and_no_key_the_check_reports_it_as_a_finding(settings, customers):
    required = settings.model_copy(update={"dkim": DkimSettings(required=True)})
    result = _check(required, RULES, "--format", "json")
    assert result.exit_code == 1, result.output
    assert _findings(result)["dkim"][0] == "error"


def test_a_campaign_policy_window_for_an_unknown_channel_is_an_error(settings, customers, tmp_path):
    from orchestrator.customers.table import customer_columns
    from orchestrator.wave.validation import validate_campaign

    rules = tmp_path / "windowed.yaml"
    rules.write_text(RULES.read_text() + '\npolicy:\n  send_windows:\n    emial: {window: "08:00-20:00"}\n')
    columns = customer_columns(customers, settings.database.customer_table)
    problems = [p for p in validate_campaign(settings, rules, columns, customers).problems if p.severity == "error"]
    assert [(p.file, p.message) for p in problems] == [
        (str(rules), "policy.send_windows: unknown channel 'emial', did you mean 'email'?")
    ]
