"""Benchmark: one full multi-channel wave, the engine's stages against the same work written by hand.

    .venv/bin/python bench/full_wave_bench.py --customers 100000
    .venv/bin/python bench/full_wave_bench.py --customers 1000000 --email-limit 100000
    .venv/bin/python bench/full_wave_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Setup (not timed; the campaign, policy and capacity both sides use are ``full_wave_world.py``):
``--customers`` synthetic customers (``orchestrator.demo.synthetic``) imported
into SQLite (default) or PostgreSQL (``--postgres URL``: a fresh schema, dropped afterwards); a
response model trained on 50,000 of them with a synthetic outcome and registered; a rules file
with the three channels of ``rules/retention-multichannel.yaml`` but a broad audience and
``scores: {model, min_score}`` (min_score: the ``--keep`` quantile of the training scores, so
several hundred thousand of a million are selected); a policy (consent per channel, a frequency
cap of 4 sent contacts in 30 days); a capacity file (call center ``--calls-per-day``, reps in
every territory, and, with ``--email-limit N``, e-mail at most N per day). Servers, each in a
process of its own on 127.0.0.1: the aiosmtpd sink (``orchestrator.demo.smtp_sink``, counting
messages per recipient) and the reference webhook receiver (``orchestrator.demo.webhook_receiver``,
uvicorn) for call_center and field_force.

Timed, each side in a process of its own (so each peak RSS is that side's own, imports included):

- **engine**: the stages of ``orchestrator.wave.stages`` as the Prefect flow calls them, in-process
  without Prefect: prepare, select (rules + policy as SQL, scoring, score cut), plan
  (arbitration, control split, allocation by min-cost flow), render sample, record (open wave,
  ledger bulk insert, snapshot), send (e-mail over SMTP on ``--connections`` connections, call
  and visit task lists as signed webhooks, ``--concurrency`` in flight).
- **hand-written** (``full_wave_hand.py``): the same work without the engine: one plain SQL query for audience, consent
  and frequency cap, ``predict_proba`` of the same model and a numpy cut, the control group by
  the same salted blake2b hash, a greedy allocation by value within the same capacities (control
  mirrored), a plain Jinja ``Environment`` rendering the same templates, ``executemany`` (SQLite)
  or ``COPY`` (PostgreSQL) into a plain table, ``smtplib`` on the same number of connections and
  ``httpx`` POSTs of the same task list JSON signed with ``standardwebhooks``.

E-mail: with ``--email-limit N`` the capacity file allows N e-mails that day, so allocation gives
e-mail to the N best customers for it (both sides) and exactly those are sent; without it every
allocated e-mail is sent. Asserted: every allocated e-mail and task of the engine reached the
sink or receiver exactly once (none pending or failed; skipped only for an invalid address).
Results go to ``bench/out/full_wave_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import stages  # noqa: E402 - bench/ is on sys.path when run as a script
from full_wave_hand import run_hand  # noqa: E402
from full_wave_world import (  # noqa: E402
    CAMPAIGN,
    CONTROL_SHARE,
    FEATURES,
    LINK_SECRET,
    MODEL,
    POLICY,
    REPS_PER_TERRITORY,
    RULES,
    SALT,
    SECRET,
    SENDER,
    TERRITORIES,
    TRAINING_ROWS,
    WAVE_DAY,
    capacity_yaml,
    reps,
)
from sinks import smtp_sink  # noqa: E402
from stages import Stages  # noqa: E402

# --- servers, each in its own process ----------------------------------------------------------


RECEIVER_PATHS = ("/call_center", "/field_force", "/bare/call_center", "/bare/field_force")


def _receiver(port: int) -> None:
    import uvicorn
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from orchestrator.demo.webhook_receiver import receiver_app

    app = receiver_app({path: SECRET for path in RECEIVER_PATHS})

    async def counts(_request):
        store = app.state.store
        per = {path: store.tasks_per_customer(path) for path in RECEIVER_PATHS}
        return JSONResponse(
            {
                "tasks": {p: sum(c.values()) for p, c in per.items()},
                "customers": {p: len(c) for p, c in per.items()},
                "max_per_customer": {p: max(c.values(), default=0) for p, c in per.items()},
                "lists": {p: len(store.lists(p)) for p in RECEIVER_PATHS},
                "redelivered": store.redelivered,
            }
        )

    app.router.routes.append(Route("/counts", counts))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- data and setup (not timed) ------------------------------------------------------------------


def make_data(data: Path, n: int) -> dict:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from orchestrator.demo.synthetic import customers

    table = customers(n)
    pacsv.write_csv(table, data / "customers.csv")
    pq.write_table(table, data / "customers.parquet")
    return {"customers": n}


def settings_for(work: Path, url: str, **kwargs):
    from pydantic import SecretStr

    from orchestrator.settings import (
        DatabaseSettings,
        ExecutionSettings,
        LinkSettings,
        PathSettings,
        Settings,
        SmtpSettings,
        WebhookEndpoint,
        WebhookSettings,
    )

    hooks = kwargs.get("hook_url")
    return Settings(
        paths=PathSettings(rules_dir=work / "rules", templates_dir=REPO / "templates", data_dir=work / "var"),
        database=DatabaseSettings(url=url, chunk_size=kwargs.get("chunk_size", 5_000)),
        execution=ExecutionSettings(chunk_size=kwargs.get("task_chunk", 50_000), workers=kwargs.get("workers", 1)),
        smtp=SmtpSettings(
            host="127.0.0.1",
            port=kwargs.get("smtp_port", 25),
            connections=kwargs.get("connections", 4),
            max_retries=1,
            retry_wait=0.1,
            timeout=120,
        ),
        links=LinkSettings(secret_key=SecretStr(LINK_SECRET)),
        webhooks=WebhookSettings(
            endpoints={
                name: WebhookEndpoint(url=f"{hooks}/{name}", secret=SECRET) for name in ("call_center", "field_force")
            }
            if hooks
            else {},
            batch_size=kwargs.get("batch_size", 500),
            concurrency=kwargs.get("concurrency", 4),
            timeout=120,
        ),
    )


def run_setup(data: Path, work: Path, url: str, args: argparse.Namespace) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    from orchestrator.customers.importer import import_customers
    from orchestrator.db import engine as database
    from orchestrator.scoring.registry import register
    from orchestrator.scoring.response import train_response_model

    settings = settings_for(work, url)
    engine = database.connect(settings)
    stages = Stages()
    stages("import customers", import_customers, engine, data / "customers.csv", table=settings.database.customer_table)

    def train() -> float:
        frame = pq.read_table(data / "customers.parquet", columns=["customer_id", *FEATURES]).to_pandas()
        rng = np.random.default_rng(5)
        sample = frame.iloc[np.sort(rng.choice(len(frame), min(TRAINING_ROWS, len(frame)), replace=False))].reset_index(
            drop=True
        )
        logit = (
            -1.2
            + 0.9 * np.log1p(sample["revenue_12m"] / 500)
            - sample["recency_days"] / 150
            + rng.normal(0, 0.5, len(sample))
        )
        sample["responded"] = np.where(rng.random(len(sample)) < 1 / (1 + np.exp(-logit)), "yes", "no")
        result = train_response_model(sample.drop(columns=["customer_id"]), "responded", features=FEATURES)
        register(engine, settings, MODEL, result.model, result.metrics, result.fingerprint, "responded", result.rows)
        return round(float(np.quantile(result.model.score_frame(sample), 1 - args.keep)), 4)

    min_score = stages("train + register model", train)

    def plain_table() -> None:  # the hand-written side's own ledger, empty before the wave
        ts = "TEXT" if engine.dialect.name == "sqlite" else "TIMESTAMPTZ"
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE hand_contacts (id INTEGER PRIMARY KEY, wave TEXT NOT NULL, customer_id TEXT NOT NULL, "
                "arm TEXT NOT NULL, channel TEXT, assignee TEXT, score DOUBLE PRECISION, value DOUBLE PRECISION, "
                f"status TEXT NOT NULL, created_at {ts} NOT NULL, sent_at {ts}, UNIQUE (wave, customer_id))"
            )
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE")

    stages("plain table", plain_table)
    rules = work / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "policy.yaml").write_text(POLICY)
    (rules / "capacity.yaml").write_text(capacity_yaml(args.calls_per_day, args.visits_per_rep, args.email_limit))
    (rules / "reps.csv").write_text(
        "rep_id,territory,name,visits_per_day\n" + "".join(f"{r},{t},{r},\n" for r, t in reps())
    )
    (rules / f"{CAMPAIGN}.yaml").write_text(
        RULES.format(campaign=CAMPAIGN, share=CONTROL_SHARE, salt=SALT, sender=SENDER, model=MODEL, min_score=min_score)
    )
    return {"database": engine.dialect.name, "min_score": min_score, **vars(stages)}


# --- the engine ------------------------------------------------------------------------------


def run_engine(work: Path, url: str, args: argparse.Namespace) -> dict:
    from orchestrator.db import engine as database
    from orchestrator.execution.chunks import in_process
    from orchestrator.ledger import contacts as ledger
    from orchestrator.wave import stages as wave

    settings = settings_for(
        work,
        url,
        smtp_port=args.smtp_port,
        hook_url=args.hook_url,
        chunk_size=args.chunk_size,
        connections=args.connections,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        task_chunk=args.task_chunk,
        workers=args.workers,
    )
    stages = Stages()
    mapper, cluster = in_process, None
    if args.runner == "dask":  # the chunk functions on a local Dask cluster (started before the clock runs)
        cluster, mapper = stages("start dask cluster", dask_mapper, args.workers)
    try:
        prepared = stages("prepare", wave.prepare, settings, work / "rules" / f"{CAMPAIGN}.yaml", WAVE_DAY)
        candidates = stages("select", wave.select_candidates, settings, prepared, mapper=mapper)
        plan = stages("plan", wave.plan, settings, [prepared], [candidates])[0]
        if args.until == "plan":  # bench/plan_bench.py: the stages up to plan, in the same process
            return {"selected": len(candidates.ids), **vars(stages)}
        check = stages("render sample", wave.render_selection, settings, prepared, plan)

        def open_and_record():
            ref = wave.open_wave(settings, prepared)
            return ref, wave.record(settings, ref, plan, prepared.as_of, snapshot_in_background=True)

        ref, _counts = stages("record", open_and_record)
        sent = stages("send", wave.send_pending, settings, prepared, ref, mapper=mapper)
        worker_peak = None
        if cluster is not None:
            worker_peak = max(cluster.run(_peak_mib).values())
    finally:
        if cluster is not None:
            cluster.close()
            cluster.cluster.close()
    engine = database.connect(settings)
    by_channel = ledger.channel_counts(engine, ref.id)
    arms = ledger.arm_counts(engine, ref.id)
    result = {
        "selected": len(candidates.ids),
        "treated_allocated": {k: int(v) for k, v in plan.channel_counts.items()},
        "waiting": int(plan.waiting),
        "arms": arms,
        "ledger": by_channel,
        "rendered_sample": check.rendered,
        "render_errors": check.errors,
        "sent": sent,
        "runner": args.runner,
        "workers": args.workers,
        "worker_peak_mib": worker_peak,
        **vars(stages),
    }
    result["seconds"].pop("start dask cluster", None)
    result["peak"].pop("start dask cluster", None)
    return result


def dask_mapper(workers: int):
    """A Dask client on a local cluster of ``workers`` processes, and a ``Mapper`` submitting to it."""
    from distributed import Client, LocalCluster

    client = Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None))

    def mapper(fn, calls):
        futures = [client.submit(fn, *call, pure=False) for call in calls]
        for future in futures:
            yield future.result()

    return client, mapper


def _peak_mib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


# --- the same wave by hand -------------------------------------------------------------------


# --- the parent --------------------------------------------------------------------------------


def child(args_list: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args_list], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-20000:])
        raise SystemExit(f"{args_list[:2]} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--postgres", metavar="URL", help="run on PostgreSQL (a fresh schema, dropped afterwards)")
    parser.add_argument(
        "--email-limit", type=int, default=None, help="e-mails per day in the capacity file (default: unlimited)"
    )
    parser.add_argument("--calls-per-day", type=int, default=20_000)
    parser.add_argument(
        "--visits-per-rep",
        type=int,
        default=10,
        help=f"per day; {REPS_PER_TERRITORY} reps in each of {len(TERRITORIES)} territories",
    )
    parser.add_argument("--keep", type=float, default=0.6, help="share of the training sample at or above min_score")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections (both sides)")
    parser.add_argument("--concurrency", type=int, default=4, help="task lists in flight (both sides)")
    parser.add_argument("--batch-size", type=int, default=500, help="tasks per task list")
    parser.add_argument(
        "--chunk-size", type=int, default=50_000, help="the engine's page size within a chunk (database.chunk_size)"
    )
    parser.add_argument(
        "--task-chunk", type=int, default=50_000, help="customers per chunk task (execution.chunk_size)"
    )
    parser.add_argument(
        "--runner", choices=["in-process", "dask"], default="in-process", help="where the engine's chunks run"
    )
    parser.add_argument("--workers", type=int, default=2, help="local Dask worker processes (--runner dask)")
    parser.add_argument("--python-sink", action="store_true", help="the Python SMTP sink even if smtp-sink is there")
    for hidden in ("--part", "--data", "--work", "--url", "--hook-url"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--smtp-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--min-score", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--until", choices=["plan"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.part == "data":
        print(json.dumps(make_data(Path(args.data), args.customers)))
        return
    if args.part in ("setup", "engine", "hand"):
        run = {
            "setup": lambda: run_setup(Path(args.data), Path(args.work), args.url, args),
            "engine": lambda: run_engine(Path(args.work), args.url, args),
            "hand": lambda: run_hand(Path(args.work), args.url, args),
        }[args.part]
        print(json.dumps(run(), default=str))
        return

    from orchestrator.demo.smtp_sink import free_port

    root = Path(tempfile.mkdtemp(prefix="full-wave-bench-"))
    data, work = root / "data", root / "work"
    data.mkdir()
    work.mkdir()
    common = [
        "--customers",
        str(args.customers),
        "--calls-per-day",
        str(args.calls_per_day),
        "--visits-per-rep",
        str(args.visits_per_rep),
        "--keep",
        str(args.keep),
        "--connections",
        str(args.connections),
        "--concurrency",
        str(args.concurrency),
        "--batch-size",
        str(args.batch_size),
        "--chunk-size",
        str(args.chunk_size),
        "--task-chunk",
        str(args.task_chunk),
        "--runner",
        args.runner,
        "--workers",
        str(args.workers),
    ]
    if args.email_limit is not None:
        common += ["--email-limit", str(args.email_limit)]
    spawn = multiprocessing.get_context("spawn")
    hook_port = free_port()
    receiver = spawn.Process(target=_receiver, args=(hook_port,), daemon=True)
    receiver.start()
    sink_context = smtp_sink(dump=True, python=args.python_sink)
    sink = sink_context.__enter__()
    smtp_port = sink.port
    print(f"sink: {sink.name} on 127.0.0.1:{smtp_port}; load {load_text()} on {os.cpu_count()} cores", flush=True)
    schema = None
    url = f"sqlite:///{work / 'campaign.db'}"
    try:
        if args.postgres:
            schema, url = fresh_schema(args.postgres)
        started = time.perf_counter()
        child(["--part", "data", "--data", str(data), *common])
        print(f"data: {args.customers:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
        setup = child(["--part", "setup", "--data", str(data), "--work", str(work), "--url", url, *common])
        print(f"setup ({setup['database']}): {setup['seconds']}, min_score {setup['min_score']}", flush=True)
        hook_url = f"http://127.0.0.1:{hook_port}"
        wait_for(hook_url + "/counts")
        side = [*common, "--work", str(work), "--url", url, "--smtp-port", str(smtp_port), "--hook-url", hook_url]
        results = {}
        smtp = {}
        seen = Counter(sink.recipients())
        for name in ("engine", "hand"):
            results[name] = child(["--part", name, *side, "--min-score", str(setup["min_score"])])
            print(f"{name}: {results[name]['seconds']}; load average {load_text()}", flush=True)
            now = Counter(sink.recipients())
            phase = now - seen
            seen = now
            smtp[name] = {
                "messages": sum(phase.values()),
                "recipients": len(phase),
                "max_per_recipient": max(phase.values(), default=0),
            }
        hooks = fetch_json(hook_url + "/counts")
    finally:
        sink_context.__exit__(None, None, None)
        receiver.terminate()
        if schema is not None:
            drop_schema(args.postgres, schema)

    checks = verify(results, smtp, hooks)
    summary = {
        "command": " ".join([Path(sys.executable).name, "bench/full_wave_bench.py", *sys.argv[1:]]),
        "customers": args.customers,
        "database": setup["database"],
        "email_limit": args.email_limit,
        "calls_per_day": args.calls_per_day,
        "visits_per_day": args.visits_per_rep * REPS_PER_TERRITORY * len(TERRITORIES),
        "smtp_connections": args.connections,
        "webhook_concurrency": args.concurrency,
        "runner": args.runner if args.runner == "in-process" else f"dask, {args.workers} local worker processes",
        "task_chunk": args.task_chunk,
        "min_score": setup["min_score"],
        "setup": setup,
        "engine": results["engine"],
        "hand": results["hand"],
        "smtp_sink": smtp,
        "sink": sink.name,
        "load_average_end": load_text(),
        "receiver": hooks,
        "checks": checks,
    }
    report(summary)
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "full_wave_bench.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"wrote {out_dir / 'full_wave_bench.json'}; work files in {root}")


def verify(results: dict, smtp: dict, hooks: dict) -> dict:
    """Every allocated e-mail and task of the engine reached the sink or receiver exactly once."""
    engine, hand = results["engine"], results["hand"]
    ledger = engine["ledger"]
    for channel, statuses in ledger.items():
        assert statuses.get("pending", 0) == 0 and statuses.get("failed", 0) == 0, (channel, statuses)
        allocated = engine["treated_allocated"].get(channel, 0)
        assert statuses.get("sent", 0) + statuses.get("skipped", 0) == allocated, (channel, statuses, allocated)
    mails = smtp.get("engine", {"messages": 0, "recipients": 0, "max_per_recipient": 0})
    email_sent = ledger.get("email", {}).get("sent", 0)
    assert mails["messages"] == email_sent == mails["recipients"] and mails["max_per_recipient"] <= 1, (
        mails,
        email_sent,
    )
    for channel in ("call_center", "field_force"):
        sent = ledger.get(channel, {}).get("sent", 0)
        path = f"/{channel}"
        assert hooks["tasks"][path] == sent == hooks["customers"][path], (channel, sent, hooks)
        assert hooks["max_per_customer"][path] <= 1, hooks
    hand_mails = smtp.get("hand", {"messages": 0})
    assert hand_mails["messages"] == hand["sent"]["email"], (hand_mails, hand["sent"])
    for channel in ("call_center", "field_force"):
        assert hooks["tasks"][f"/bare/{channel}"] == hand["sent"][channel], (channel, hooks, hand["sent"])
    return {
        "engine_exactly_once": True,
        "engine_email_sent": email_sent,
        "engine_email_skipped": ledger.get("email", {}).get("skipped", 0),
        "engine_calls_sent": ledger.get("call_center", {}).get("sent", 0),
        "engine_visits_sent": ledger.get("field_force", {}).get("sent", 0),
    }


def report(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    engine, hand = summary["engine"], summary["hand"]
    limit = summary["email_limit"]
    email_note = f"e-mail capacity {limit:,}/day" if limit is not None else "e-mail unlimited"
    table = Table(
        title=(
            f"Full wave, {summary['customers']:,} customers ({summary['database']}): engine vs hand-written; "
            f"{email_note}, calls {summary['calls_per_day']:,}/day, visits {summary['visits_per_day']:,}/day"
        )
    )
    for column in ("stage", "engine s", "hand-written s", "engine / hand"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in engine["seconds"]:
        e, h = engine["seconds"][stage], hand["seconds"].get(stage)
        table.add_row(stage, f"{e:.2f}", "-" if h is None else f"{h:.2f}", "-" if not h else f"{e / h:.2f}x")
    te, th = sum(engine["seconds"].values()), sum(hand["seconds"].values())
    table.add_row("total", f"{te:.2f}", f"{th:.2f}", f"{te / th:.2f}x", style="bold")
    table.add_row("peak RSS (MiB)", f"{max(engine['peak'].values()):,}", f"{max(hand['peak'].values()):,}", "")
    if engine.get("worker_peak_mib"):
        table.add_row("peak RSS of a Dask worker (MiB)", f"{engine['worker_peak_mib']:,}", "", "")
    table.add_row("selected", f"{engine['selected']:,}", f"{hand['selected']:,}", "")
    for channel in ("field_force", "call_center", "email"):
        table.add_row(
            f"treated allocated {channel}",
            f"{engine['treated_allocated'].get(channel, 0):,}",
            f"{hand['treated_allocated'].get(channel, 0):,}",
            "",
        )
    checks = summary["checks"]
    table.add_row("e-mails sent (sink count)", f"{checks['engine_email_sent']:,}", f"{hand['sent']['email']:,}", "")
    table.add_row(
        "calls sent (receiver count)", f"{checks['engine_calls_sent']:,}", f"{hand['sent']['call_center']:,}", ""
    )
    table.add_row(
        "visits sent (receiver count)", f"{checks['engine_visits_sent']:,}", f"{hand['sent']['field_force']:,}", ""
    )
    console.print(table)
    console.print(
        f"engine chunks: {summary['task_chunk']:,} customers, {summary['runner']}; "
        f"min_score {summary['min_score']}; SMTP connections {summary['smtp_connections']}, task lists in flight "
        f"{summary['webhook_concurrency']}; engine: every allocated e-mail and task delivered exactly once "
        f"({checks['engine_email_skipped']:,} e-mails skipped for an invalid address)"
    )
    console.print(f"SMTP sink: {summary['sink']}; load average at the end {summary['load_average_end']}")


def load_text() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def wait_for(url: str) -> None:
    import urllib.request

    for _ in range(400):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the webhook receiver did not answer at {url}")


def fetch_json(url: str) -> dict:
    import urllib.request

    return json.loads(urllib.request.urlopen(url, timeout=120).read())


def fresh_schema(url: str) -> tuple[str, str]:
    return stages.fresh_schema(url, "full_wave_bench")


drop_schema = stages.drop_schema


if __name__ == "__main__":
    main()
