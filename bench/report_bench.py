"""Benchmark: the success-control report (``orchestrator.success.report.build_report``) at 1,000,000 contacts.

    .venv/bin/python bench/report_bench.py
    .venv/bin/python bench/report_bench.py --contacts 200000 --repeat 5     # a quick run

The data: ``--contacts`` contacts of one campaign in ``--waves`` waves, 10 % control, three
channels mirrored by the control group, two A/B variants among the treated, a score for everyone;
response 5 % in the control group and 5 % + 6 % x score among the treated, revenue Gamma(2, 40)
per responder, 20 % of responders converted, days to response 0-29, cost 0.25 per treated contact.

Per run: ``build_report`` for the response goal (overall, waves, channels, variants, score
deciles, curve over 30 days, gains, Holm/BH-adjusted p-values, sample-ratio checks) and
``to_dict``; ``--adjust`` also adjusts every segment's lift and revenue for the score and a
pre-period spend column (Lin's regression, ``orchestrator.success.adjustment``); the best and the median of ``--repeat``
runs are printed, and written to ``bench/out/report_bench.json`` with the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_contacts(n: int, waves: int, seed: int = 2026):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    treated = rng.random(n) >= 0.1
    score = rng.random(n)
    responded = rng.random(n) < 0.05 + treated * 0.06 * score
    dates = pd.date_range("2026-09-07", periods=waves, freq="7D")
    wave_index = rng.integers(0, waves, n)
    names = np.array([d.strftime("%Y-%m-%d") for d in dates], dtype=object)
    return pd.DataFrame(
        {
            "campaign": "winback",
            "wave": names[wave_index],
            "wave_date": dates.values[wave_index],
            "channel": rng.choice(
                np.array(["call_center", "email", "field_force"], dtype=object), n, p=[0.3, 0.6, 0.1]
            ),
            "variant": np.where(
                treated, rng.choice(np.array(["a", "b"], dtype=object), n), np.array(None, dtype=object)
            ),
            "arm": np.where(treated, "treatment", "control"),
            "score": score,
            "responded": responded,
            "converted": responded & (rng.random(n) < 0.2),
            "revenue": np.where(responded, rng.gamma(2.0, 40.0, n), 0.0),
            "cost": np.where(treated, 0.25, 0.0),
            "days_to_response": np.where(responded, rng.integers(0, 30, n).astype(float), np.nan),
            "arm_propensity": np.where(treated, 0.9, 0.1),
            "spend_12m": rng.gamma(1.5, 100.0, n),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--waves", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--adjust", action="store_true", help="regression-adjust for score and spend_12m")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from orchestrator.success.report import build_report

    console = Console(width=120)
    start = time.perf_counter()
    contacts = make_contacts(args.contacts, args.waves)
    console.print(f"generated {len(contacts):,} contacts in {time.perf_counter() - start:.2f} s")

    seconds = []
    report = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        covariates = ["score", "spend_12m"] if args.adjust else []
        report = build_report(contacts, campaign="winback", goal="response", window_days=30, covariates=covariates)
        report.to_dict()
        seconds.append(time.perf_counter() - start)
    assert report is not None

    overall = report.overall()
    table = Table(title=f"build_report + to_dict, {len(contacts):,} contacts, {len(report.segments)} segments")
    table.add_column("runs", justify="right")
    table.add_column("best s", justify="right")
    table.add_column("median s", justify="right")
    table.add_column("peak MiB", justify="right")
    table.add_row(str(len(seconds)), f"{min(seconds):.2f}", f"{statistics.median(seconds):.2f}", f"{peak_mib():.0f}")
    console.print(table)
    lift = overall.absolute_lift
    if lift.value is None or lift.low is None or lift.high is None:
        console.print(f"overall lift undefined (p = {overall.p_value}, {overall.test})")
    else:
        console.print(
            f"overall lift {lift.value * 100:+.2f} points ({lift.low * 100:+.2f} to {lift.high * 100:+.2f}), "
            f"p = {overall.p_value:.3g} ({overall.test})"
        )

    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    result = {
        "contacts": len(contacts),
        "adjusted": bool(args.adjust),
        "segments": len(report.segments),
        "seconds": [round(s, 3) for s in seconds],
        "best_seconds": round(min(seconds), 3),
        "peak_mib": round(peak_mib()),
    }
    (out / "report_bench.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
