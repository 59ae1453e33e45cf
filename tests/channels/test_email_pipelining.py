"""PIPELINING (RFC 2920) against a strict server that only answers what a pipelining client may wait for.

The server (raw sockets on loopback, a thread per connection) holds its replies to MAIL and RCPT
until DATA ends the group, and its reply to a message's final dot until the client sends its next
command; only when the client has sent nothing for a while does it answer a held reply
("an idle flush"). A client waiting for each reply before its next command would stall on every
message; the channel streams, so the only idle flushes are its first message on each connection
(sent before it knows the server pipelines) and its last.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import pytest

from channels.base import Outbound
from channels.email import EmailChannel
from channels.smtp_stream import read_replies
from orchestrator.settings import SmtpSettings
from tests.smtp_server import SmtpServer

IDLE = 0.3  # seconds of client silence before a held reply is sent anyway


class StrictServer:
    def __init__(self, reject: frozenset[str] = frozenset()):
        self.reject = reject
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.idle_flushes = 0
        self.received: Counter[str] = Counter()
        self.commands: list[str] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.stopped = False

    def __enter__(self) -> StrictServer:
        threading.Thread(target=self.accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped = True
        self.listener.close()
        for t in self.threads:
            t.join(5)

    def accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self.serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def serve(self, conn: socket.socket) -> None:  # noqa: C901 - one small SMTP state machine
        conn.settimeout(IDLE)
        held: list[bytes] = []
        buffer = b""
        in_data, recipient = False, ""
        conn.sendall(b"220 strict ESMTP\r\n")
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    if held:
                        with self.lock:
                            self.idle_flushes += 1
                        conn.sendall(b"".join(held))
                        held.clear()
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    if in_data:
                        if line == b".":
                            in_data = False
                            with self.lock:
                                self.received[recipient] += 1  # DATA got 354: a recipient was accepted
                            held.append(b"250 2.0.0 queued\r\n")
                        continue
                    command = line.decode()
                    verb = command[:4].upper()
                    with self.lock:
                        self.commands.append(verb)
                    if verb == "EHLO":
                        held.append(b"250-strict\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                        conn.sendall(b"".join(held))
                        held.clear()
                    elif verb == "MAIL":
                        recipient = ""
                        held.append(b"250 2.1.0 ok\r\n")
                    elif verb == "RCPT":
                        address = command.split("<", 1)[1].rstrip(">")
                        if address in self.reject:
                            held.append(b"550 5.1.1 <address>: Recipient address rejected: User unknown\r\n")
                        else:
                            recipient = address
                            held.append(b"250 2.1.5 ok\r\n")
                    elif verb == "DATA":  # the last command of a group: answer the whole group now
                        if not recipient:
                            held.append(b"554 5.5.1 Error: no valid recipients\r\n")
                        else:
                            held.append(b"354 go ahead\r\n")
                            in_data = True
                        conn.sendall(b"".join(held))
                        held.clear()
                    elif verb == "RSET":
                        recipient = ""
                        held.append(b"250 2.0.0 ok\r\n")
                    elif verb == "QUIT":
                        held.append(b"221 2.0.0 bye\r\n")
                        conn.sendall(b"".join(held))
                        return
                    else:
                        held.append(b"502 5.5.2 unknown\r\n")


def batch(n: int) -> list[Outbound]:
    return [
        Outbound(
            contact_id=i,
            recipient=f"c{i}@example.com",
            parts={"subject": f"s{i}", "text": f".line {i}\nmore", "html": f"<p>{i}</p>"},
            key=f"<w1.c{i}@bank.example>",
        )
        for i in range(n)
    ]


def settings(port: int, **changes: object) -> SmtpSettings:
    values: dict = {"host": "127.0.0.1", "port": port, "timeout": 10, "max_retries": 0, "connections": 1}
    values.update(changes)
    return SmtpSettings(**values)


@pytest.mark.parametrize("connections", [1, 3])
def test_each_message_is_one_round_trip(connections):
    with StrictServer() as server:
        with EmailChannel(settings(server.port, connections=connections), sender="news@bank.example") as channel:
            report = channel.send(batch(30))
    assert report.sent == 30
    assert server.received == Counter({f"c{i}@example.com": 1 for i in range(30)})
    # one message per connection before the stream starts, one at its end; never one per message
    assert server.idle_flushes <= 2 * connections


def test_refused_recipient_in_the_stream_is_reset_and_the_rest_are_sent():
    with StrictServer(reject=frozenset({"c4@example.com", "c5@example.com"})) as server:
        seen = []
        with EmailChannel(settings(server.port), sender="news@bank.example") as channel:
            report = channel.send(batch(12), on_result=seen.append)
    outcomes = {r.contact_id: r for r in report.results}
    assert {i for i, r in outcomes.items() if r.outcome == "permanent"} == {4, 5}
    assert outcomes[4].hard_bounce and outcomes[4].detail.startswith("550 5.1.1")
    assert sum(server.received.values()) == 10 and "c4@example.com" not in server.received
    assert server.commands.count("RSET") == 2
    assert sorted(r.contact_id for r in seen) == list(range(12))
    assert server.idle_flushes <= 2


def test_settings_can_turn_pipelining_off():
    with StrictServer() as server:
        with EmailChannel(settings(server.port, timeout=IDLE * 10, pipelining=False), sender="news@bank.example") as ch:
            report = ch.send(batch(3))
    assert report.sent == 3
    # one command at a time: every held reply waited for the client to fall silent
    assert server.idle_flushes >= 3 * 3


class Journal:
    """An ``on_result`` callback that checks, at each report, how many messages the server has taken.

    With ``together``, it also takes the results learnt at once (``report_all``), as the send journal does.
    """

    def __init__(self, server: StrictServer, connections: int, together: bool):
        self.server = server
        self.connections = connections
        self.reported: list[int] = []
        self.calls: list[int] = []  # results per call
        self.taken_ahead: list[int] = []  # messages the server had taken beyond the reported ones, per call
        if together:
            self.report_all = self._report_all

    def __call__(self, result) -> None:  # noqa: ANN001
        self._report_all([result])

    def _report_all(self, results) -> None:  # noqa: ANN001
        time.sleep(0.02)  # a write made before this report would reach the server meanwhile
        self.reported += [r.contact_id for r in results]
        self.calls.append(len(results))
        with self.server.lock:
            taken = sum(self.server.received.values())
        self.taken_ahead.append(taken - len(self.reported))


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "report_all"])
@pytest.mark.parametrize("connections", [1, 3])
def test_a_result_is_reported_before_its_connection_sends_more(connections, together):
    """The crash guarantee: a message's result is reported (journalled) before its connection writes the
    next message's content, so when a report is made the server holds at most one unreported message
    per other connection (none with one connection)."""
    with StrictServer() as server:
        journal = Journal(server, connections, together)
        with EmailChannel(settings(server.port, connections=connections), sender="news@bank.example") as channel:
            report = channel.send(batch(24), on_result=journal)
    assert report.sent == 24
    assert sorted(journal.reported) == list(range(24))  # each once
    assert max(journal.taken_ahead) <= connections - 1
    if together and connections > 1:
        assert len(journal.calls) < 24  # some results were learnt, and journalled, together


def test_replies_are_parsed_as_smtplib_reads_them():
    """``read_replies`` parses what a write's replies look like in one read: several replies, a
    multi-line one, a reply cut in the middle, a code that is not a number."""
    four = b"250 2.0.0 Ok: queued\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data\r\n"
    assert read_replies(four, 4) == (
        [(250, b"2.0.0 Ok: queued\r"), (250, b"2.1.0 Ok\r"), (250, b"2.1.5 Ok\r"), (354, b"End data\r")],
        len(four),
    )
    assert read_replies(four, 2) == ([(250, b"2.0.0 Ok: queued\r"), (250, b"2.1.0 Ok\r")], 36)
    assert read_replies(four[:-3], 4) is None  # the last reply has not fully arrived
    multi = b"550-5.1.1 first\r\n550-second\r\n550 5.1.1 third\r\n250 ok\r\n"
    assert read_replies(multi, 2) == ([(550, b"5.1.1 first\nsecond\n5.1.1 third"), (250, b"ok\r")], len(multi))
    assert read_replies(multi[:20], 1) is None
    assert read_replies(b"xyz oops\n", 1) == ([(-1, b"oops")], 9)


def test_messages_larger_than_the_socket_buffer_are_written_in_pieces_and_arrive_whole():
    """A write the socket cannot take at once waits for POLLOUT while the other connection streams on;
    each message arrives once and whole, its lines that start with a dot dot-stuffed and restored."""
    line = ".a line that starts with a dot, dot-stuffed on the wire" + "x" * 20 + "\n"
    text = line * 150_000  # about 11 MiB: more than a loopback socket takes in one send
    messages = [
        Outbound(
            contact_id=i,
            recipient=f"c{i}@example.com",
            parts={"subject": f"s{i}", "text": f"{i}\n{text}"},
            key=f"<big{i}@bank.example>",
        )
        for i in range(4)
    ]
    with SmtpServer(pipelining=True) as server:
        with EmailChannel(server.settings(connections=2, timeout=30), sender="news@bank.example") as channel:
            report = channel.send(messages)
    assert report.sent == 4
    assert sorted(server.recipients) == sorted(m.recipient for m in messages)
    for message in server.messages:
        i = int(message["Subject"][1:])
        assert message.get_content().replace("\r\n", "\n") == f"{i}\n{text}"
