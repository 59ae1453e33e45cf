"""Chunk tasks: the ``Mapper`` of ``orchestrator.execution.chunks`` as Prefect tasks, and the task runner they run on.

``prefect_mapper`` submits one Prefect task per chunk to the flow's task runner and yields the
results in submission order. Each chunk task run is named after its work and place, e.g.
``score 2/4``, ``render email 1/3``, ``send email 3/10``, ``send call_center 1/2``
(``chunk_label``). ``progress_mapper(key, description)`` does the same and keeps a Prefect
progress artifact up to date while the chunks finish (the share of chunks done), so a long send
shows how far it is in the UI. ``task_runner`` builds the runner from the execution
settings: a thread pool in the flow's process (default), or a Dask cluster through
prefect-dask: a local one with ``workers`` processes, or the existing one at
``dask_address``. Every chunk task is safe to retry: scoring and rendering only read, an
e-mail chunk first recovers its own send journal, and task lists go out under their stored
``webhook-id``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from uuid import UUID as UUIDType

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.states import Completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from orchestrator.settings import ExecutionSettings

R = TypeVar("R")

_CHANNEL_ARGUMENT = {"render_chunk": 2, "deliver_chunk": 3}  # where the chunk function takes its channel(s)
_VERBS = {"send_email_chunk": "send email", "deliver_chunk": "send", "render_chunk": "render"}


@task(name="chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def run_chunk(fn: Callable[..., R], args: tuple) -> Any:
    """``fn(*args)``; a result with a ``failure`` (a send chunk that left contacts pending) ends the task in a
    state named ``Incomplete`` with that message, never ``Completed``, and still carries the result."""
    result = fn(*args)
    failure = getattr(result, "failure", None)
    if failure:
        return Completed(data=result, name="Incomplete", message=f"contacts left pending: {failure}")
    return result


def chunk_label(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """What a chunk of ``fn`` does, for its task run's name: ``send email``, ``render email+call_center``, ``score``."""
    name = fn.__name__
    verb = _VERBS.get(name) or name.split("_chunk")[0].replace("_", " ")
    position = _CHANNEL_ARGUMENT.get(name)
    if position is None or len(args) <= position:
        return verb
    channel = args[position]
    if not isinstance(channel, str) and hasattr(channel, "tolist"):  # each row's channel (render_chunk)
        channel = "+".join(dict.fromkeys(str(c) for c in channel.tolist()))
    if isinstance(channel, str) and channel:
        return f"{verb} {channel}"
    return verb


def prefect_mapper(fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> Iterator[R]:
    """Run ``fn(*args)`` per argument tuple as Prefect tasks on the flow's task runner; results in call order.

    The task runs are named ``<label> <i>/<n>`` (``chunk_label``). When a chunk fails, the
    others are still waited for before the error is raised, so no chunk is left running behind
    the flow's back.
    """
    if not calls:
        return
    chunk = run_chunk.with_options(name=fn.__name__.replace("_", "-"))
    futures = [
        chunk.with_options(task_run_name=_literal(f"{chunk_label(fn, args)} {i}/{len(calls)}")).submit(fn, args)
        for i, args in enumerate(calls, start=1)
    ]
    try:
        for future in futures:
            yield future.result()
    finally:
        wait(futures)


def progress_mapper(key: str, description: str) -> Callable[..., Iterator[Any]]:
    """A ``prefect_mapper`` that shows each call's progress as a Prefect progress artifact under ``key``.

    One artifact per mapper call (per channel sent), created at 0 % and updated as each chunk
    finishes, in call order.
    """
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    def mapper(fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> Iterator[R]:
        if not calls:
            return
        label = chunk_label(fn, calls[0])
        artifact = create_progress_artifact(0.0, key=key, description=f"{description}: {label}, {len(calls)} chunk(s)")
        if not isinstance(artifact, UUIDType):  # pragma: no cover - only async callers get a coroutine
            raise TypeError("the progress artifact was created asynchronously")
        for done, result in enumerate(prefect_mapper(fn, calls), start=1):
            update_progress_artifact(
                artifact,
                round(100.0 * done / len(calls), 1),
                description=f"{description}: {label}, {done} of {len(calls)} chunk(s) done",
            )
            yield result

    return mapper


def _literal(name: str) -> Callable[[], str]:
    """A task run name Prefect does not ``format()`` (a campaign or channel name may hold braces)."""
    return lambda: name


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
