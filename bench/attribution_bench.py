"""Benchmark: attribute 1,000,000 conversions to a ledger of 1,000,000 contacts and build the success report.

    .venv/bin/python bench/attribution_bench.py
    .venv/bin/python bench/attribution_bench.py --contacts 100000 --conversions 100000   # a quick run
    .venv/bin/python bench/attribution_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Setup (timed, not compared): one wave of ``--contacts`` contacts (90% treated, 10% control)
written with the ledger's bulk insert; a CSV of ``--conversions`` conversions of random
customers over 60 days around the wave, a few percent more among the treated (a real effect).

Timed: ``import conversions`` of the CSV (parse, check, bulk insert skipping duplicates),
then the report: the contact frame (``report_data.contact_frame``: contacts, outcome events
and the attribution join in the database) and ``success.build_report`` (statistics per wave,
channel, variant and score decile). Prints seconds per stage and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WAVE_DAY = date(2026, 11, 24)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL (a fresh schema is used and dropped)")
    args = parser.parse_args()

    import numpy as np
    import sqlalchemy as sa
    from rich.console import Console
    from rich.table import Table

    from orchestrator.db.engine import connect
    from orchestrator.ledger import contacts as ledger
    from orchestrator.responses.conversions import import_conversions
    from orchestrator.rules.outcomes import load_outcomes
    from orchestrator.settings import DatabaseSettings, PathSettings, Settings
    from orchestrator.success.data import Measure, contact_frame
    from orchestrator.success.report import build_report
    from orchestrator.targeting.frame import ContactFrame

    console = Console(width=120)
    work = Path(tempfile.mkdtemp(prefix="attribution-bench-"))
    url = f"sqlite:///{work / 'bench.db'}"
    schema = None
    if args.postgres:
        schema = f"bench_{int(time.time())}"
        admin = sa.create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = args.postgres + ("&" if "?" in args.postgres else "?") + f"options=-csearch_path%3D{schema}"
    settings = Settings(paths=PathSettings(data_dir=work / "var"), database=DatabaseSettings(url=url))
    rng = np.random.default_rng(5)

    t0 = time.perf_counter()
    engine = connect(settings)
    campaign_id = ledger.ensure_campaign(engine, "bench", None)
    wave = ledger.open_wave(engine, campaign_id, WAVE_DAY.isoformat(), "0" * 64)
    n = args.contacts
    ids = np.char.add("C", np.char.zfill(np.arange(n).astype(str), 8))
    treated = rng.random(n) < 0.9
    arms = np.where(treated, "treatment", "control").astype(object)
    channels = rng.choice(np.array(["email", "call_center"], dtype=object), n, p=[0.8, 0.2])
    scores = rng.beta(2, 8, n)
    frame = ContactFrame.of(ids, arms, channel=channels, score=scores)
    ledger.record_contacts(engine, wave.id, frame, planned_for=WAVE_DAY)
    with engine.begin() as conn:
        conn.execute(ledger.contacts.update().where(ledger.contacts.c.arm == "treatment").values(status="sent"))
    # conversions: random customers (some twice), more likely among the treated and the high scores
    weight = scores * np.where(treated, 1.15, 1.0)
    buyers = rng.choice(n, args.conversions, p=weight / weight.sum())
    start = datetime.combine(WAVE_DAY, datetime.min.time(), tzinfo=UTC) - timedelta(days=15)
    offsets = rng.integers(0, 60 * 86400, args.conversions)
    amounts = np.round(rng.gamma(2.0, 40.0, args.conversions), 2)
    csv_path = work / "conversions.csv"
    with open(csv_path, "w") as handle:
        handle.write("customer_id,occurred_at,amount,product\n")
        for b, o, a in zip(buyers.tolist(), offsets.tolist(), amounts.tolist(), strict=True):
            handle.write(f"{ids[b]},{(start + timedelta(seconds=o)).isoformat()},{a},deposit\n")
    setup = time.perf_counter() - t0

    timings = []
    t = time.perf_counter()
    imported = import_conversions(engine, csv_path)
    timings.append(("import conversions (parse, check, bulk insert)", time.perf_counter() - t))
    t = time.perf_counter()
    frame = contact_frame(
        engine,
        "bench",
        load_outcomes(work),
        Measure(goal="conversion", window_days=30),
        costs={"email": 0.05, "call_center": 4.0},
    )
    timings.append(("contact frame (ledger, outcomes, attribution join)", time.perf_counter() - t))
    t = time.perf_counter()
    report = build_report(frame, campaign="bench", goal="conversion", window_days=30)
    timings.append(("success report (statistics per segment)", time.perf_counter() - t))

    table = Table(title=f"{n:,} contacts, {args.conversions:,} conversions ({'PostgreSQL' if schema else 'SQLite'})")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for label, seconds in timings:
        table.add_row(label, f"{seconds:.1f}")
    table.add_row("total", f"{sum(s for _l, s in timings):.1f}")
    console.print(f"setup (not timed): {setup:.1f} s; imported {imported.imported:,} conversions")
    console.print(table)
    overall = report.overall()
    lift = overall.absolute_lift
    console.print(
        f"attributed: {int(frame['converted'].sum()):,} converted contacts; overall lift "
        f"{lift.value:+.4f} (95% CI {lift.low:+.4f} to {lift.high:+.4f}), p = {overall.p_value:.2g}"
    )
    console.print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if schema:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
