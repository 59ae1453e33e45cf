"""EmailChannel against a real SMTP server (aiosmtpd on loopback); no mocks of smtplib.

Every test runs twice: against a server that offers PIPELINING (the channel streams MAIL, RCPT
and DATA groups, one round trip per message) and one that does not (one command at a time).
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest

import channels
from channels import CHANNELS, UnknownChannel, channel_class
from channels.base import (
    DeliveryError,
    DeliveryResult,
    Outbound,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from channels.email import EmailChannel, rate_limiter
from channels.memory import MemoryChannel
from channels.smtp_errors import SMTP_ERRORS, classify_smtp_error, connect_error, is_hard_bounce
from tests.smtp_server import SmtpServer, free_port

SENDER = "Bank News <news@bank.example>"
SERVER = "127.0.0.1:2525"


def outbound(i: int, **changes) -> Outbound:
    values: dict[str, Any] = {
        "contact_id": i,
        "recipient": f"customer{i}@example.com",
        "parts": {"subject": f"Offer {i}", "text": f"Hello {i}", "html": f"<p>Hello <b>{i}</b></p>"},
        "key": f"<w12.c{i}.abcd@campaign.local>",
        "headers": {
            "List-Unsubscribe": f"<https://bank.example/u/{i}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    values.update(changes)
    return Outbound(**values)


def send(server: SmtpServer, batch: list[Outbound], **settings) -> tuple[list[DeliveryResult], list[DeliveryResult]]:
    """Send through a fresh channel; the report's results and those passed to on_result."""
    seen: list[DeliveryResult] = []
    with EmailChannel(server.settings(**settings), sender=SENDER, reply_to="help@bank.example") as channel:
        report = channel.send(batch, on_result=seen.append)
    return report.results, seen


def by_contact(results: list[DeliveryResult]) -> dict[int, DeliveryResult]:
    return {r.contact_id: r for r in results}


