"""Benchmark: ledger-driven webhook dispatch against a bare httpx loop posting the same batches.

    .venv/bin/python bench/dispatch_bench.py                      # 200,000 call tasks + 50,000 visits
    .venv/bin/python bench/dispatch_bench.py --calls 20000 --visits 5000   # a quick run

Setup (timed, not compared): synthetic customers in a SQLite file, one wave whose ledger holds
``--calls`` pending call-center contacts (customers with a phone number) and ``--visits``
pending field-force contacts spread over reps of 50 visits each (as allocation writes them).

The receiver is the reference receiver (``orchestrator.demo.webhook_receiver``: signature check,
payload validation, redelivery detection) served by uvicorn in its own process on 127.0.0.1.

- **engine**: ``orchestrator.delivery.dispatch.dispatch_channel`` per channel: fixes the batches in the
  ledger, then per batch reads the contacts with their customer rows, renders the call script
  or visit brief in the sandbox, builds the versioned payload, signs and POSTs it
  (``webhooks.concurrency`` in flight) and records the outcome in the ledger.
- **bare httpx**: the same payload bodies, already built, signed and POSTed one after another
  with one ``httpx.Client`` (what a hand-written script would do, with no ledger, rendering,
  retries or bookkeeping).

Printed: tasks per second of each and the ratio engine / bare; every task must have reached
the receiver exactly once (asserted from the receiver's counts).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WAVE_DAY = date(2026, 11, 24)


def _serve(port: int, ready) -> None:  # the receiver process
    import uvicorn

    from orchestrator.demo.webhook_receiver import receiver_app

    app = receiver_app(
        {"call_center": SECRET, "field_force": SECRET, "bare/call_center": SECRET, "bare/field_force": SECRET}
    )

    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def counts(_request):
        store = app.state.store
        per = {
            path: sum(store.tasks_per_customer(path).values())
            for path in ("/call_center", "/field_force", "/bare/call_center", "/bare/field_force")
        }
        dup = {path: max(store.tasks_per_customer(path).values(), default=0) for path in per}
        return JSONResponse({"tasks": per, "max_per_customer": dup, "redelivered": store.redelivered})

    app.router.routes.append(Route("/counts", counts))
    ready.set()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--visits", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    import httpx
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from channels import channel_class
    from channels.webhook_delivery import TaskListChannel, WebhookDelivery
    from orchestrator.customers.importer import import_customers
    from orchestrator.customers.table import customer_table
    from orchestrator.db.engine import connect
    from orchestrator.delivery.dispatch import dispatch_channel
    from orchestrator.delivery.tasks import TaskBuilder
    from orchestrator.demo.smtp_sink import free_port
    from orchestrator.demo.synthetic import write_csv
    from orchestrator.ledger import batches
    from orchestrator.ledger import contacts as ledger
    from orchestrator.rules.kinds import channel_kind
    from orchestrator.rules.loader import load_campaign
    from orchestrator.settings import DatabaseSettings, PathSettings, Settings, WebhookEndpoint, WebhookSettings
    from orchestrator.targeting.frame import ContactFrame
    from orchestrator.templates.loader import TemplateSet

    console = Console(width=150)
    port = free_port("127.0.0.1")
    ready = multiprocessing.get_context("spawn").Event()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    ready.wait(60)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/counts", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)

    n = args.calls + args.visits
    work = Path(tempfile.mkdtemp(prefix="dispatch-bench-"))
    hooks = WebhookSettings(batch_size=args.batch_size, concurrency=args.concurrency, timeout=60)
    settings = Settings(
        paths=PathSettings(rules_dir=REPO / "rules", templates_dir=REPO / "templates", data_dir=work / "var"),
        database=DatabaseSettings(url=f"sqlite:///{work / 'bench.db'}"),
        webhooks=hooks,
    )
    started = time.perf_counter()
    engine = connect(settings)
    import_customers(engine, write_csv(work / "customers.csv", int(args.calls * 1.25) + args.visits, seed=3))
    spec = load_campaign(REPO / "rules" / "retention-multichannel.yaml", columns=None)
    campaign_id = ledger.ensure_campaign(engine, spec.name, spec.description)
    wave = ledger.open_wave(engine, campaign_id, WAVE_DAY.isoformat(), spec.sha256)
    with engine.connect() as conn:  # call tasks for customers with a phone number, visits for the others
        phones = [
            r[0]
            for r in conn.exec_driver_sql(
                "select customer_id from customers where phone is not null order by customer_id"
            )
        ]
        calls = phones[: args.calls]
        taken = set(calls)
        others = [
            r[0]
            for r in conn.exec_driver_sql("select customer_id from customers order by customer_id")
            if r[0] not in taken
        ]
    ids = calls + others[: args.visits]
    assert len(ids) == n, "not enough synthetic customers"
    channels = np.array(["call_center"] * args.calls + ["field_force"] * args.visits, dtype=object)
    assignees = np.array([None] * args.calls + [f"R{i // 50:04d}" for i in range(args.visits)], dtype=object)
    frame = ContactFrame.of(
        ids, np.full(n, "treatment", dtype=object), channel=channels, assignee=assignees, expected_value=np.ones(n)
    )
    ledger.record_contacts(engine, wave.id, frame, planned_for=WAVE_DAY)
    setup = time.perf_counter() - started
    console.print(f"setup: {n:,} customers and ledger contacts in {setup:.1f} s (not compared)")

    table = customer_table(engine, "customers")
    rows = []
    bodies: dict[str, list[tuple[str, bytes]]] = {}
    for channel, count in (("call_center", args.calls), ("field_force", args.visits)):
        endpoint = WebhookEndpoint(url=f"{base}/{channel}", secret=SECRET)
        template = TemplateSet.load(settings.paths.templates_dir, channel, "retention", channel_kind(channel).layout)
        builder = TaskBuilder(settings, spec, channel, template, wave.key, wave.id, WAVE_DAY)
        adapter_class = channel_class(channel)
        assert issubclass(adapter_class, TaskListChannel), adapter_class
        with adapter_class(endpoint, hooks, name=channel) as adapter:
            t0 = time.perf_counter()
            result = dispatch_channel(
                engine,
                table,
                wave.id,
                channel,
                channel,
                builder,
                adapter,
                batch_size=args.batch_size,
                concurrency=args.concurrency,
            )
            engine_s = time.perf_counter() - t0
        assert result.sent == count and result.failure is None, result

        # the same batches, built once more, for the bare loop
        with engine.connect() as conn:
            refs = conn.execute(
                batches.batches.select().where(
                    batches.batches.c.wave_id == wave.id, batches.batches.c.channel == channel
                )
            ).all()
        payloads = []
        import datetime as _dt

        with adapter_class(endpoint, hooks, name=channel) as adapter:
            for ref in refs:
                q = (
                    ledger.contact_rows(table)
                    .where(ledger.contacts.c.batch_id == ref.id)
                    .order_by(ledger.contacts.c.id)
                )
                with engine.connect() as conn:
                    chunk = ledger.contact_chunk(conn.execute(q))
                tasks, _skipped = builder.build(chunk)
                model = adapter.payload(tasks, batch_key=f"bare-{ref.webhook_id}", created_at=_dt.datetime.now(_dt.UTC))
                payloads.append((f"bare-{ref.webhook_id}", model.model_dump_json().encode()))
        bodies[channel] = payloads
        bare_endpoint = WebhookEndpoint(url=f"{base}/bare/{channel}", secret=SECRET)
        delivery = WebhookDelivery(bare_endpoint, hooks, name=channel)
        with httpx.Client(timeout=60) as client:
            t0 = time.perf_counter()
            for key, body in payloads:
                response = client.post(bare_endpoint.url, content=body, headers=delivery.headers(key, body))
                response.raise_for_status()
            bare_s = time.perf_counter() - t0
        delivery.close()
        rows.append((channel, count, len(refs), engine_s, bare_s))

    counts = httpx.get(base + "/counts", timeout=10).json()
    server.terminate()
    sent = {channel: count for channel, count, *_ in rows}
    assert (
        counts["tasks"]["/call_center"] == sent["call_center"]
        and counts["tasks"]["/field_force"] == sent["field_force"]
    ), counts
    assert max(counts["max_per_customer"].values()) == 1, counts

    out = Table(title=f"Dispatch to a loopback receiver (batch size {args.batch_size}, {args.concurrency} in flight)")
    for column in (
        "channel",
        "tasks",
        "task lists",
        "engine s",
        "engine tasks/s",
        "bare httpx s",
        "bare tasks/s",
        "engine / bare",
    ):
        out.add_column(column, justify="left" if column == "channel" else "right")
    results = []
    for channel, count, lists, engine_s, bare_s in rows:
        ratio = bare_s / engine_s
        out.add_row(
            channel,
            f"{count:,}",
            f"{lists:,}",
            f"{engine_s:.1f}",
            f"{count / engine_s:,.0f}",
            f"{bare_s:.1f}",
            f"{count / bare_s:,.0f}",
            f"{ratio:.2f}",
        )
        results.append(
            {"channel": channel, "tasks": count, "lists": lists, "engine_s": engine_s, "bare_s": bare_s, "ratio": ratio}
        )
    console.print(out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak RSS of the engine process: {peak:.0f} MiB; every task reached the receiver exactly once")
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    (REPO / "bench" / "out" / "dispatch_bench.json").write_text(
        json.dumps({"results": results, "peak_rss_mib": peak}, indent=2)
    )


if __name__ == "__main__":
    main()
