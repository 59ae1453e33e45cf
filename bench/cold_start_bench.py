"""Benchmark: how soon ``campaign run`` shows its first output, and how long Prefect takes to start.

    .venv/bin/python bench/cold_start_bench.py              # 3 runs of campaign run --dry-run
    .venv/bin/python bench/cold_start_bench.py --runs 5

Setup (not timed): 2,000 synthetic customers imported with ``campaign import customers`` into a
SQLite database in a temporary data folder, and one run of the command to create the temporary
``PREFECT_HOME``'s database (Prefect's first start migrates it). Then ``campaign run
rules/winback-email.yaml --dry-run --wave 2026-11-24`` runs ``--runs`` times as a new process each (a cold start:
imports, Prefect's temporary API, the flow), and the bench prints per run: the seconds until its
first line of output, the engine's load time and Prefect's start-up as the command reports them
(``engine loaded in A s, Prefect started in B s``), and the whole run. Prefect's temporary API
gets ``--prefect-timeout`` seconds to start (a busy machine needs more than its default).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAMPAIGN = str(Path(sys.executable).with_name("campaign"))
WAVE = "2026-11-24"  # a Tuesday: no blocked day of the example policy
_STARTED = re.compile(r"engine loaded in ([\d.]+) s, Prefect started in ([\d.]+) s")


def timed_run(env: dict[str, str]) -> dict[str, float | None]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [CAMPAIGN, "run", str(REPO / "rules" / "winback-email.yaml"), "--dry-run", "--wave", WAVE],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None and process.stdout is not None
    first = process.stderr.readline()
    first_at = time.perf_counter() - started
    rest = process.stderr.read()
    process.stdout.read()
    process.wait()
    total = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"campaign run failed ({process.returncode}):\n{first}{rest[-3000:]}")
    found = _STARTED.search(first + rest)
    return {
        "first output s": first_at,
        "engine load s": float(found.group(1)) if found else None,
        "Prefect start-up s": float(found.group(2)) if found else None,
        "whole run s": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefect-timeout", type=int, default=300, help="seconds Prefect's temporary API may take")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    sys.path.insert(0, str(REPO))
    import pyarrow.csv as pacsv

    from orchestrator.demo.synthetic import customers

    work = Path(tempfile.mkdtemp(prefix="cold-start-bench-"))
    env = {
        **os.environ,
        "CAMPAIGN_PATHS_DATA_DIR": str(work / "var"),
        "CAMPAIGN_PATHS_RULES_DIR": str(REPO / "rules"),
        "CAMPAIGN_PATHS_TEMPLATES_DIR": str(REPO / "templates"),
        "CAMPAIGN_DATABASE_URL": f"sqlite:///{work / 'campaign.db'}",
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(args.prefect_timeout),
    }
    pacsv.write_csv(customers(2_000), work / "customers.csv")
    importing = [CAMPAIGN, "import", "customers", str(work / "customers.csv")]
    subprocess.run(importing, env=env, check=True, capture_output=True)
    console = Console()
    with console.status("first run: Prefect creates its database"):
        timed_run(env)
    load = os.getloadavg()
    table = Table(title=f"campaign run --dry-run, cold (load average {load[0]:.2f} on {os.cpu_count()} cores)")
    table.add_column("run", justify="right")
    rows = [timed_run(env) for _ in range(args.runs)]
    for column in rows[0]:
        table.add_column(column, justify="right")
    for k, row in enumerate(rows, start=1):
        table.add_row(str(k), *("-" if v is None else f"{v:.2f}" for v in row.values()))
    console.print(table)
    worst = max(r["first output s"] or 0.0 for r in rows)
    print(f"first output within {worst:.2f} s in every run (work files in {work})")


if __name__ == "__main__":
    main()
