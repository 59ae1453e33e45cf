"""Progress bars for long-running commands (rich), silent unless a command turns them on.

Plain functions report progress through ``progress(description, total)``, a context manager
yielding an ``advance(n)`` callable; the CLI calls ``enable()`` so that people see bars while
tests and Prefect workers stay quiet.

Chunks: while a bar is open, a ``progress`` opened inside it (a chunk's function, run in this
process by a thread) advances the open bar instead of drawing its own. Work done in another
process (a Dask worker) cannot reach the bar; the caller advances it by that chunk's result,
``counted_elsewhere`` tells which.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_console: Console | None = None


def enable(console: Console | None = None) -> None:
    global _console
    _console = console or Console(stderr=True)


def disable() -> None:
    global _console
    _console = None


_open: list[Callable[[int], None]] = []  # the bar open in this process, if any


def counted_elsewhere(pid: int) -> bool:
    """Whether work done by process ``pid`` could not advance this process's open bar itself."""
    return pid != os.getpid()


def _ignore(_n: int = 1) -> None:
    """The ``advance`` of a bar nobody sees."""


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    if _console is None:
        yield _ignore
        return
    if _open:  # inside an open bar (a chunk of its work): advance that one
        yield _open[-1]
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_console, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        _open.append(advance)
        try:
            yield advance
        finally:
            _open.remove(advance)
