"""Chunks of customers, and who runs the work on them: the ``Mapper`` contract.

Scoring, full rendering and sending are split into chunks of ``execution.chunk_size``
customers (contacts). The functions that do the work on one chunk are plain module-level
functions whose first argument is the ``Settings``; every other argument is picklable, so
a chunk can run in this process or on another machine. A ``Mapper`` runs such a function
once per argument tuple and yields the results **in call order**; whatever it runs on, the
results are merged the same way, so the outcome does not depend on where chunks ran.

* ``in_process`` (the default of every plain function) calls them one after the other;
* ``flows.chunk_runner.prefect_mapper`` submits one Prefect task per chunk to the flow's
  task runner: a thread pool, or a Dask cluster (``--task-runner dask``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import sqlalchemy as sa

R = TypeVar("R")


class Mapper(Protocol):
    def __call__(self, fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> Iterable[R]: ...


def in_process(fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> Iterator[R]:
    """Run ``fn(*args)`` for each argument tuple here, one after the other."""
    for args in calls:
        yield fn(*args)


def split(items: Sequence | np.ndarray, size: int) -> list:
    """``items`` in consecutive pieces of at most ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [items[start : start + size] for start in range(0, len(items), size)]


def id_ranges(conn: sa.Connection, query: sa.Select, size: int) -> list[tuple[int, int]]:
    """Disjoint inclusive ``(first, last)`` ranges of the integer ids ``query`` returns, ``size`` ids each.

    ``query`` selects one integer column. Only the boundaries come back from the database
    (every ``size``-th id by window function), not every id.
    """
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    column = query.subquery().c[0]
    numbered = sa.select(
        column.label("id"),
        sa.func.row_number().over(order_by=column).label("n"),
        sa.func.count().over().label("total"),
    ).subquery()
    n = numbered.c.n
    rows = conn.execute(
        sa.select(numbered.c.id, n).where(sa.or_((n - 1) % size == 0, n % size == 0, n == numbered.c.total)).order_by(n)
    ).all()
    starts = [int(r.id) for r in rows if (r.n - 1) % size == 0]
    ends = [int(r.id) for r in rows if r.n % size == 0 or r is rows[-1]]
    return list(zip(starts, ends, strict=True))
