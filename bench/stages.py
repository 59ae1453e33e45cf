"""Helpers shared by the benchmarks: seconds and peak memory per named stage, throwaway PostgreSQL schemas."""

from __future__ import annotations

import resource
import time


def peak_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stages:
    """Seconds, CPU seconds of this process and peak RSS (MiB, so far) after each named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak: dict[str, float] = {"start": round(peak_mib())}

    def __call__(self, name, fn, *args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn(*args, **kwargs)
        self.seconds[name] = round(time.perf_counter() - start, 3)
        self.cpu[name] = round(time.process_time() - cpu, 3)
        self.peak[name] = round(peak_mib())
        return result


def fresh_schema(url: str, prefix: str) -> tuple[str, str]:
    """A new PostgreSQL schema for one benchmark run, and the URL that uses it."""
    import sqlalchemy as sa

    schema = f"{prefix}_{int(time.time())}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    scoped = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, scoped.render_as_string(hide_password=False)


def drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
