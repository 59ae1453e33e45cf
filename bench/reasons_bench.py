"""Benchmark: writing and reading the not-treated reason codes of a large wave.

    .venv/bin/python bench/reasons_bench.py                 # 900,000 reasons (a 10% cut of 1,000,000)
    .venv/bin/python bench/reasons_bench.py --n 90000 --runs 5

Writes ``--n`` reason codes (``below_score_cut``, no detail) with ``orchestrator.ledger.reasons.write``
to ``snapshots/wave-1-reasons.parquet`` in a temporary data folder ``--runs`` times, and reads one
customer's reason back with ``of_customer``; prints seconds per run and the file's size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from orchestrator.ledger import reasons
from orchestrator.settings import PathSettings, Settings
from orchestrator.targeting.planning import NotTreated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=900_000, help="reason codes to write")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(paths=PathSettings(data_dir=Path(tempfile.mkdtemp(prefix="reasons-bench-"))))
    ids = np.array([f"C{i:08d}" for i in range(args.n)], dtype=object)
    frame = NotTreated(ids, np.full(args.n, "below_score_cut", dtype=object), np.full(args.n, None, dtype=object))
    probe = str(ids[len(ids) // 2])
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        path = reasons.write(settings, 1, frame)
        written = time.perf_counter() - started
        started = time.perf_counter()
        found = reasons.of_customer(settings, 1, probe)
        read = time.perf_counter() - started
        assert found == ("below_score_cut", None)
        size = path.stat().st_size / 1e6
        print(
            f"run {run}: {args.n:,} reasons written in {written:.2f} s ({size:.1f} MB); "
            f"one customer read in {read:.3f} s"
        )


if __name__ == "__main__":
    main()
