"""A whole campaign wave: the Prefect flow against a real Prefect API, a real SMTP server and
real databases (SQLite and PostgreSQL), including crashes, outages and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
import sqlalchemy as sa

from orchestrator.errors import ValidationFailed
from orchestrator.ledger import contacts as ledger
from orchestrator.settings import Settings, use_settings
from orchestrator.wave.stages import WaveIncomplete
from tests.smtp_server import SmtpServer, free_port
from tests.support import REPO
from tests.support.wave import RULES, pause_rcpt, wave_environment, wave_ledger, wave_settings_for

# Waves are keyed by weekday dates: the key is the date the contact policy is evaluated at,
# and rules/policy.yaml blocks Sundays and holidays.


def _changed(settings: Settings, area: str, **values) -> Settings:
    """``settings`` with some fields of one area changed."""
    return settings.model_copy(update={area: getattr(settings, area).model_copy(update=values)})


@pytest.fixture
def wave_settings(settings, smtp, customers, prefect_api_url) -> Settings:
    """The settings of the flow under test: the test database, the test SMTP server."""
    return wave_settings_for(settings, smtp.port)


def _run(settings, rules=RULES, **kwargs):
    from flows.run import run_campaign

    return run_campaign(settings, rules, wave=kwargs.get("wave", "2026-11-24"), dry_run=kwargs.get("dry_run", False))


@pytest.mark.slow
def test_wave_sends_every_treated_customer_exactly_once(wave_settings, smtp, customers):
    summary = _run(wave_settings)
    rows = wave_ledger(customers)
    treated = [r for r in rows if r.arm == "treatment"]
    control = [r for r in rows if r.arm == "control"]
    assert summary["selected"] == len(rows) > 300
    assert 0.05 < len(control) / len(rows) < 0.15
    assert all(r.status == "control" for r in control)
    sent = [r for r in treated if r.status == "sent"]
    skipped = [r for r in treated if r.status == "skipped"]
    assert len(sent) + len(skipped) == len(treated) and summary["ledger_pending"] == 0
    # counted by Message-ID: a reply that timed out on a busy machine is re-sent with the same id
    assert summary["sent_this_run"] == len(sent) == len(smtp.message_ids)
    assert smtp.ids_per_recipient().most_common(1)[0][1] == 1
    message = smtp.messages[0]
    assert message["Message-ID"].startswith("<w") and message["List-Unsubscribe"].startswith("<http")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert b"\nList-Unsubscribe: <http" in smtp.received[0].raw.replace(b"\r\n", b"\n")  # not an encoded word
    assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
    assert summary["status"] == "completed"

    again = _run(wave_settings)
    assert again["sent_this_run"] == 0 and len(smtp.message_ids) == len(sent)
    assert again["ledger_sent"] == len(sent)


@pytest.mark.slow
def test_control_customers_are_never_sent_and_groups_are_stable(wave_settings, smtp, customers):
    _run(wave_settings, wave="2026-11-24")
    _run(wave_settings, wave="2026-11-25")
    with customers.connect() as conn:
        rows = conn.execute(
            sa.select(ledger.contacts.c.customer_id, ledger.contacts.c.arm, ledger.contacts.c.wave_id)
        ).all()
        emails = dict(conn.execute(sa.text("select customer_id, email from customers")).all())
    arms = {}
    for customer_id, arm, _wave in rows:
        arms.setdefault(customer_id, set()).add(arm)
    assert all(len(a) == 1 for a in arms.values()), "a customer changed group between waves"
    control_emails = {emails[c] for c, a in arms.items() if a == {"control"}}
    assert control_emails and not control_emails & set(smtp.recipients)


def test_dry_run_renders_everything_and_records_nothing(wave_settings, smtp, customers):
    summary = _run(wave_settings, dry_run=True)
    assert summary["dry_run"] and summary["selected"] > 300
    assert summary["rendered"] == summary["treated"] and summary["render_errors"] == 0
    assert wave_ledger(customers) == [] and smtp.received == []
    with customers.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger.waves)).scalar_one() == 0
    real = _run(wave_settings)
    assert real["selected"] == summary["selected"] and real["control"] == summary["control"]


def test_invalid_rules_file_sends_and_records_nothing(wave_settings, smtp, customers, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.read_text().replace("recency_days", "recency_dayz", 1))
    with pytest.raises(ValidationFailed) as failure:
        _run(wave_settings, rules=bad)
    [problem] = failure.value.errors
    assert problem.file == str(bad) and problem.line is not None
    assert "unknown column 'recency_dayz', did you mean 'recency_days'?" in problem.message
    assert smtp.received == [] and wave_ledger(customers) == []


def test_undefined_template_variable_sends_nothing(wave_settings, smtp, customers, tmp_path):
    templates = tmp_path / "templates"
    (templates / "email" / "winback").mkdir(parents=True)
    (templates / "email" / "winback" / "subject.txt").write_text("Hello {{ frist_name }}\n")
    (templates / "email" / "winback" / "body.txt").write_text("Hi\n")
    with pytest.raises(ValidationFailed) as failure:
        _run(_changed(wave_settings, "paths", templates_dir=templates))
    text = "\n".join(str(p) for p in failure.value.errors)
    assert "subject.txt:1" in text and "frist_name" in text and "first_name" in text
    assert smtp.received == [] and wave_ledger(customers) == []


@pytest.mark.slow
def test_unreachable_smtp_keeps_contacts_pending_then_resumes(wave_settings, smtp, customers):
    with pytest.raises(WaveIncomplete, match="unreachable"):
        _run(_changed(wave_settings, "smtp", port=free_port()))
    rows = wave_ledger(customers)
    assert rows and not [r for r in rows if r.status == "sent"]
    pending = [r for r in rows if r.status == "pending"]
    assert pending, "contacts must stay pending"
    summary = _run(wave_settings)
    assert summary["status"] == "completed" and summary["ledger_pending"] == 0
    assert summary["sent_this_run"] == len(smtp.message_ids) > 0


@pytest.mark.slow
def test_invalid_addresses_are_skipped_and_reported(wave_settings, smtp, customers):
    with customers.begin() as conn:
        conn.execute(
            sa.text(
                "update customers set email = 'not-an-address' where customer_id in "
                "('C0000001','C0000002','C0000003','C0000004','C0000005',"
                "'C0000006','C0000007','C0000008','C0000009','C0000010')"
            )
        )
    summary = _run(wave_settings)
    with customers.connect() as conn:
        details = (
            conn.execute(sa.select(ledger.contacts.c.detail).where(ledger.contacts.c.status == "skipped"))
            .scalars()
            .all()
        )
    assert summary["ledger_skipped"] == len(details) > 0
    assert "invalid e-mail address" in details
    assert summary["status"] == "completed"


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-command-at-a-time", "pipelining"])
@pytest.mark.parametrize("connections", [1, 4])
@pytest.mark.slow
def test_killed_mid_send_resumes_with_exactly_the_unsent(
    settings, customers, prefect_api_url, tmp_path, connections, pipelining
):
    """SIGKILL while one connection waits at RCPT. With one connection nothing is in flight and
    nothing is sent twice. With several, each other connection may have had a message accepted
    by the server but not yet journalled (SMTP has no idempotency): at most one per connection
    can be sent again, with the same Message-ID so the receiving side can recognise it. With
    PIPELINING the RCPT that waits went out with the previous message's content, so on its own
    connection too the previous message may be accepted but not yet journalled: at most one per
    connection, as the guarantee says."""
    env = {**os.environ, **wave_environment(settings, 0), "PREFECT_API_URL": prefect_api_url}
    env["CAMPAIGN_SMTP_CONNECTIONS"] = str(connections)
    command = [
        sys.executable,
        "-c",
        "from orchestrator.cli.main import app; app()",
        "run",
        str(RULES),
        "--wave",
        "2026-11-26",
        "--yes",
    ]
    with SmtpServer(pipelining=pipelining) as server:
        env["CAMPAIGN_SMTP_PORT"] = str(server.port)
        reached, release = pause_rcpt(server, at=150)  # in the second chunk of 100
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert reached.wait(120), process.stdout.read().decode() if process.poll() is not None else "no RCPT 150"
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        finally:
            release.set()
        first = len(server.received)
        assert first == 149 if connections == 1 else first >= 149 - connections  # others may be mid-DATA
        in_flight = connections if pipelining else connections - 1  # accepted, maybe not journalled
        second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stdout + second.stderr
        counts = Counter(server.recipients)
        by_message_id = Counter(m["Message-ID"] for m in server.messages)
    engine = customers
    rows = wave_ledger(engine)
    sent = [r for r in rows if r.status == "sent"]
    twice = sum(n - 1 for n in counts.values())
    if in_flight == 0:
        assert twice == 0, "a customer got the message twice"
    else:
        assert twice <= in_flight, f"{twice} messages sent twice with {connections} connections"
        assert sum(n - 1 for n in by_message_id.values()) == twice  # a repeat is the same message
    assert len(counts) == len(sent) > 149
    assert not [r for r in rows if r.status == "pending"]


def test_cli_validate_reports_file_line_col(settings, customers, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.read_text().replace("audience:", "audiance:", 1))
    env = {**os.environ, **wave_environment(settings, 25)}
    good = subprocess.run(
        [sys.executable, "-c", "from orchestrator.cli.main import app; app()", "validate", str(RULES)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    result = subprocess.run(
        [sys.executable, "-c", "from orchestrator.cli.main import app; app()", "validate", str(bad)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if text.startswith("audiance:"))
    assert f"{bad}:{line}:1: unknown key 'audiance', did you mean 'audience'?" in result.stderr


def test_cli_run_checks_smtp_before_it_starts_and_names_the_settings(wave_settings, customers):
    """An unreachable SMTP server ends ``campaign run`` before Prefect starts: one paragraph naming
    CAMPAIGN_SMTP_HOST/_PORT, no traceback, nothing recorded (the flow's own handling of an outage that
    starts mid-run is tested above: contacts stay pending)."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    port = free_port()
    with use_settings(_changed(wave_settings, "smtp", port=port)):  # what the CLI's get_settings() gives
        result = CliRunner().invoke(app, ["run", str(RULES), "--wave", "2026-11-27", "--yes"])
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert f"cannot reach the SMTP server at 127.0.0.1:{port}" in message
    assert "CAMPAIGN_SMTP_HOST and CAMPAIGN_SMTP_PORT" in message and "nothing was recorded or sent" in message
    assert "Traceback" not in result.output and wave_ledger(customers) == []


