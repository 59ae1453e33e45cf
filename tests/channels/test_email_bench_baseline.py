"""bench/email_bench.py's hand-written sender: the messages it builds on the clock are the engine's messages,
and it delivers each exactly once over pipelined connections to a real SMTP server."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes
from email import policy as email_policy
from email.utils import formatdate

from bench.email_bench import SENDER, hand_message, hand_share, outbound, prebuilt
from channels.email import EmailChannel
from tests.smtp_server import SmtpServer


def parsed(data: bytes):  # noqa: ANN201
    return message_from_bytes(data, policy=email_policy.default)


def test_hand_built_messages_carry_the_engines_headers_and_parts():
    with SmtpServer() as server:
        channel = EmailChannel(server.settings(), sender=SENDER)
    for m in outbound(0, 3):
        hand, engine = parsed(hand_message(m, formatdate())), parsed(channel.encode(m).data)
        for name in ("From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"):
            assert hand[name] == engine[name]
        assert hand.get_content_type() == engine.get_content_type() == "multipart/alternative"
        assert [p.get_content() for p in hand.iter_parts()] == [p.get_content() for p in engine.iter_parts()]


def test_the_hand_written_sender_delivers_each_message_once_built_on_the_clock_or_prebuilt():
    built, ready = outbound(0, 25), prebuilt(25, 40)
    with SmtpServer(pipelining=True) as server:
        assert hand_share(server.port, built, 2) == 25
        assert hand_share(server.port, ready, 3) == 15
    assert Counter(server.recipients) == Counter({f"customer{i}@example.com": 1 for i in range(40)})
    for message in server.messages:
        i = int(message["To"].removeprefix("customer").removesuffix("@example.com"))
        parts = [p.get_content().replace("\r\n", "\n") for p in message.iter_parts()]
        expected = outbound(i, i + 1)[0].parts
        assert parts[0] == expected["text"]
        assert parts[1].rstrip("\n") == expected["html"]