@pytest.fixture(autouse=True, params=[True, False], ids=["pipelining", "no-pipelining"])
def pipelining(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Servers of the test offer PIPELINING (RFC 2920) or not."""
    monkeypatch.setattr(SmtpServer, "pipelining_default", request.param)
    return request.param


# -- delivery -------------------------------------------------------------------------------


def test_batch_arrives_once_with_its_headers_over_one_connection():
    batch = [outbound(i) for i in range(50)]
    with SmtpServer() as server:
        results, seen = send(server, batch, connections=1)  # one connection: in batch order

    assert seen == results
    assert [r.contact_id for r in results] == list(range(50))
    assert all(r.outcome == "sent" for r in results)
    assert [r.provider_id for r in results] == [o.key for o in batch]
    assert server.connections == 1
    assert sorted(server.recipients) == sorted(o.recipient for o in batch)
    assert Counter(m["Message-ID"] for m in server.messages) == Counter({o.key: 1 for o in batch})
    for message, sent in zip(server.messages, batch, strict=True):
        assert message["From"] == SENDER
        assert message["To"] == sent.recipient
        assert message["Reply-To"] == "help@bank.example"
        assert message["Subject"] == sent.parts["subject"]
        assert message["Date"] is not None
        assert message["List-Unsubscribe"] == sent.headers["List-Unsubscribe"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"
        assert message.get_body(("plain",)).get_content().strip() == sent.parts["text"]
        assert message.get_body(("html",)).get_content().strip() == sent.parts["html"]
    assert {r.mail_from for r in server.received} == {"news@bank.example"}


def test_connection_is_reused_across_batches_until_close():
    with SmtpServer() as server:
        channel = EmailChannel(server.settings(), sender=SENDER)
        assert channel.send([]).results == []
        assert server.connections == 0  # lazily opened
        channel.send([outbound(1)])
        channel.send([outbound(2)])
        assert server.connections == 1
        channel.close()
        channel.close()
        channel.send([outbound(3)])
        channel.close()
        assert server.connections == 2
        assert len(server.received) == 3


@pytest.mark.parametrize(
    ("parts", "content_type"),
    [({"subject": "S", "text": "plain only"}, "text/plain"), ({"subject": "S", "html": "<p>html</p>"}, "text/html")],
)
def test_single_part_messages(parts, content_type):
    with SmtpServer() as server:
        [result], _ = send(server, [outbound(1, parts=parts)])
    assert result.outcome == "sent"
    [message] = server.messages
    assert message.get_content_type() == content_type
    assert message.get_content().strip() == (parts.get("text") or parts.get("html"))


def test_key_becomes_a_message_id():
    with SmtpServer() as server:
        results, _ = send(server, [outbound(1, key="w1.c1.ff"), outbound(2, key="x2@campaign.local")], connections=1)
    assert [m["Message-ID"] for m in server.messages] == ["<w1.c1.ff@bank.example>", "<x2@campaign.local>"]
    assert [r.provider_id for r in results] == ["<w1.c1.ff@bank.example>", "<x2@campaign.local>"]


def test_subject_line_breaks_are_folded():
    with SmtpServer() as server:
        send(server, [outbound(1, parts={"subject": "Two\r\nlines", "text": "t"})])
    assert server.messages[0]["Subject"] == "Two lines"


# -- per-recipient failures -----------------------------------------------------------------


def test_rejected_recipient_is_permanent_and_the_rest_are_sent():
    batch = [outbound(i) for i in range(10)]
    with SmtpServer(reject={"customer3@example.com", "customer7@example.com"}) as server:
        results, seen = send(server, batch, connections=1)

    assert seen == results
    outcome = by_contact(results)
    assert {i for i, r in outcome.items() if r.outcome == "permanent"} == {3, 7}
    assert {i for i, r in outcome.items() if r.outcome == "sent"} == set(range(10)) - {3, 7}
    assert outcome[3].detail.startswith("550 5.1.1 ")
    assert "Recipient address rejected" in outcome[3].detail
    assert "@" not in outcome[3].detail
    assert len(server.received) == 8
    assert server.rcpt_attempts["customer3@example.com"] == 1  # a 5xx is never retried
    assert server.connections == 1


def test_deferred_twice_then_accepted_is_sent():
    batch = [outbound(i) for i in range(5)]
    with SmtpServer(defer={"customer2@example.com"}, defer_times=2) as server:
        results, seen = send(server, batch, max_retries=3, retry_wait=0.01)

    assert all(r.outcome == "sent" for r in results)
    assert sorted(r.contact_id for r in seen[:4]) == [0, 1, 3, 4]  # the deferred one does not hold up the rest
    assert seen[4].contact_id == 2
    assert server.rcpt_attempts["customer2@example.com"] == 3
    assert sorted(server.recipients) == sorted(o.recipient for o in batch)


def test_deferred_forever_is_transient_after_the_retries():
    batch = [outbound(i) for i in range(5)]
    with SmtpServer(defer={"customer1@example.com"}) as server:
        results, _ = send(server, batch, max_retries=2, retry_wait=0.01)

    outcome = by_contact(results)
    assert outcome[1].outcome == "transient"
    assert outcome[1].detail.startswith("451 4.7.1 ")
    assert "@" not in outcome[1].detail
    assert all(outcome[i].outcome == "sent" for i in (0, 2, 3, 4))
    assert server.rcpt_attempts["customer1@example.com"] == 3  # 1 + max_retries


# -- concurrency and rate limit -------------------------------------------------------------


def test_batch_is_spread_over_the_connections_and_they_are_reused():
    with SmtpServer() as server:
        channel = EmailChannel(server.settings(connections=4), sender=SENDER)
        seen: list[DeliveryResult] = []
        first = channel.send([outbound(i) for i in range(200)], on_result=seen.append)
        second = channel.send([outbound(i) for i in range(200, 400)], on_result=seen.append)
        assert server.connections == 4  # 400 messages, 4 sessions: reused within and across batches
        assert server.peak_connections == 4
        channel.close()
    results = first.results + second.results
    assert sorted(r.contact_id for r in results) == list(range(400))
    assert all(r.outcome == "sent" for r in results)
    assert sorted(r.contact_id for r in seen) == list(range(400))
    assert Counter(m["Message-ID"] for m in server.messages) == Counter({outbound(i).key: 1 for i in range(400)})


def test_on_result_is_called_from_one_thread_at_a_time():
    inside = 0
    overlaps = 0
    threads: set[str] = set()

    def on_result(result: DeliveryResult) -> None:
        nonlocal inside, overlaps
        inside += 1
        overlaps += inside > 1
        threads.add(threading.current_thread().name)
        time.sleep(0.001)  # widen the window a second caller would hit
        inside -= 1

    with SmtpServer() as server, EmailChannel(server.settings(connections=4), sender=SENDER) as channel:
        report = channel.send([outbound(i) for i in range(100)], on_result=on_result)
    assert report.sent == 100
    assert overlaps == 0
    assert len(threads) > 1  # it is called from the sending threads, one at a time


def test_more_connections_are_faster_against_a_slow_server():
    batch = [outbound(i) for i in range(24)]
    elapsed = {}
    for connections in (1, 4):
        with SmtpServer(data_delay=0.05) as server:
            started = time.monotonic()
            results, _ = send(server, batch, connections=connections)
            elapsed[connections] = time.monotonic() - started
        assert all(r.outcome == "sent" for r in results)
        assert server.peak_connections == connections
    assert elapsed[1] >= 24 * 0.05  # one connection waits for every message in turn
    # Four were open at once (peak_connections above), so messages were in flight in parallel;
    # how much faster that is depends on the machine's load: bench/email_bench.py measures it.


def test_a_server_allowing_fewer_connections_gets_everything_over_those():
    batch = [outbound(i) for i in range(40)]
    with SmtpServer(max_connections=2) as server:
        results, seen = send(server, batch, connections=4, max_retries=1, retry_wait=0.01)
    assert sorted(r.contact_id for r in seen) == list(range(40))
    assert all(r.outcome == "sent" for r in results)
    assert Counter(m["Message-ID"] for m in server.messages) == Counter({o.key: 1 for o in batch})
    assert server.peak_connections <= 3  # the refused one is counted while it is greeted


def test_rate_limit_holds_across_connections():
    batch = [outbound(i) for i in range(30)]
    with SmtpServer() as server:
        started = time.monotonic()
        results, _ = send(server, batch, connections=4, max_per_second=20)
        elapsed = time.monotonic() - started
    assert all(r.outcome == "sent" for r in results)
    assert elapsed >= 1.0  # 30 at 20/s: a burst of 2, then one every 50 ms
    assert elapsed < 3.0


def test_rate_limit_holds_across_batches():
    with SmtpServer() as server, EmailChannel(server.settings(max_per_second=10), sender=SENDER) as channel:
        started = time.monotonic()
        for i in range(6):
            channel.send([outbound(i)])
        elapsed = time.monotonic() - started
    assert elapsed >= 0.45  # 6 at 10/s: the first free, then every 100 ms


def test_rate_limiter():
    assert rate_limiter(None) is None
    with pytest.raises(ValueError, match="'max_per_second' parameter must be a positive number"):
        rate_limiter(0)
    limiter = rate_limiter(0.5)  # one per 2 s
    assert limiter.try_acquire("smtp", blocking=False)
    assert not limiter.try_acquire("smtp", blocking=False)


# -- hard bounces ---------------------------------------------------------------------------


def test_hard_bounces_are_flagged_and_policy_rejections_are_not():
    batch = [outbound(i) for i in range(6)]
    replies = {
        "customer1@example.com": "550 5.1.1 <customer1@example.com>: Recipient address rejected: User unknown",
        "customer2@example.com": "550 5.7.1 Message rejected by policy",
        "customer3@example.com": "550 User unknown",
        "customer4@example.com": "552 5.2.2 Mailbox full",
        "customer5@example.com": "553 5.1.3 Bad recipient address syntax",
    }
    with SmtpServer(reject_with=replies) as server:
        results, seen = send(server, batch)
    outcome = by_contact(results)
    assert seen and sorted(seen, key=lambda r: r.contact_id) == sorted(results, key=lambda r: r.contact_id)
    assert outcome[0].outcome == "sent" and not outcome[0].hard_bounce
    assert all(outcome[i].outcome == "permanent" for i in range(1, 6))
    assert {i for i, r in outcome.items() if r.hard_bounce} == {1, 3, 5}
    assert outcome[2].detail == "550 5.7.1 Message rejected by policy"
    assert server.rcpt_attempts["customer4@example.com"] == 1


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (550, "5.1.1 <address>: Recipient address rejected: User unknown", True),
        (550, "5.1.0 Address rejected", True),
        (551, "5.1.6 Mailbox has moved", True),
        (553, "5.1.3 Bad destination mailbox address syntax", True),
        (550, "5.1.10 Recipient address has null MX", True),
        (550, "Requested action not taken: no such user here", True),
        (550, "User unknown in virtual mailbox table", True),
        (550, "5.7.1 Service unavailable; client host blocked", False),
        (550, "5.7.1 User unknown", False),  # the enhanced status wins over the text
        (553, "5.1.8 Sender address domain does not exist", False),
        (550, "5.1.4 Ambiguous destination mailbox", False),
        (552, "5.2.2 Mailbox full", False),
        (554, "5.1.1 User unknown", False),
        (550, "Mailbox unavailable", False),
        (450, "4.1.1 User unknown (temporarily)", False),
        (551, "User not local; please try <forward-path>", False),
    ],
)
def test_is_hard_bounce(code, text, expected):
    assert is_hard_bounce(code, text) is expected


# -- channel-wide failures ------------------------------------------------------------------


def test_unreachable_server_raises_transient_quickly_and_reports_nothing():
    port = free_port()
    seen: list[DeliveryResult] = []
    settings = SmtpServer(port=port).settings(max_retries=2, retry_wait=0.01, timeout=2)
    channel = EmailChannel(settings, sender=SENDER)
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError, match=rf"SMTP server 127\.0\.0\.1:{port} unreachable: ") as caught:
        channel.send([outbound(i) for i in range(3)], on_result=seen.append)
    assert time.monotonic() - started < 2
    assert "after 3 attempts" in str(caught.value)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    assert seen == []
    channel.close()


def test_wrong_password_is_permanent_and_never_shown(caplog):
    caplog.set_level(logging.DEBUG)
    with SmtpServer(auth=("mailer", "right-secret")) as server:
        channel = EmailChannel(server.settings(password="wrong-secret"), sender=SENDER)
        with pytest.raises(PermanentDeliveryError, match="refused the login") as caught:
            channel.send([outbound(1)])
        channel.close()
        assert server.received == []
        assert server.connections == 1  # not retried

        results, _ = send(server, [outbound(2)])  # the right password
        assert [r.outcome for r in results] == ["sent"]
    assert "535" in str(caught.value)
    for text in (str(caught.value), caplog.text):
        assert "wrong-secret" not in text and "right-secret" not in text


def test_missing_login_is_permanent():
    with SmtpServer(auth=("mailer", "secret")) as server:
        settings = server.settings(username=None, password=None)
        with (
            pytest.raises(PermanentDeliveryError, match="requires a login"),
            EmailChannel(settings, sender=SENDER) as channel,
        ):
            channel.send([outbound(1)])


def test_dropped_connection_mid_batch_is_reconnected_and_delivers_each_once():
    batch = [outbound(i) for i in range(50)]
    with SmtpServer(drop_after=7) as server:
        results, _ = send(server, batch, max_retries=1, connections=1)

    assert all(r.outcome == "sent" for r in results)
    assert Counter(m["Message-ID"] for m in server.messages) == Counter({o.key: 1 for o in batch})
    assert server.connections == 8  # ceil(50 / 7)


def test_dropped_connections_are_reopened_on_every_thread():
    batch = [outbound(i) for i in range(60)]
    with SmtpServer(drop_after=5) as server:
        results, _ = send(server, batch, max_retries=1, connections=4)

    assert all(r.outcome == "sent" for r in results)
    assert Counter(m["Message-ID"] for m in server.messages) == Counter({o.key: 1 for o in batch})
    assert server.connections >= 12  # ceil(60 / 5)


def test_slow_server_times_out_as_transient():
    with SmtpServer(data_delay=1.0) as server:
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match="unreachable"):
            send(server, [outbound(1)], timeout=0.2, max_retries=0)
        assert time.monotonic() - started < 1


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls(security):
    with SmtpServer(tls=security) as server:
        results, _ = send(server, [outbound(1), outbound(2)])
        assert [r.outcome for r in results] == ["sent", "sent"]
        assert server.connections == 2  # one each: a batch of n uses at most n connections

        channel = EmailChannel(server.settings(validate_certs=True), sender=SENDER)
        with pytest.raises(PermanentDeliveryError, match="certificate"):
            channel.send([outbound(3)])
    assert len(server.received) == 2


def test_bad_input_raises_before_anything_is_sent():
    with SmtpServer() as server:
        channel = EmailChannel(server.settings(), sender=SENDER)
        with pytest.raises(ValueError, match=r"contact 2 needs the parts .* missing text or html"):
            channel.send([outbound(1), outbound(2, parts={"subject": "no body"})])
        with pytest.raises(ValueError, match="contact 1 needs the parts .* missing subject"):
            channel.send([outbound(1, parts={"text": "t"})])
        with pytest.raises(ValueError, match="may not set From"):
            channel.send([outbound(1, headers={"From": "x@y.example"})])
        with pytest.raises(ValueError, match="must be a Message-ID"):
            channel.send([outbound(1, key="has space")])
        assert server.connections == 0
    with pytest.raises(ValueError, match="The 'sender' parameter of EmailChannel must be an e-mail address"):
        EmailChannel(server.settings(), sender="Bank News")


# -- error mapping --------------------------------------------------------------------------


def smtplib_exception_classes() -> list[type[smtplib.SMTPException]]:
    return sorted(
        (c for c in vars(smtplib).values() if isinstance(c, type) and issubclass(c, smtplib.SMTPException)),
        key=lambda c: c.__name__,
    )


def make(cls: type[OSError], code: int) -> OSError:
    text = b"4.0.0 <someone@example.com> says no"
    if issubclass(cls, smtplib.SMTPRecipientsRefused):
        return cls({"someone@example.com": (code, text)})
    if issubclass(cls, smtplib.SMTPSenderRefused):
        return cls(code, text, "news@bank.example")
    if issubclass(cls, smtplib.SMTPResponseException):
        return cls(code, text)
    return cls("something failed")


def test_every_smtplib_exception_is_mapped():
    classes = smtplib_exception_classes()
    assert smtplib.SMTPAuthenticationError in classes  # the scan finds them
    unmapped = [c.__name__ for c in classes if c not in SMTP_ERRORS]
    assert unmapped == [], f"add these smtplib exceptions to channels.smtp_errors.SMTP_ERRORS: {unmapped}"


@pytest.mark.parametrize("cls", smtplib_exception_classes(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("code", [451, 550])
def test_every_smtplib_exception_becomes_an_outcome_or_a_delivery_error(cls, code):
    exc = make(cls, code)
    try:
        outcome, detail = classify_smtp_error(exc, server=SERVER)
    except DeliveryError as error:
        assert error.__cause__ is exc
        assert "@" not in str(error)
    else:
        assert outcome in ("transient", "permanent")
        assert "@" not in detail
    assert isinstance(connect_error(exc, server=SERVER), (TransientDeliveryError, PermanentDeliveryError))


R = smtplib.SMTPRecipientsRefused
S = smtplib.SMTPSenderRefused


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (R({"a@x.example": (550, b"5.1.1 <a@x.example>: unknown")}), ("permanent", "550 5.1.1 <address>: unknown")),
        (R({"a@x.example": (451, b"4.7.1 greylisted")}), ("transient", "451 4.7.1 greylisted")),
        (smtplib.SMTPDataError(554, b"5.7.1 spam"), ("permanent", "554 5.7.1 spam")),
        (smtplib.SMTPDataError(452, b"4.3.1 full"), ("transient", "452 4.3.1 full")),
        (S(452, b"4.3.1 full", "n@b.example"), ("transient", "452 4.3.1 full")),
        (S(552, b"5.3.4 too big", "n@b.example"), ("permanent", "552 5.3.4 too big")),
        (smtplib.SMTPNotSupportedError("no SMTPUTF8"), ("permanent", "no SMTPUTF8")),
        (R({"a@x.example": (421, b"4.3.2 shutting down")}), TransientDeliveryError),
        (smtplib.SMTPDataError(421, b"4.3.2 bye"), TransientDeliveryError),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), TransientDeliveryError),
        (smtplib.SMTPConnectError(554, b"go away"), TransientDeliveryError),
        (ConnectionRefusedError(111, "Connection refused"), TransientDeliveryError),
        (ConnectionResetError(104, "reset"), TransientDeliveryError),
        (TimeoutError("timed out"), TransientDeliveryError),
        (socket.gaierror(-2, "Name or service not known"), TransientDeliveryError),
        (S(553, b"5.7.1 sender rejected", "n@b.example"), PermanentDeliveryError),
        (S(530, b"5.7.0 Authentication required", "n@b.example"), PermanentDeliveryError),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad"), PermanentDeliveryError),
        (ssl.SSLCertVerificationError("self-signed certificate"), PermanentDeliveryError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_classify_smtp_error(exc, expected):
    if isinstance(expected, tuple):
        assert classify_smtp_error(exc, server=SERVER) == expected
    else:
        with pytest.raises(expected) as caught:
            classify_smtp_error(exc, server=SERVER)
        assert caught.value.__cause__ is exc
        assert SERVER in str(caught.value)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad"), PermanentDeliveryError),
        (smtplib.SMTPAuthenticationError(454, b"4.7.0 try later"), TransientDeliveryError),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), PermanentDeliveryError),
        (smtplib.SMTPException("No suitable authentication method found."), PermanentDeliveryError),
        (smtplib.SMTPResponseException(554, b"5.7.0 TLS not available"), PermanentDeliveryError),
        (smtplib.SMTPResponseException(454, b"4.7.0 TLS not available now"), TransientDeliveryError),
        (smtplib.SMTPHeloError(501, b"bad name"), TransientDeliveryError),
        (ConnectionRefusedError(111, "Connection refused"), TransientDeliveryError),
        (ssl.SSLCertVerificationError("self-signed certificate"), PermanentDeliveryError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_connect_error(exc, expected):
    assert type(connect_error(exc, server=SERVER)) is expected


# -- registry -------------------------------------------------------------------------------


def test_registry_names_its_classes():
    assert channel_class("email") is EmailChannel
    assert channel_class("memory") is MemoryChannel
    for name in CHANNELS:
        assert channel_class(name).name == name


def test_registry_imports_lazily():
    code = (
        "import sys, channels\n"
        "assert 'channels.email' not in sys.modules\n"
        "channels.channel_class('memory')\n"
        "assert 'channels.email' not in sys.modules\n"
        "channels.channel_class('email')\n"
        "assert 'channels.email' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_unknown_channel_says_did_you_mean():
    with pytest.raises(UnknownChannel) as caught:
        channel_class("emial")
    assert str(caught.value) == "No such channel: 'emial'. Did you mean 'email'?"
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, ValueError)
    known = ", ".join(repr(name) for name in sorted(CHANNELS))
    with pytest.raises(UnknownChannel) as caught:
        channel_class("fax")
    assert str(caught.value).startswith(f"No such channel: 'fax'. Known channels: {known}")


def test_public_api():
    assert set(channels.__all__) == {
        "CHANNELS",
        "Channel",
        "DeliveryError",
        "DeliveryReport",
        "DeliveryResult",
        "DeliveryStatus",
        "Outbound",
        "Outcome",
        "PermanentDeliveryError",
        "ResultCallback",
        "TransientDeliveryError",
        "UnknownChannel",
        "channel_class",
    }
    for name in channels.__all__:
        assert hasattr(channels, name)