@pytest.mark.slow
def test_hard_bounces_fail_the_contact_and_go_to_the_suppression_list(settings, customers, prefect_api_url):
    with customers.connect() as conn:
        emails = dict(
            conn.execute(
                sa.text(
                    "select email, customer_id from customers where email like '%@%.%' order by customer_id limit 400"
                )
            ).all()
        )
    rejects = {address: "550 5.1.1 mailbox does not exist" for address in emails}
    with SmtpServer(reject_with=rejects) as server:
        _run(_changed(wave_settings_for(settings, server.port), "paths", rules_dir=REPO / "rules"))
    with customers.connect() as conn:
        bounced = {
            r.customer_id for r in conn.execute(sa.text("select customer_id from contacts where status = 'failed'"))
        }
        suppressed = dict(
            conn.execute(sa.text("select customer_id, reason from suppressions where channel = 'email'")).all()
        )
    assert bounced and bounced <= set(emails.values())
    assert set(suppressed) == bounced and set(suppressed.values()) == {"hard_bounce"}


@pytest.mark.slow
def test_a_wave_sends_every_email_dkim_signed(wave_settings, smtp, customers):
    """With a DKIM key for the sender's domain in the settings, every message the SMTP server gets verifies."""
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from orchestrator.settings import DkimSettings

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signed = wave_settings.model_copy(
        update={"dkim": DkimSettings(private_key=pem, selector="w2026", domain="acme.example", required=True)}
    )
    summary = _run(signed)
    assert summary["sent_this_run"] == len(smtp.received) > 0

    def dns(name: bytes, timeout: float = 5) -> bytes | None:  # noqa: ARG001 - dkimpy's dnsfunc signature
        return record if name == b"w2026._domainkey.acme.example." else None

    for received in smtp.received:
        assert dkim.verify(received.raw, dnsfunc=dns)
        assert b"list-unsubscribe-post" in received.raw.split(b"\r\n\r\n")[0].lower().split(b"h=")[1][:400]
