"""Benchmark: the record stage of the full-wave bench alone, engine and hand-written side alternately.

    .venv/bin/python bench/record_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Setup (not timed), as in ``bench/full_wave_bench.py`` and with its functions: ``--customers``
synthetic customers imported, the response model trained, the campaign prepared, selected and
planned once (``--email-limit`` as there). Then ``--repeat`` rounds, each timing, in turn:

- **engine**: ``open_wave`` and ``record`` of the plan under a new wave key (as the full-wave
  bench's record stage: ledger COPY, reasons file before the commit, arbitration losses, the
  snapshot started in the background); the snapshot thread is joined after the clock stops, so
  it never overlaps the next round;
- **hand-written**: the full-wave bench's hand-written record of the same rows (the allocated
  contacts: Python tuples, ``COPY`` into the plain ``hand_contacts`` table, commit).

Reported per side: wall seconds and the CPU seconds of the PostgreSQL backends the side used
(read from /proc through ``pg_stat_activity``, so the database must run on this machine).
Which side goes first alternates between rounds. Results go to ``bench/out/record_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import full_wave_bench as fwb  # noqa: E402 - bench/ is on sys.path when run as a script
import stages  # noqa: E402

ENGINE_APP, HAND_APP = "record_bench_engine", "record_bench_hand"


def backend_cpu(conn, app: str) -> float:
    """CPU seconds (user + system) so far of the PostgreSQL backends whose application_name is ``app``."""
    pids = [r[0] for r in conn.exec_driver_sql(f"SELECT pid FROM pg_stat_activity WHERE application_name = '{app}'")]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def with_app(url: str, app: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url).update_query_dict({"application_name": app}).render_as_string(hide_password=False)


def main() -> None:  # noqa: PLR0915 - one self-contained script
    import numpy as np
    import sqlalchemy as sa

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--postgres", metavar="URL", required=True)
    parser.add_argument("--email-limit", type=int, default=50_000)
    parser.add_argument("--calls-per-day", type=int, default=20_000)
    parser.add_argument("--visits-per-rep", type=int, default=10)
    parser.add_argument("--keep", type=float, default=0.6)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--label", default="", help="a name for this run in the output")
    args = parser.parse_args()

    from orchestrator.db import engine as database
    from orchestrator.ledger.snapshots import ensure_snapshot_in_background
    from orchestrator.wave import stages as wave

    root = Path(tempfile.mkdtemp(prefix="record-bench-"))
    data, work = root / "data", root / "work"
    data.mkdir()
    work.mkdir()
    schema, url = fwb.fresh_schema(args.postgres)
    try:
        started = time.perf_counter()
        fwb.make_data(data, args.customers)
        fwb.run_setup(data, work, url, args)
        settings = fwb.settings_for(work, with_app(url, ENGINE_APP))
        prepared = wave.prepare(settings, work / "rules" / f"{fwb.CAMPAIGN}.yaml", fwb.WAVE_DAY)
        plan = wave.plan(settings, [prepared], [wave.select_candidates(settings, prepared)])[0]
        print(f"setup {time.perf_counter() - started:.0f} s; load {fwb.load_text()}", flush=True)

        frame = plan.contacts
        keep = np.flatnonzero(frame.channel != None)  # noqa: E711 - numpy elementwise
        hand_engine = sa.create_engine(with_app(url, HAND_APP))
        watcher = sa.create_engine(args.postgres)
        rows_done = 0

        def engine_record(k: int) -> int:
            ref = wave.open_wave(settings, replace(prepared, wave_key=f"{fwb.WAVE_DAY}-r{k}"))
            wave.record(settings, ref, plan, prepared.as_of, snapshot_in_background=True)
            return ref.id

        def hand_record(k: int) -> int:
            from datetime import UTC, datetime

            nonlocal rows_done
            now = datetime.now(UTC)
            ids = frame.customer_id
            arm = frame.arm.astype(str).tolist()
            status = np.where(frame.treated, "pending", "control").tolist()
            channel, assignee = frame.channel.tolist(), frame.assignee.tolist()
            scores, values = frame.score.tolist(), frame.expected_value.tolist()
            rows = [
                (rows_done + n + 1, f"r{k}", ids[i], arm[i], channel[i], assignee[i], float(scores[i]),
                 float(values[i]), status[i], now, None)
                for n, i in enumerate(keep.tolist())
            ]  # fmt: skip
            raw = hand_engine.raw_connection()
            try:
                with raw.cursor().copy(
                    "COPY hand_contacts (id, wave, customer_id, arm, channel, assignee, score, value, status, "
                    "created_at, sent_at) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
                raw.commit()
            finally:
                raw.close()
            rows_done += len(rows)
            return len(rows)

        hand_engine.connect().close()  # as in the full-wave bench: its connection is open from the select
        runs: dict[str, list[tuple[float, float]]] = {"engine": [], "hand": []}
        for k in range(args.repeat):
            order = ("engine", "hand") if k % 2 == 0 else ("hand", "engine")
            for side in order:
                with watcher.connect() as conn:
                    app = ENGINE_APP if side == "engine" else HAND_APP
                    cpu = backend_cpu(conn, app)
                    wall = time.perf_counter()
                    result = engine_record(k) if side == "engine" else hand_record(k)
                    wall = time.perf_counter() - wall
                    cpu = backend_cpu(conn, app) - cpu
                runs[side].append((wall, cpu))
                if side == "engine":  # the snapshot thread, after the clock: never during the next round
                    ensure_snapshot_in_background(database.connect(settings), settings, result).wait()
            print(
                f"round {k + 1}: engine {runs['engine'][-1][0]:.3f} s (backend CPU {runs['engine'][-1][1]:.2f}), "
                f"hand {runs['hand'][-1][0]:.3f} s (backend CPU {runs['hand'][-1][1]:.2f}); load {fwb.load_text()}",
                flush=True,
            )
        database.dispose_all()
    finally:
        stages.drop_schema(args.postgres, schema)

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    summary = {
        "label": args.label,
        "customers": args.customers,
        "recorded_rows": int(len(frame)),
        "hand_rows": int(len(keep)),
        "not_treated": int(len(plan.not_treated.customer_id)),
        "runs": runs,
        "engine_median_s": median([w for w, _ in runs["engine"]]),
        "hand_median_s": median([w for w, _ in runs["hand"]]),
        "engine_backend_cpu_median_s": median([c for _, c in runs["engine"]]),
        "hand_backend_cpu_median_s": median([c for _, c in runs["hand"]]),
        "load_average_end": fwb.load_text(),
    }
    summary["ratio_of_medians"] = round(summary["engine_median_s"] / summary["hand_median_s"], 2)
    print(json.dumps(summary))
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "record_bench.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
