"""Timing helpers shared by the benchmarks: seconds and peak resident memory per named stage."""

from __future__ import annotations

import resource
import time


def peak_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stages:
    """Seconds and peak RSS (MiB, so far) after each named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak: dict[str, float] = {"start": round(peak_mib())}

    def __call__(self, name, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.seconds[name] = round(time.perf_counter() - start, 3)
        self.peak[name] = round(peak_mib())
        return result
