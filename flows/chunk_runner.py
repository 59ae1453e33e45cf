"""Chunk tasks: the ``Mapper`` of ``orchestrator.execution.chunks`` as Prefect tasks, and the task runner they run on.

``prefect_mapper`` submits one Prefect task per chunk (named after the chunk's function,
e.g. ``score-chunk``, ``send-email-chunk``) to the flow's task runner and yields the
results in submission order. ``task_runner`` builds that runner from the execution
settings: a thread pool in the flow's process (default), or a Dask cluster through
prefect-dask: a local one with ``workers`` processes, or the existing one at
``dask_address``. Every chunk task is safe to retry: scoring and rendering only read, an
e-mail chunk first recovers its own send journal, and task lists go out under their stored
``webhook-id``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.states import Completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from orchestrator.settings import ExecutionSettings

R = TypeVar("R")


@task(name="chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def run_chunk(fn: Callable[..., R], args: tuple) -> Any:
    """``fn(*args)``; a result with a ``failure`` (a send chunk that left contacts pending) ends the task in a
    state named ``Incomplete`` with that message, never ``Completed``, and still carries the result."""
    result = fn(*args)
    failure = getattr(result, "failure", None)
    if failure:
        return Completed(data=result, name="Incomplete", message=f"contacts left pending: {failure}")
    return result


def prefect_mapper(fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> Iterator[R]:
    """Run ``fn(*args)`` per argument tuple as Prefect tasks on the flow's task runner; results in call order.

    When a chunk fails, the others are still waited for before the error is raised, so no
    chunk is left running behind the flow's back.
    """
    if not calls:
        return
    chunk = run_chunk.with_options(name=fn.__name__.replace("_", "-"))
    futures = [chunk.submit(fn, args) for args in calls]
    try:
        for future in futures:
            yield future.result()
    finally:
        wait(futures)


def task_runner(execution: ExecutionSettings) -> TaskRunner[Any]:
    """The task runner the execution settings ask for (see the module docstring)."""
    if execution.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if execution.dask_address:
            return DaskTaskRunner(address=execution.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": execution.workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    return ThreadPoolTaskRunner(max_workers=execution.workers)
