"""Benchmark: capacity-aware channel allocation (``orchestrator.targeting.allocation.allocate``) at 1M customers.

    .venv/bin/python bench/allocation_bench.py
    .venv/bin/python bench/allocation_bench.py --customers 200000      # a quick run

The data: ``--customers`` customers with a response score from Beta(2, 8) (mean 0.2) and three
channels, each with its own value per response, cost per contact and eligibility:

- e-mail: value 60, cost 0.10, eligible ~70 %, unlimited;
- call center: value 150, cost 4, eligible ~50 %, ``--call-center`` tasks per day;
- field force: value 400, cost 25, eligible ~30 %, one pool per territory (``--territories``,
  customers spread uniformly), ``--reps`` reps x ``--visits`` visits per rep per day each.

Expected value of an option: score x value x noise (uniform 0.8-1.2, per customer and channel)
- cost, rounded to cents. Two scenarios, each in its own process (a child's ``ru_maxrss``
starts at its parent's peak, so each peak printed is that scenario's own):

- **default**: call center 5,000; field force 50 x 20 x 6 = 6,000 (K = 11,000): pruning keeps
  a few percent of the options;
- **large capacities**: call center ``--large-call-center`` (300,000): the worst case, pruning
  keeps most of the call-center options and the flow is large.

Per scenario: generate the options, ``allocate`` with ``overflow="fallback"`` (the breakdown:
input checks, the min-cost flow alone, the rest = baseline, pruning, tie pass, result) and with
``overflow="wait"``. Results go to ``bench/out/allocation_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHANNELS = (  # name, value per response, cost per contact, eligible share
    ("email", 60.0, 0.10, 0.7),
    ("call_center", 150.0, 4.0, 0.5),
    ("field_force", 400.0, 25.0, 0.3),
)


from stages import Stages  # noqa: E402 - bench/ is on sys.path when run as a script


def make_options(n: int, territories: int, seed: int = 17):
    """Column-oriented options: customer, pool (0 email, 1 call center, 2+t field force of territory t), value."""
    import numpy as np

    rng = np.random.default_rng(seed)
    score = rng.beta(2.0, 8.0, n)
    territory = rng.integers(0, territories, n)
    customers, pools, values = [], [], []
    for j, (_, worth, cost, share) in enumerate(CHANNELS):
        rows = np.flatnonzero(rng.random(n) < share)
        pool = np.full(len(rows), j, dtype=np.int64) if j < 2 else 2 + territory[rows]
        value = np.round(score[rows] * worth * rng.uniform(0.8, 1.2, len(rows)) - cost, 2)
        customers.append(rows)
        pools.append(pool)
        values.append(value)
    return np.concatenate(customers), np.concatenate(pools), np.concatenate(values)


def run_scenario(n: int, territories: int, call_center: int, reps: int, visits: int) -> dict:
    import numpy as np

    from orchestrator.targeting import allocation

    stages = Stages()
    customer, pool, value = stages("generate options", make_options, n, territories)
    capacities = [None, call_center, *([reps * visits] * territories)]

    # The breakdown of allocate: wrap its private stages (timing only, results unchanged).
    inner: dict[str, float] = {}
    flow_sizes: list[int] = []

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                inner[name] = inner.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    solve = allocation._solve_flow

    def recording_solve(cust, pools_, gain, caps):
        flow_sizes.append(len(gain))
        return solve(cust, pools_, gain, caps)

    allocation._validate = timed("input checks", allocation._validate)
    allocation._solve_flow = timed("min-cost flow", recording_solve)

    fallback = stages("allocate fallback", allocation.allocate, customer, pool, value, capacities, n_customers=n)
    breakdown = {k: round(v, 3) for k, v in inner.items()}
    breakdown["baseline, pruning, ties, result"] = round(stages.seconds["allocate fallback"] - sum(inner.values()), 3)
    inner.clear()
    wait = stages(
        "allocate wait", allocation.allocate, customer, pool, value, capacities, n_customers=n, overflow="wait"
    )
    again = allocation.allocate(customer, pool, value, capacities, n_customers=n)
    assert np.array_equal(again.option, fallback.option), "not deterministic"

    S = allocation.AllocationStatus
    capacitated_options = int(np.count_nonzero(pool > 0))
    return {
        "customers": n,
        "options": len(customer),
        "capacitated_options": capacitated_options,
        "capacities": {"call_center": call_center, "field_force": f"{territories} x {reps} x {visits}"},
        "k": call_center + territories * reps * visits,
        "flow_options": flow_sizes[0] if flow_sizes else 0,
        "breakdown": breakdown,
        "fallback": {
            "total_value": round(fallback.total_value, 2),
            "pool_counts": {
                "email": int(fallback.pool_counts[0]),
                "call_center": int(fallback.pool_counts[1]),
                "field_force": int(fallback.pool_counts[2:].sum()),
            },
            **{s.name.lower(): fallback.count(s) for s in S},
        },
        "wait": {
            "total_value": round(wait.total_value, 2),
            "pool_counts": {
                "email": int(wait.pool_counts[0]),
                "call_center": int(wait.pool_counts[1]),
                "field_force": int(wait.pool_counts[2:].sum()),
            },
            **{s.name.lower(): wait.count(s) for s in S},
        },
        **vars(stages),
    }


def child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{args} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--territories", type=int, default=50)
    parser.add_argument("--reps", type=int, default=20, help="reps per territory")
    parser.add_argument("--visits", type=int, default=6, help="visits per rep per day")
    parser.add_argument("--call-center", type=int, default=5_000)
    parser.add_argument("--large-call-center", type=int, default=300_000)
    parser.add_argument("--scenario", type=int, help=argparse.SUPPRESS)  # a child: the call-center capacity
    args = parser.parse_args()
    if args.scenario is not None:
        print(json.dumps(run_scenario(args.customers, args.territories, args.scenario, args.reps, args.visits)))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    common = [
        "--customers",
        str(args.customers),
        "--territories",
        str(args.territories),
        "--reps",
        str(args.reps),
        "--visits",
        str(args.visits),
    ]
    results = {}
    for name, cap in (("default", args.call_center), ("large capacities", args.large_call_center)):
        with console.status(f"{name}: call center {cap:,} ..."):
            results[name] = child(*common, "--scenario", str(cap))
        console.print(f"{name}: done in {sum(results[name]['seconds'].values()):.2f} s")

    def cell(r: dict, stage: str) -> str:
        return f"{r['seconds'][stage]:.2f} s  ({r['peak'][stage]:,} MiB)"

    names = list(results)
    table = Table(
        title=f"Allocation: seconds per stage (peak RSS MiB so far), {args.customers:,} customers x 3 channels"
    )
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    table.add_row(
        "call center / field force",
        *(f"{results[n]['capacities']['call_center']:,} / {results[n]['capacities']['field_force']}" for n in names),
    )
    table.add_row(
        "options (capacitated)", *(f"{results[n]['options']:,} ({results[n]['capacitated_options']:,})" for n in names)
    )
    table.add_row("K = sum of capacities", *(f"{results[n]['k']:,}" for n in names))
    table.add_row("options in the flow after pruning", *(f"{results[n]['flow_options']:,}" for n in names))
    table.add_row("process start (imports)", *(f"({results[n]['peak']['start']:,} MiB)" for n in names))
    for stage in results[names[0]]["seconds"]:
        table.add_row(stage, *(cell(results[n], stage) for n in names))
        if stage == "allocate fallback":
            for part in results[names[0]]["breakdown"]:
                table.add_row(f"  of which {part}", *(f"{results[n]['breakdown'].get(part, 0):.2f} s" for n in names))
    for mode in ("fallback", "wait"):
        table.add_row(f"{mode}: total value", *(f"{results[n][mode]['total_value']:,.2f}" for n in names))
        table.add_row(
            f"{mode}: email / call / visit",
            *(" / ".join(f"{v:,}" for v in results[n][mode]["pool_counts"].values()) for n in names),
        )
        table.add_row(
            f"{mode}: over capacity / not worth / no option",
            *(
                f"{results[n][mode]['over_capacity']:,} / {results[n][mode]['not_worth']:,} / "
                f"{results[n][mode]['no_option']:,}"
                for n in names
            ),
        )
    console.print(table)
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "allocation_bench.json").write_text(json.dumps(results, indent=2))
    console.print(f"wrote {out_dir / 'allocation_bench.json'}")


if __name__ == "__main__":
    main()
