"""The fast MIME path (``channels.mime.MessageSkeleton``): every message parsed back and compared with the
``email`` package's, and sent through a real SMTP server (aiosmtpd) that parses what it received."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from channels.base import Outbound
from channels.email import EmailChannel
from channels.mime import MAX_LINE, MessageSkeleton
from tests.smtp_server import SmtpServer

SENDER = "Bank News <news@bank.example>"
LONG = "word " * 400  # 2,000 characters on one line

CASES: dict[str, dict[str, Any]] = {
    "ascii multipart": {"subject": "Offer 1", "text": "Hello 1\nsecond line", "html": "<p>Hello <b>1</b></p>"},
    "umlauts": {"subject": "Grüße, Jürgen", "text": "Schöne Grüße\n€ 20 Bonus", "html": "<p>Grüße — €</p>"},
    "long lines": {"subject": "Long", "text": LONG, "html": f"<p>{LONG}</p>"},
    "long non-ascii lines": {"subject": "Lang", "text": "ä" * 1500, "html": "<p>" + "é" * 1200 + "</p>"},
    "dots and line ends": {"subject": "Dots", "text": ".\n..leading\r\nCRLF\rCR\n.", "html": ".<p>x</p>\n."},
    "trailing spaces": {"subject": "Spaces", "text": "end with space \nand tab\t\n", "html": "<p> </p>   "},
    "text only": {"subject": "Text", "text": "only text"},
    "html only": {"subject": "HTML", "html": "<p>only html</p>"},
    "folded subject": {"subject": "Two\r\nlines\tand  spaces", "text": "t"},
    "long non-ascii subject": {"subject": "Überraschung! " * 12, "text": "t", "html": "<p>h</p>"},
    "emoji": {"subject": "Gift 🎁", "text": "🎁 for you", "html": "<p>🎁</p>"},
}


def outbound(parts: dict[str, str], **changes: Any) -> Outbound:
    values: dict[str, Any] = {
        "contact_id": 7,
        "recipient": "customer7@example.com",
        "parts": parts,
        "key": "<w1.c7.abcd@campaign.local>",
        "headers": {
            "List-Unsubscribe": "<https://bank.example/unsubscribe/token.signature>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Campaign-Token": "WzEsN10.signature",
        },
    }
    values.update(changes)
    return Outbound(**values)


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def check_wire_format(raw: bytes) -> None:
    """CRLF line ends only, no line over 998 octets, 7-bit clean."""
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b""), "a bare LF"
    assert b"\r" not in raw.replace(b"\r\n", b""), "a bare CR"
    assert max(len(line) for line in raw.split(b"\r\n")) <= MAX_LINE
    assert raw.isascii()


def contents(message: EmailMessage) -> dict[str, str]:
    """The parts' decoded text by subtype, line ends normalised."""
    parts = list(message.iter_parts()) if message.is_multipart() else [message]
    return {p.get_content_subtype(): re.sub(r"\r\n?", "\n", p.get_content()) for p in parts}


def expected_contents(parts: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, subtype in (("text", "plain"), ("html", "html")):
        if parts.get(key):
            text = re.sub(r"\r\n?", "\n", parts[key])
            out[subtype] = text if text.endswith("\n") else text + "\n"
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_skeleton_message_parses_back_like_the_email_package_builds_it(case):
    parts = CASES[case]
    channel = EmailChannel(SmtpServer().settings(), sender=SENDER, reply_to="help@bank.example")
    message = outbound(parts)
    fast = MessageSkeleton(SENDER, "help@bank.example").build(message, "<w1.c7.abcd@campaign.local>")
    assert fast is not None
    check_wire_format(fast)
    reference = channel._build(message, "<w1.c7.abcd@campaign.local>")
    got = parsed(fast)
    for name in ("From", "To", "Reply-To", "Subject", "Message-ID", *message.headers):
        assert str(got[name]) == str(reference[name]), name
    assert got["MIME-Version"] == "1.0"
    assert got.get_content_type() == reference.get_content_type()
    assert contents(got) == contents(parsed(reference.as_bytes())) == expected_contents(parts)
    assert not got.defects and all(not p.defects for p in got.walk())
    assert email.utils.parsedate_to_datetime(got["Date"]) is not None


def test_boundary_inside_a_part_gets_a_new_boundary():
    skeleton = MessageSkeleton(SENDER)
    collide = f"see {skeleton.boundary} here"
    raw = skeleton.build(outbound({"subject": "s", "text": collide, "html": "<p>h</p>"}), "<a@b>")
    assert raw is not None
    message = parsed(raw)
    assert message.get_boundary() != skeleton.boundary
    assert contents(message)["plain"] == collide + "\n"


@pytest.mark.parametrize(
    "changes",
    [
        {"recipient": "jürgen@example.com"},  # internationalised: SMTPUTF8, the email package's path
        {"headers": {"X-Note": "line\r\nInjected: yes"}},
        {"headers": {"X-Note": "Grüße"}},
        {"headers": {"X-Note": "x" * 1000}},
        {"headers": {"Bad Name": "x"}},
    ],
    ids=["idn recipient", "header with line break", "non-ascii header", "overlong header", "bad header name"],
)
def test_what_the_skeleton_does_not_cover_goes_to_the_email_package(changes):
    assert MessageSkeleton(SENDER).build(outbound(CASES["ascii multipart"], **changes), "<a@b>") is None


def test_non_ascii_display_name_of_the_sender_is_encoded_once():
    raw = MessageSkeleton("Bänk Nëws <news@bank.example>").build(outbound(CASES["ascii multipart"]), "<a@b>")
    assert raw is not None
    check_wire_format(raw)
    assert str(parsed(raw)["From"]) == "Bänk Nëws <news@bank.example>"


def test_every_case_arrives_intact_through_a_real_server():
    batch = [outbound(CASES[case], contact_id=i, recipient=f"c{i}@example.com") for i, case in enumerate(CASES)]
    with SmtpServer(pipelining=True) as server:
        with EmailChannel(server.settings(connections=2), sender=SENDER) as channel:
            report = channel.send(batch)
        assert report.sent == len(batch)
        received = {r.rcpt_tos[0]: r for r in server.received}
    for i, case in enumerate(CASES):
        got = received[f"c{i}@example.com"]
        check_wire_format(got.raw if got.raw.endswith(b"\r\n") else got.raw + b"\r\n")
        assert contents(got.message) == expected_contents(CASES[case]), case
        assert got.message["Subject"] == " ".join(CASES[case]["subject"].split())


def test_signer_sees_each_message_as_sent_and_its_result_arrives():
    seen: list[bytes] = []

    def signer(data: bytes) -> bytes:
        seen.append(data)
        return b"DKIM-Signature: v=1; a=rsa-sha256; d=bank.example; b=test\r\n" + data

    message = outbound(CASES["dots and line ends"])
    with SmtpServer(pipelining=True) as server:
        with EmailChannel(server.settings(), sender=SENDER, signer=signer) as channel:
            assert channel.send([message]).sent == 1
        [got] = server.received
    [data] = seen
    check_wire_format(data)
    # not dot-stuffed: the signer hashes the body the receiver will see
    assert b"\r\n..leading" in data and b"\r\n...leading" not in data
    assert got.message["DKIM-Signature"].startswith("v=1;")
    assert contents(got.message) == expected_contents(CASES["dots and line ends"])
