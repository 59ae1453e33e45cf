"""Benchmark: one wave over a generated customer base, seconds per stage and peak memory.

    .venv/bin/python bench/wave_bench.py                       # 100,000 (with SMTP send) and 1,000,000
    .venv/bin/python bench/wave_bench.py --sizes 100000 --send 100000
    .venv/bin/python bench/wave_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Each size runs in its own process (the customer file is generated beforehand by another), so
the peak resident memory printed is the engine's own for that size.
Stages are the plain functions the Prefect flow calls (``orchestrator.wave.stages``), timed one by
one: import (bulk upsert into the customer table), select (audience as SQL), split (control
hash), render (every treated message, in chunks), record (ledger bulk insert) and, for sizes
up to ``--send``, send (SMTP to a local aiosmtpd sink that counts messages).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_size(size: int, send: bool, database_url: str | None, csv_path: Path) -> dict:
    import sqlalchemy as sa

    from orchestrator.customers.importer import import_customers
    from orchestrator.db import engine as database
    from orchestrator.demo.smtp_sink import SmtpSink
    from orchestrator.settings import DatabaseSettings, PathSettings, Settings, SmtpSettings
    from orchestrator.wave import stages as wave

    work = csv_path.parent
    stages: dict[str, float] = {}
    memory: dict[str, float] = {}

    def timed(name, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        stages[name] = time.perf_counter() - start
        memory[name] = peak_mib()
        return result

    url = database_url
    if url and url.startswith("postgresql"):  # a fresh schema per run
        schema = f"bench_{size}_{int(time.time())}"
        admin = sa.create_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)

    with SmtpSink(None) as sink:
        settings = Settings(
            paths=PathSettings(rules_dir=REPO / "rules", templates_dir=REPO / "templates", data_dir=work / "var"),
            database=DatabaseSettings(url=url),
            smtp=SmtpSettings(host="127.0.0.1", port=sink.port, max_retries=1, retry_wait=0.1),
        )
        engine = database.connect(settings)
        timed("import", import_customers, engine, csv_path, table=settings.database.customer_table)
        # A weekday date: the shipped contact policy blocks Sundays and holidays.
        prepared = timed("validate", wave.prepare, settings, REPO / "rules" / "winback-email.yaml", "2026-11-24")
        candidates = timed("select", wave.select_candidates, settings, prepared)
        selection = timed("split", wave.split_wave, prepared, candidates)
        check = timed("render", wave.render_selection, settings, prepared, selection, sample=None)
        ref = wave.open_wave(settings, prepared)
        timed("record", wave.record, settings, ref, selection)
        sent = 0
        if send:
            sent = timed("send", wave.send_pending, settings, prepared, ref)
    return {
        "customers": size,
        "database": engine.dialect.name,
        "selected": len(selection.contacts),
        "control": selection.count("control") + selection.count("global_control"),
        "rendered": check.rendered,
        "render_errors": check.errors,
        "sent": sent,
        "smtp_received": sink.received,
        "seconds": {k: round(v, 2) for k, v in stages.items()},
        "peak_rss_mib_after": {k: round(v) for k, v in memory.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--send", type=int, default=100_000, help="send over SMTP for sizes up to this")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temp folder")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: run one size
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # child process: write the file
    args = parser.parse_args()

    if args.generate:
        from orchestrator.demo.synthetic import write_csv

        write_csv(args.generate, args.one)
        return

    if args.one and not args.generate:
        print(json.dumps(run_size(args.one, args.one <= args.send, args.database_url, args.csv)))
        return

    from rich.console import Console
    from rich.table import Table

    results = []
    for size in args.sizes:
        # The customer file is written by a process of its own: a child's peak RSS starts at its
        # parent's on Linux, so the parent stays small and the measured child's peak is the engine's.
        csv_path = Path(tempfile.mkdtemp(prefix=f"wave-bench-{size}-")) / "customers.csv"
        subprocess.run([sys.executable, __file__, "--one", str(size), "--generate", str(csv_path)], check=True)
        cmd = [sys.executable, __file__, "--one", str(size), "--send", str(args.send), "--csv", str(csv_path)]
        if args.database_url:
            cmd += ["--database-url", args.database_url]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))

    table = Table(title="One wave: seconds per stage (peak RSS MiB so far)")
    table.add_column("stage")
    for r in results:
        table.add_column(f"{r['customers']:,} customers ({r['database']})", justify="right")
    stage_names = list(dict.fromkeys(k for r in results for k in r["seconds"]))
    for name in stage_names:
        table.add_row(
            name,
            *(
                f"{r['seconds'][name]:.2f} s ({r['peak_rss_mib_after'][name]:,} MiB)" if name in r["seconds"] else "-"
                for r in results
            ),
        )
    table.add_row("total", *(f"{sum(r['seconds'].values()):.2f} s" for r in results))
    for key in ("selected", "control", "rendered", "render_errors", "sent", "smtp_received"):
        table.add_row(key, *(f"{r[key]:,}" for r in results))
    Console().print(table)
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "wave_bench.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
