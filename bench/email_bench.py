"""Benchmark: e-mails per second through EmailChannel for 1, 2, 4 and 8 SMTP connections.

    .venv/bin/python bench/email_bench.py                          # 5,000 messages per run
    .venv/bin/python bench/email_bench.py --messages 20000 --connections 1 4 16
    .venv/bin/python bench/email_bench.py --latency 20 --messages 1000   # a server taking 20 ms per DATA

The receiver is the loopback aiosmtpd sink (``orchestrator.demo.smtp_sink.SmtpSink``, counting only)
in its own process, so it does not compete with the sending threads for the GIL. Each run
sends the same rendered messages (multipart text + HTML, ~1 KiB) in batches of
``--batch`` through one channel, closes it, and checks that the sink counted every message.
``--latency`` makes the sink wait that many milliseconds before answering each DATA, like a
remote relay; on loopback without it the single-threaded sink itself is the limit.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def serve(port: int, latency: float, ready, stop, count) -> None:  # noqa: ANN001 - multiprocessing objects
    """Child process: run the sink on ``port`` until ``stop`` is set; put the count into ``count``."""
    import asyncio

    from orchestrator.demo.smtp_sink import SmtpSink

    with SmtpSink(None, port=port) as sink:
        if latency:
            handle_data = sink.handler.handle_DATA

            async def slow(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                await asyncio.sleep(latency)
                return await handle_data(*args, **kwargs)

            sink.handler.handle_DATA = slow  # type: ignore[method-assign]  # aiosmtpd looks the hook up on the handler
        ready.set()
        stop.wait()
        count.value = sink.received


def batch(n: int):  # noqa: ANN201
    from channels.base import Outbound

    html = "<p>Dear customer,</p>" + "<p>It has been a while; here is a welcome-back bonus for you.</p>" * 8
    text = "Dear customer,\n" + "It has been a while; here is a welcome-back bonus for you.\n" * 8
    return [
        Outbound(
            contact_id=i,
            recipient=f"customer{i}@example.com",
            parts={"subject": f"Welcome back {i}", "text": text, "html": html},
            key=f"<w1.c{i}.bench@bank.example>",
            headers={"List-Unsubscribe": f"<https://links.bank.example/unsubscribe/{i}>"},
        )
        for i in range(n)
    ]


def run(connections: int, messages: int, batch_size: int, latency: float) -> float:
    """Seconds to send ``messages`` over ``connections``, sink started and counted."""
    from channels.email import EmailChannel
    from orchestrator.demo.smtp_sink import free_port
    from orchestrator.settings import SmtpSettings

    port = free_port()
    ready, stop, count = multiprocessing.Event(), multiprocessing.Event(), multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=serve, args=(port, latency, ready, stop, count), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")
        settings = SmtpSettings(host="127.0.0.1", port=port, connections=connections, timeout=30, max_retries=0)
        outbound = batch(messages)
        sent = 0
        started = time.perf_counter()
        with EmailChannel(settings, sender="Acme Bank <offers@bank.example>") as channel:
            for start in range(0, messages, batch_size):
                sent += channel.send(outbound[start : start + batch_size]).sent
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        server.join(30)
    if sent != messages or count.value != messages:
        raise RuntimeError(
            f"{messages} messages sent, but the channel reported {sent} and the sink counted {count.value}"
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5_000, help="messages per run (default 5000)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 2, 4, 8], help="connection counts to compare")
    parser.add_argument("--batch", type=int, default=1_000, help="messages per send() call (default 1000)")
    parser.add_argument("--latency", type=float, default=0.0, help="milliseconds the sink waits before each DATA reply")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    results: dict[int, float] = {}
    for connections in args.connections:
        with console.status(f"{args.messages:,} messages over {connections} connection(s)"):
            results[connections] = run(connections, args.messages, args.batch, args.latency / 1000)
    base = results[args.connections[0]]
    latency = f", {args.latency:g} ms per DATA" if args.latency else ""
    table = Table(title=f"EmailChannel to the loopback aiosmtpd sink: {args.messages:,} messages{latency}")
    table.add_column("connections", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("messages/s", justify="right")
    table.add_column(f"speed-up vs {args.connections[0]}", justify="right")
    for connections, seconds in results.items():
        table.add_row(str(connections), f"{seconds:.2f}", f"{args.messages / seconds:,.0f}", f"{base / seconds:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
