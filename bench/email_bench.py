"""Benchmark: the engine's e-mail channel against a minimal hand-written sender, in the same run, to one sink.

    .venv/bin/python bench/email_bench.py                            # 20,000 messages, 4 connections, 1 process
    .venv/bin/python bench/email_bench.py --messages 50000 --processes 2
    .venv/bin/python bench/email_bench.py --dump                      # the sink checks every recipient got one message
    .venv/bin/python bench/email_bench.py --python-sink --messages 5000
    .venv/bin/python bench/email_bench.py --dkim --messages 2000      # the engine DKIM-signs each message

The sink is postfix's ``smtp-sink`` (C) when it is installed, else the Python (aiosmtpd) sink;
the first line printed says which (install: see ``bench/sinks.py``, one apt command). The same
``--messages`` multipart messages (text + HTML, about 2 KiB on the wire) go out twice:

* **engine**: ``channels.email.EmailChannel`` given the rendered parts (``Outbound``, made
  before the clock starts), as ``send_email_chunk`` gives them: it builds each message (the fast
  MIME path), sends it on ``--connections`` connections with PIPELINING and reports each result
  to a real send journal (``orchestrator.ledger.journal.SendJournal``: the results of one read of
  the connections' replies in one write, before anything more is sent), in batches of ``--batch``;
* **hand-written** (issue 17's baseline): pre-built bytes (``EmailMessage.as_bytes`` before the
  clock starts) sent on the same number of connections, fully pipelined (a message's content, its
  end and the next message's MAIL/RCPT/DATA in one write), nothing else: no journal, no results, no
  retries; so it builds nothing on its clock while the engine builds every message on its own. With
  ``--hand-building`` it gets the same rendered parts as the engine instead and builds each message
  on the clock by ``hand_message`` (one f-string of a fixed multipart layout: no checks, the date
  once per connection) while the sink answers the write before it.

Each process collects the garbage of its preparation (``gc.collect()``) before the clock starts: otherwise
the first full collection, which walks the 20,000 prepared ``Outbound`` objects, would fall into the
timed run.

With ``--processes P`` each side splits the messages into P shares sent by P processes at
once (``--connections`` over all of them), as the engine's chunk runner spreads e-mail chunks over
Dask worker processes. Every run checks the sink's count (and with ``--dump`` each recipient's
count). The last line prints both rates and the engine's time over the hand-written one.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import socket
import sys
import tempfile
import threading
import time
from email.utils import formatdate
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sinks import settled_count, smtp_sink  # noqa: E402 - bench/ is on sys.path when run as a script

SENDER = "Acme Bank <offers@bank.example>"
ENVELOPE_SENDER = "offers@bank.example"


def outbound(first: int, last: int):  # noqa: ANN201
    """Messages ``first..last-1``: multipart text + HTML, about 2 KiB each on the wire."""
    from channels.base import Outbound

    html = (
        "<html><body><p>Dear customer {i},</p>"
        + "<p>It has been a while; here is a welcome-back bonus for you, valid until the end of the month.</p>" * 6
        + '<p><a href="https://links.bank.example/c/{i}">Claim it</a></p></body></html>'
    )
    text = (
        "Dear customer {i},\n"
        + "It has been a while; here is a welcome-back bonus for you, valid until the end of the month.\n" * 6
        + "Claim it: https://links.bank.example/c/{i}\n"
    )
    return [
        Outbound(
            contact_id=i,
            recipient=f"customer{i}@example.com",
            parts={"subject": f"Welcome back, customer {i}", "text": text.format(i=i), "html": html.format(i=i)},
            key=f"<w1.c{i}.bench@bank.example>",
            headers={
                "List-Unsubscribe": f"<https://links.bank.example/unsubscribe/{i}.signature-of-the-token>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "X-Campaign-Token": f"WzEsIHtpfV0.token-{i}",
            },
        )
        for i in range(first, last)
    ]


# --- the engine side ---------------------------------------------------------------------------


def engine_share(  # noqa: PLR0913
    port: int, messages: list, connections: int, batch: int, journal_dir: str, dkim_pem: bytes | None = None
) -> int:
    """Send ``messages`` (``outbound(...)``) through ``EmailChannel`` with a send journal; returns how many were sent.

    ``dkim_pem``: sign each message with this RSA key (``channels.dkim.DkimSigner``, as the e-mail kind does).
    """
    from channels.dkim import DkimSigner
    from channels.email import EmailChannel
    from orchestrator.ledger.journal import SendJournal
    from orchestrator.settings import SmtpSettings

    settings = SmtpSettings(host="127.0.0.1", port=port, connections=connections, timeout=60, max_retries=0)
    signer = None if dkim_pem is None else DkimSigner(domain="bank.example", selector="bench", private_key=dkim_pem)
    sent = 0
    with (
        SendJournal(Path(journal_dir) / f"email-{messages[0].contact_id if messages else 0}.log") as journal,
        EmailChannel(settings, sender=SENDER, signer=signer) as channel,
    ):
        for start in range(0, len(messages), batch):
            sent += channel.send(messages[start : start + batch], on_result=journal).sent
            journal.clear()  # as send_email_chunk does once the ledger has the page
    return sent


# --- the hand-written side ---------------------------------------------------------------------


def prebuilt(first: int, last: int) -> list[tuple[str, bytes]]:
    """(recipient, bytes) of the same messages, built with the standard library before the clock starts."""
    from email.message import EmailMessage
    from email.utils import formatdate

    out = []
    for m in outbound(first, last):
        message = EmailMessage()
        message["From"] = SENDER
        message["To"] = m.recipient
        message["Subject"] = m.parts["subject"]
        message["Date"] = formatdate()
        message["Message-ID"] = m.key
        for name, value in m.headers.items():
            message[name] = value
        message.set_content(m.parts["text"])
        message.add_alternative(m.parts["html"], subtype="html")
        data = message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").replace(b"\r\n.", b"\r\n..")
        out.append((m.recipient, data))
    return out


def _replies(sock: socket.socket, buffer: bytearray, n: int) -> list[bytes]:
    """Read ``n`` complete SMTP replies (multi-line aware)."""
    out: list[bytes] = []
    while len(out) < n:
        end = buffer.find(b"\n")
        if end < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the sink closed the connection")
            buffer += chunk
            continue
        line = bytes(buffer[: end + 1])
        del buffer[: end + 1]
        if line[3:4] != b"-":
            out.append(line)
    return out


def hand_message(m, date: str) -> bytes:  # noqa: ANN001 - an ``Outbound``
    """One message's bytes from its rendered parts, as a hand-written sender that knows its content builds it:
    a fixed multipart/alternative layout, both parts 7bit (ASCII, short lines: the bench's texts are), CRLF,
    dot-stuffed. The same headers and parts as the engine's message (``channels.mime``)."""
    b = "===============hand-written-boundary=="
    headers = "".join([f"{name}: {value}\r\n" for name, value in m.headers.items()])
    text, html = (
        part.replace("\n", "\r\n") + ("" if part[-1:] == "\n" else "\r\n")
        for part in (m.parts["text"], m.parts["html"])
    )
    message = (
        f"From: {SENDER}\r\nTo: {m.recipient}\r\nSubject: {m.parts['subject']}\r\nDate: {date}\r\n"
        f"Message-ID: {m.key}\r\n{headers}MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{b}"\r\n\r\n'
        f'--{b}\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{text}\r\n'
        f'--{b}\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{html}\r\n'
        f"--{b}--\r\n"
    )
    return message.encode().replace(b"\r\n.", b"\r\n..")


def hand_connection(port: int, messages: list, sent: list[int]) -> None:
    """One pipelined connection: each write is a message, its end and the next message's envelope.

    ``messages``: ``(recipient, bytes)`` built before the clock started (the default), or the
    ``Outbound`` messages, each built (``hand_message``) while the sink answers the write before it.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    buffer = bytearray()
    _replies(sock, buffer, 1)
    sock.sendall(b"EHLO hand.example\r\n")
    _replies(sock, buffer, 1)
    date = formatdate()  # once per connection: the hand-written side does not look at the clock per message

    def envelope(rcpt: str) -> bytes:
        return f"MAIL FROM:<{ENVELOPE_SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode()

    def recipient(m) -> str:  # noqa: ANN001
        return m[0] if isinstance(m, tuple) else m.recipient

    def data_of(m) -> bytes:  # noqa: ANN001
        return m[1] if isinstance(m, tuple) else hand_message(m, date)

    if messages:
        sock.sendall(envelope(recipient(messages[0])))
        data = data_of(messages[0])  # built while the sink answers the envelope
        _replies(sock, buffer, 3)
    for k in range(len(messages)):
        following = messages[k + 1] if k + 1 < len(messages) else None
        sock.sendall(data + b".\r\n" + (envelope(recipient(following)) if following is not None else b""))
        if following is not None:
            data = data_of(following)  # built while the sink answers
        replies = _replies(sock, buffer, 4 if following is not None else 1)
        if replies[0][:3] != b"250":
            raise RuntimeError(f"the sink refused a message: {replies[0]!r}")
        sent[0] += 1
    sock.sendall(b"QUIT\r\n")
    sock.close()


def hand_share(port: int, messages: list, connections: int) -> int:
    counts = [[0] for _ in range(connections)]
    threads = [
        threading.Thread(target=hand_connection, args=(port, messages[k::connections], counts[k]))
        for k in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(c[0] for c in counts)


# --- processes ---------------------------------------------------------------------------------


def _worker(
    side: str, port: int, first: int, last: int, connections: int, batch: int, journal_dir: str, dkim_pem, go, out
):  # noqa: ANN001, PLR0913
    """One process of one side: prepare (not timed), wait for ``go``, send, report (count, CPU seconds)."""
    import resource

    # rendered parts (both sides), or the hand-written side's messages as bytes (the default)
    messages = prebuilt(first, last) if side == "hand-prebuilt" else outbound(first, last)
    if side == "engine":  # everything engine_share imports, imported before the clock starts
        import channels.dkim  # noqa: F401
        import channels.email  # noqa: F401
        import orchestrator.ledger.journal  # noqa: F401
    gc.collect()  # the garbage of preparing (both sides) is not collected on the clock
    out.put(("ready", 0, 0.0))
    go.wait()
    started = resource.getrusage(resource.RUSAGE_SELF)
    if side == "engine":
        sent = engine_share(port, messages, connections, batch, journal_dir, dkim_pem)
    else:
        sent = hand_share(port, messages, connections)
    ended = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ended.ru_utime - started.ru_utime) + (ended.ru_stime - started.ru_stime)
    out.put(("done", sent, cpu))


def run_side(side: str, port: int, args: argparse.Namespace, offset: int) -> tuple[float, int, float]:
    """Seconds, messages sent and CPU seconds of one side: ``--processes`` processes started first, then timed."""
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    n, p = args.messages, args.processes
    bounds = [offset + n * k // p for k in range(p + 1)]
    per_process = [args.connections // p + (1 if k < args.connections % p else 0) for k in range(p)]
    journal_dir = tempfile.mkdtemp(prefix="email-bench-journal-")
    workers = [
        context.Process(
            target=_worker,
            args=(
                side,
                port,
                bounds[k],
                bounds[k + 1],
                max(1, per_process[k]),
                args.batch,
                journal_dir,
                args.dkim_pem,
                go,
                out,
            ),
        )
        for k in range(p)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        assert out.get(timeout=600)[0] == "ready"
    started = time.perf_counter()
    go.set()
    results = [out.get(timeout=3600) for _ in workers]
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join(60)
    return elapsed, sum(r[1] for r in results), sum(r[2] for r in results)


def dkim_key() -> bytes:
    """A fresh 2048-bit RSA private key (PEM), as a sender's DKIM key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def signing_cost(pem: bytes, n: int = 500) -> str:
    """The time ``DkimSigner`` takes per message on this machine (one thread, messages as the engine builds them)."""
    from channels.dkim import DkimSigner
    from channels.mime import MessageSkeleton

    skeleton = MessageSkeleton(SENDER)
    messages = [skeleton.build(m, m.key) for m in outbound(0, n)]
    signer = DkimSigner(domain="bank.example", selector="bench", private_key=pem)
    started, cpu_started = time.perf_counter(), time.process_time()
    signed = [signer(m) for m in messages if m is not None]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    extra = sum(len(s) for s in signed) / len(signed) - sum(len(m) for m in messages if m) / len(signed)
    return (
        f"DKIM signing alone (rsa-sha256, 2048-bit, relaxed/relaxed), {len(signed)} messages in one thread: "
        f"{seconds / len(signed) * 1000:.3f} ms per message ({cpu / len(signed) * 1000:.3f} ms CPU), "
        f"{extra:.0f} bytes added per message"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per side (default 20000)")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections per side (default 4)")
    parser.add_argument("--processes", type=int, default=1, help="sending processes per side (default 1)")
    parser.add_argument("--batch", type=int, default=5_000, help="messages per send() call of the engine")
    parser.add_argument("--rounds", type=int, default=1, help="engine and hand-written alternately, this many times")
    parser.add_argument("--dump", action="store_true", help="smtp-sink dumps every message: count per recipient")
    parser.add_argument("--python-sink", action="store_true", help="use the Python sink even if smtp-sink is there")
    parser.add_argument(
        "--hand-building",
        action="store_true",
        help="the hand-written side builds each message on the clock from the rendered parts, as the engine does "
        "(default: it sends bytes built before the clock starts, issue 17's baseline)",
    )
    parser.add_argument("--dkim", action="store_true", help="the engine DKIM-signs each message (2048-bit RSA key)")
    args = parser.parse_args()
    args.dkim_pem = dkim_key() if args.dkim else None

    from rich.console import Console
    from rich.table import Table

    console = Console()
    size = len(prebuilt(0, 1)[0][1])
    load = os.getloadavg()
    with smtp_sink(dump=args.dump, python=args.python_sink) as sink:
        console.print(f"sink: {sink.name} on 127.0.0.1:{sink.port}")
        console.print(
            f"{args.messages:,} multipart messages of {size:,} bytes per side, {args.connections} connection(s), "
            f"{args.processes} process(es); load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            f"on {os.cpu_count()} cores"
        )
        baseline = "messages built on the clock" if args.hand_building else "pre-built bytes"
        table = Table(title=f"E-mail to the sink: engine (EmailChannel + send journal) vs hand-written {baseline}")
        for column in ("round", "side", "seconds", "messages/s", "messages/min", "CPU ms/message", "sink count"):
            table.add_column(column, justify="right")
        totals = {"engine": 0.0, "hand": 0.0}
        offset = 0
        for r in range(1, args.rounds + 1):
            for side in ("engine", "hand"):
                before = sink.count()
                with console.status(f"round {r}: {side}"):
                    kind = "hand-prebuilt" if side == "hand" and not args.hand_building else side
                    seconds, sent, cpu = run_side(kind, sink.port, args, offset)
                counted = settled_count(sink, before + args.messages) - before
                if sent != args.messages or counted != args.messages:
                    raise SystemExit(
                        f"{side}: {args.messages} messages, {sent} reported sent, the sink counted {counted}"
                    )
                totals[side] += seconds
                table.add_row(
                    str(r),
                    side,
                    f"{seconds:.2f}",
                    f"{sent / seconds:,.0f}",
                    f"{sent / seconds * 60:,.0f}",
                    f"{cpu / sent * 1000:.3f}",
                    f"{counted:,}",
                )
                offset += args.messages  # new recipients each run, so --dump can check each once
        recipients = sink.recipients()
        if recipients is not None:
            twice = sum(1 for n in recipients.values() if n != 1)
            if twice or len(recipients) != offset:
                raise SystemExit(f"{twice} recipient(s) got other than one message; {len(recipients)} of {offset} seen")
            console.print(f"sink dump: each of {offset:,} recipients received exactly one message")
    console.print(table)
    if args.dkim_pem is not None:
        console.print(signing_cost(args.dkim_pem))
    load = os.getloadavg()
    console.print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    total = args.messages * args.rounds
    engine_rate, hand_rate = total / totals["engine"], total / totals["hand"]
    print(
        f"engine {engine_rate:,.0f} msg/s ({engine_rate * 60:,.0f}/min), hand-written {hand_rate:,.0f} msg/s "
        f"({hand_rate * 60:,.0f}/min); engine time / hand-written time = {totals['engine'] / totals['hand']:.2f}x"
    )


if __name__ == "__main__":
    main()
