"""Benchmark: the plan stage of the full-wave bench alone, engine and hand-written side alternately.

    .venv/bin/python bench/plan_bench.py setup --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test --dir D
    .venv/bin/python bench/plan_bench.py time --dir D --repeat 7 [--dump plan.npz]
    .venv/bin/python bench/plan_bench.py drop --dir D

``setup`` (not timed), as in ``bench/full_wave_bench.py`` and with its functions: ``--customers``
synthetic customers imported into a fresh PostgreSQL schema (kept until ``drop``), the response
model trained, the campaign prepared and selected once; the prepared wave and the candidates are
pickled into ``--dir``. ``time`` loads them and times, ``--repeat`` rounds, which side goes first
alternating between rounds:

- **engine**: ``orchestrator.wave.stages.plan`` as the full-wave bench's plan stage calls it (capacity
  file, used capacity and the cycle's customers read from the database, then ``plan_cycle``);
- **hand-written**: the full-wave bench's ``hand_plan`` (``full_wave_hand.py``) on the same selected
  customers (their ids, territories, eligibility per channel and scores, taken from the engine's
  candidates: the same customers as the hand-written select query's, in the engine's order).

Reported per side: the median CPU seconds (``time.process_time``: the machine is shared) and wall
seconds, and their ratio. ``--dump`` writes the engine's plan (every contact column, counts, reasons,
passed-over ids) to an ``.npz`` file, so two versions of the engine can be compared on the same
inputs (``compare A B``). ``time`` works on any checkout that has ``hand_plan``: run this script
from each to time them on one ``--dir``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import full_wave_bench as fwb  # noqa: E402 - bench/ is on sys.path when run as a script
import full_wave_hand  # noqa: E402

INPUTS = "inputs.pkl"
META = "meta.json"


def setup(args: argparse.Namespace) -> None:
    from orchestrator.db import engine as database
    from orchestrator.wave import stages as wave

    root = Path(args.dir)
    data, work = root / "data", root / "work"
    data.mkdir(parents=True)
    work.mkdir()
    schema, url = fwb.fresh_schema(args.postgres)
    started = time.perf_counter()
    fwb.make_data(data, args.customers)
    setup = fwb.run_setup(data, work, url, args)
    settings = fwb.settings_for(work, url)
    prepared = wave.prepare(settings, work / "rules" / f"{fwb.CAMPAIGN}.yaml", fwb.WAVE_DAY)
    candidates = wave.select_candidates(settings, prepared)
    database.dispose_all()
    with open(root / INPUTS, "wb") as f:
        pickle.dump((prepared, candidates), f, protocol=pickle.HIGHEST_PROTOCOL)
    meta = {
        "postgres": args.postgres,
        "schema": schema,
        "url": url,
        "args": vars(args),
        "min_score": setup["min_score"],
    }
    (root / META).write_text(json.dumps(meta))
    print(f"setup {time.perf_counter() - started:.0f} s: {len(candidates.ids):,} selected; load {fwb.load_text()}")


def hand_inputs(candidates):
    import numpy as np
    import pandas as pd

    from orchestrator.targeting.planning import ELIGIBLE, TERRITORY

    extra = candidates.extra  # the select query's CASE columns, as integers
    selected = pd.DataFrame(
        {
            "customer_id": candidates.ids,
            "territory": extra[TERRITORY],
            "ff": np.asarray(extra[ELIGIBLE + "field_force"], dtype=float).astype(np.int64),
            "cc": np.asarray(extra[ELIGIBLE + "call_center"], dtype=float).astype(np.int64),
            "em": np.asarray(extra[ELIGIBLE + "email"], dtype=float).astype(np.int64),
        }
    )
    return selected, np.asarray(candidates.scores, dtype=float)


def dump(path: str, plan) -> None:
    from dataclasses import fields

    import numpy as np

    c = plan.contacts
    arrays: dict[str, Any] = {}
    for f in fields(c):
        column = np.asarray(getattr(c, f.name))
        arrays[f"contacts.{f.name}"] = column.astype(str) if column.dtype == object else column
    arrays["not_treated_id"] = np.asarray(plan.not_treated.customer_id, dtype=str)
    arrays["not_treated_reason"] = np.asarray(plan.not_treated.reason, dtype=str)
    arrays["not_treated_detail"] = np.asarray(plan.not_treated.detail, dtype=str)
    arrays["passed_over"] = np.asarray(plan.passed_over, dtype=str)
    counts = {
        "channel_counts": plan.channel_counts,
        "waiting": plan.waiting,
        "explored": plan.explored,
        "lost_to": plan.lost_to,
        "funnel": [list(vars(s).values()) for s in plan.selection.funnel],
    }
    arrays["counts"] = np.array(json.dumps(counts, sort_keys=True))
    np.savez(path, **arrays)


def time_plan(args: argparse.Namespace) -> None:
    import gc

    from orchestrator.db import engine as database
    from orchestrator.wave import stages as wave

    root = Path(args.dir)
    meta = json.loads((root / META).read_text())
    with open(root / INPUTS, "rb") as f:
        prepared, candidates = pickle.load(f)
    settings = fwb.settings_for(root / "work", meta["url"])
    bench_args = argparse.Namespace(**meta["args"])
    selected, scores = hand_inputs(candidates)

    def engine_side():
        return wave.plan(settings, [prepared], [candidates])[0]

    def hand_side():
        return full_wave_hand.hand_plan(selected, scores, bench_args)

    plan = engine_side()  # warm: the database connection, the imports (the full bench opens them in earlier stages)
    hand_side()
    if args.dump:
        dump(args.dump, plan)
    del plan
    runs: dict[str, list[tuple[float, float]]] = {"engine": [], "hand": []}
    for k in range(args.repeat):
        for side in ("engine", "hand") if k % 2 == 0 else ("hand", "engine"):
            gc.collect()
            fn = engine_side if side == "engine" else hand_side
            cpu, wall = time.process_time(), time.perf_counter()
            result = fn()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            del result
            runs[side].append((cpu, wall))
        print(
            f"round {k + 1}: engine CPU {runs['engine'][-1][0]:.3f} s (wall {runs['engine'][-1][1]:.3f}), "
            f"hand CPU {runs['hand'][-1][0]:.3f} s (wall {runs['hand'][-1][1]:.3f}); load {fwb.load_text()}",
            flush=True,
        )
    database.dispose_all()
    med = {side: [statistics.median(x[i] for x in r) for i in (0, 1)] for side, r in runs.items()}
    summary = {
        "label": args.label,
        "checkout": str(REPO),
        "selected": len(candidates.ids),
        "engine_cpu_median_s": round(med["engine"][0], 3),
        "hand_cpu_median_s": round(med["hand"][0], 3),
        "engine_wall_median_s": round(med["engine"][1], 3),
        "hand_wall_median_s": round(med["hand"][1], 3),
        "cpu_ratio": round(med["engine"][0] / med["hand"][0], 2),
        "wall_ratio": round(med["engine"][1] / med["hand"][1], 2),
        "runs": runs,
        "load_average_end": fwb.load_text(),
    }
    print(json.dumps(summary))


def in_stages(args: argparse.Namespace) -> None:
    """The full-wave bench's own sides, each in a fresh process that runs prepare and select before the
    timed plan stage (``--until plan``), as in the full bench; ``--checkout`` engines and the hand-written
    side in turn, the order rotating between rounds."""
    import subprocess

    root = Path(args.dir)
    meta = json.loads((root / META).read_text())
    bench_args = meta["args"]
    common = [
        "--until", "plan", "--work", str(root / "work"), "--url", meta["url"], "--smtp-port", "25",
        "--customers", str(bench_args["customers"]), "--email-limit", str(bench_args["email_limit"]),
        "--calls-per-day", str(bench_args["calls_per_day"]), "--visits-per-rep", str(bench_args["visits_per_rep"]),
        "--min-score", str(meta["min_score"]),
    ]  # fmt: skip
    sides = [(f"engine {c}", c, "engine") for c in args.checkout or [str(REPO)]] + [("hand", str(REPO), "hand")]
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _c, _p in sides}
    for k in range(args.repeat):
        for name, checkout, part in sides[k % len(sides) :] + sides[: k % len(sides)]:
            script = Path(checkout) / "bench" / "full_wave_bench.py"
            proc = subprocess.run(
                [sys.executable, str(script), "--part", part, *common], capture_output=True, text=True, cwd=checkout
            )
            if proc.returncode != 0:
                sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-20000:])
                raise SystemExit(f"{name} failed with exit code {proc.returncode}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[name].append((result["cpu"]["plan"], result["seconds"]["plan"]))
            print(
                f"round {k + 1} {name}: plan CPU {result['cpu']['plan']:.3f} s, wall {result['seconds']['plan']:.3f} s "
                f"({result['selected']:,} selected); load {fwb.load_text()}",
                flush=True,
            )
    med = {name: [statistics.median(x[i] for x in r) for i in (0, 1)] for name, r in runs.items()}
    summary = {
        "label": args.label,
        "medians": {name: {"cpu_s": round(c, 3), "wall_s": round(w, 3)} for name, (c, w) in med.items()},
        "ratios_to_hand": {
            name: {"cpu": round(c / med["hand"][0], 2), "wall": round(w / med["hand"][1], 2)}
            for name, (c, w) in med.items()
            if name != "hand"
        },
        "runs": runs,
        "load_average_end": fwb.load_text(),
    }
    print(json.dumps(summary))


def compare(a: str, b: str) -> None:
    import numpy as np

    left, right = np.load(a), np.load(b)
    assert sorted(left.files) == sorted(right.files), (left.files, right.files)
    differ = [
        name
        for name in left.files
        if not np.array_equal(left[name], right[name], equal_nan=left[name].dtype.kind == "f")
    ]
    print("identical" if not differ else f"differ: {differ}")
    if differ:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["setup", "time", "stages", "drop", "compare"])
    parser.add_argument("files", nargs="*", help="compare: two --dump files")
    parser.add_argument("--dir", default=None, help="where setup keeps the inputs (default: a new temporary folder)")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--email-limit", type=int, default=50_000)
    parser.add_argument("--calls-per-day", type=int, default=20_000)
    parser.add_argument("--visits-per-rep", type=int, default=10)
    parser.add_argument("--keep", type=float, default=0.6)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dump", help="time: write the engine's plan to this .npz file")
    parser.add_argument("--label", default="")
    parser.add_argument("--checkout", action="append", help="stages: the engine of this checkout (repeatable)")
    args = parser.parse_args()
    if args.action == "setup":
        if not args.postgres:
            parser.error("setup needs --postgres URL")
        args.dir = args.dir or tempfile.mkdtemp(prefix="plan-bench-") + "/inputs"
        setup(args)
    elif args.action == "time":
        time_plan(args)
    elif args.action == "stages":
        in_stages(args)
    elif args.action == "drop":
        meta = json.loads((Path(args.dir) / META).read_text())
        fwb.drop_schema(meta["postgres"], meta["schema"])
    else:
        compare(*args.files)


if __name__ == "__main__":
    main()
