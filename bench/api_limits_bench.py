"""Benchmark: the response API under hostile load (issue 15's measure of its request limits).

    .venv/bin/python bench/api_limits_bench.py                      # 50 concurrent 50 MB requests
    .venv/bin/python bench/api_limits_bench.py --requests 20 --mb 10

``campaign api`` runs in its own process (``python -m orchestrator.cli.api``, default limits:
16 MiB per body, 64 MiB of bodies held at once). ``--requests`` clients POST ``--mb`` MiB each
to ``/v1/outcomes`` at the same time, half with ``Content-Length`` and half chunked (no length
to check first), each client posting again for ``--seconds``, while ``/healthz`` is asked every 50 ms.

Printed: the server's resident memory at start and its peak (``VmHWM``), the answers to the
large requests, and the health check's latency (median, 95th percentile, max) during the load.
Target: peak RSS under 300 MB and ``/healthz`` under 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="concurrent large requests")
    parser.add_argument("--mb", type=int, default=50, help="MiB per request")
    parser.add_argument("--seconds", type=float, default=10.0, help="each client posts again until then")
    args = parser.parse_args()

    from tests.support.flood import api_process, flood, health_latencies, rss_mb

    with tempfile.TemporaryDirectory(prefix="api-limits-bench-") as tmp:
        with api_process(Path(tmp), {"CAMPAIGN_API_SOURCES__BENCH__SECRET": SECRET}) as (pid, base):
            start = rss_mb(pid, "VmRSS")
            idle = statistics.median(health_latencies(base))
            seen = flood(base, requests=args.requests, size=args.mb * 2**20, seconds=args.seconds)
            peak = rss_mb(pid)
    latencies = sorted(seen.health_ms)
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    answers = ", ".join(f"{code or 'closed'}: {n}" for code, n in sorted(Counter(seen.statuses).items()))
    print(
        f"{args.requests} clients posting {args.mb} MiB requests for {seen.seconds:.1f} s "
        f"({len(seen.statuses)} requests); answers {answers}"
    )
    print(f"server RSS: {start:.0f} MiB at start, peak {peak:.0f} MiB (target < 300 MB)")
    if latencies:
        print(
            f"/healthz during the load: {len(latencies)} answers, median {statistics.median(latencies):.1f} ms, "
            f"p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms, failures {seen.health_failures} "
            f"(idle: median {idle:.1f} ms; target < 100 ms)"
        )


if __name__ == "__main__":
    main()
