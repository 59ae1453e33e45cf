"""Benchmark: reading and typing a customer file (``orchestrator.customers``), and the whole import into SQLite.

    .venv/bin/python bench/import_bench.py                        # 300,000 customers, best of 5
    .venv/bin/python bench/import_bench.py --customers 50000 --repeat 3

The file: ``--customers`` synthetic customers (``orchestrator.demo.synthetic.write_csv``, 13
columns: ids, names, e-mail, phone, age, region, segment, revenue, recency, consents, territory),
written once to ``bench/out/``. Per run: ``read`` is ``read_customer_file`` (sniffing, pyarrow's
parse, the unclosed-quote and NUL checks) plus the column typing of ``import_customers`` (blanks,
numbers, reasons); ``import`` is ``import_customers`` into a fresh SQLite file (staging and upsert
included). The best and the median of ``--repeat`` runs are printed and written to
``bench/out/import_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import sqlalchemy as sa

    from orchestrator.customers import importer
    from orchestrator.customers.files import read_customer_file
    from orchestrator.customers.report import ImportReport
    from orchestrator.demo.synthetic import write_csv

    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"import_bench_{args.customers}.csv"
    if not path.exists():
        write_csv(path, args.customers, seed=3)

    def read() -> None:
        source = read_customer_file(path, delimiter=None, header=None, id_column=None)
        importer._customer_rows(source, ImportReport(), 0, ())

    def load() -> None:
        with tempfile.TemporaryDirectory() as folder:
            engine = sa.create_engine(f"sqlite:///{folder}/bench.db")
            importer.import_customers(engine, path)
            engine.dispose()

    results = {}
    for name, run in (("read", read), ("import", load)):
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        results[name] = {"best_s": round(min(times), 3), "median_s": round(statistics.median(times), 3)}
        print(f"{name:>6}: best {min(times):.2f} s, median {statistics.median(times):.2f} s ({args.customers:,} rows)")
    (out / "import_bench.json").write_text(json.dumps({"customers": args.customers, **results}, indent=2))


if __name__ == "__main__":
    main()
