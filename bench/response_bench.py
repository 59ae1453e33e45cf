"""Benchmark: outcome events through the running response API (``POST /v1/outcomes``).

    .venv/bin/python bench/response_bench.py                               # 1,000,000 events, SQLite
    .venv/bin/python bench/response_bench.py --events 100000               # a quick run
    .venv/bin/python bench/response_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Setup (timed, not compared): one wave whose ledger holds ``--events`` call-center contacts,
and a signed outcome reference per contact (as the task lists carry them).

The API runs as ``campaign api`` would (``python -m orchestrator.cli.api``, uvicorn in its own
process on 127.0.0.1). The client builds each request of ``--batch`` events (one outcome per
contact), signs it per Standard Webhooks and POSTs it, ``--concurrency`` requests in flight.
The server verifies the signature, validates the body, verifies every reference, looks the
contacts up in one query and stores the events in one ``INSERT ... ON CONFLICT DO NOTHING``.

Printed: events per second end to end (first request sent to last answer read); every event
must be accepted once, and a second pass of the first batch must come back as duplicates.
On PostgreSQL the benchmark works in a fresh schema that it drops at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LINK_KEY = "bench-link-secret-0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to post (one per contact)")
    parser.add_argument("--batch", type=int, default=5_000, help="events per signed request")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL URL (default: a SQLite file in a temp folder)")
    args = parser.parse_args()

    import httpx
    import numpy as np
    import sqlalchemy as sa
    from standardwebhooks import Webhook

    from orchestrator.db import engine as database
    from orchestrator.db.tables import Arm
    from orchestrator.delivery.tasks import outcome_signer, task_id
    from orchestrator.ledger import contacts as ledger
    from orchestrator.settings import DatabaseSettings, LinkSettings, PathSettings, Settings
    from orchestrator.targeting.frame import ContactFrame

    tmp = Path(tempfile.mkdtemp(prefix="response-bench-"))
    schema = None
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with sa.create_engine(args.postgres).begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = (
            sa.engine.make_url(args.postgres)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(False)
        )
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    settings = Settings(
        paths=PathSettings(rules_dir=REPO / "rules", data_dir=tmp / "var"),
        database=DatabaseSettings(url=url),
        links=LinkSettings(secret_key=LINK_KEY),
    )
    server = None
    try:
        t0 = time.perf_counter()
        engine = database.connect(settings)
        campaign = ledger.ensure_campaign(engine, "response-bench", None)
        wave = ledger.open_wave(engine, campaign, "bench", "0" * 64)
        n = args.events
        ledger.record_contacts(
            engine,
            wave.id,
            ContactFrame.of(
                [f"cust{i}" for i in range(n)], np.full(n, Arm.TREATMENT.value, dtype=object), channel="call_center"
            ),
        )
        with engine.connect() as conn:
            ids = (
                conn.execute(
                    sa.select(ledger.contacts.c.id)
                    .where(ledger.contacts.c.wave_id == wave.id)
                    .order_by(ledger.contacts.c.id)
                )
                .scalars()
                .all()
            )
        signer = outcome_signer(settings)
        refs = [signer.sign(task_id(wave.id, cid)).decode() for cid in ids]
        print(
            f"setup: {n:,} contacts and references in {time.perf_counter() - t0:.1f} s "
            f"({'PostgreSQL' if schema else 'SQLite'})"
        )

        port = _free_port()
        env = os.environ | {
            "CAMPAIGN_DATABASE_URL": url,
            "CAMPAIGN_LINKS_SECRET_KEY": LINK_KEY,
            "CAMPAIGN_PATHS_RULES_DIR": str(REPO / "rules"),
            "CAMPAIGN_PATHS_DATA_DIR": str(tmp / "var"),
            "CAMPAIGN_API_SOURCES__BENCH__SECRET": SECRET,
            "CAMPAIGN_API_SOURCES__BENCH__CHANNELS": '["call_center"]',
            "CAMPAIGN_API_MAX_BATCH": str(max(args.batch, 1)),
            "CAMPAIGN_API_SOURCE_RATE": "100000",  # the benchmark measures throughput, not the rate limit
            "PYTHONPATH": str(REPO),
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli.api", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, server)

        webhook = Webhook(SECRET)
        batches = [range(i, min(i + args.batch, n)) for i in range(0, n, args.batch)]

        def body_of(rows: range) -> str:
            return json.dumps(
                {
                    "events": [
                        {
                            "event_id": f"bench-{i}",
                            "type": "reached" if i % 3 else "sale",
                            "occurred_at": "2026-03-02T10:15:00Z",
                            "outcome_ref": refs[i],
                            "value": 10.0 if i % 3 == 0 else None,
                        }
                        for i in rows
                    ]
                }
            )

        def send(client: httpx.Client, rows: range) -> dict:
            body = body_of(rows)
            now = datetime.now(UTC)
            msg_id = f"msg_{rows.start}"
            headers = {
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": webhook.sign(msg_id, now, body),
                "content-type": "application/json",
            }
            answer = client.post("/v1/outcomes", content=body, headers=headers)
            answer.raise_for_status()
            result = answer.json()
            return {k: result[k] for k in ("accepted", "duplicates", "rejected")}

        limits = httpx.Limits(max_connections=args.concurrency)
        with httpx.Client(base_url=base, timeout=300, limits=limits) as client:
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(lambda rows: send(client, rows), batches))
            elapsed = time.perf_counter() - start
            again = send(client, batches[0])
        accepted = sum(r["accepted"] for r in results)
        assert accepted == n and not any(r["rejected"] or r["duplicates"] for r in results), results[:3]
        assert again == {"accepted": 0, "duplicates": len(batches[0]), "rejected": 0}, again
        with engine.connect() as conn:
            rows_stored = conn.execute(sa.text("SELECT count(*) FROM response_events")).scalar_one()
        assert rows_stored == n, rows_stored
        print(
            f"{n:,} events in {len(batches)} signed requests of {args.batch:,} ({args.concurrency} in flight): "
            f"{elapsed:.1f} s, {n / elapsed:,.0f} events/s; all stored once, a repeated batch came back as duplicates"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        database.dispose_all()
        if schema:
            with sa.create_engine(args.postgres).begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base: str, server: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API process exited with {server.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the API on {base} did not answer /healthz within 60 s")


if __name__ == "__main__":
    main()
