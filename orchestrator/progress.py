"""Progress bars for long-running commands (rich), silent unless a command turns them on.

Plain functions report progress through ``progress(description, total)``, a context manager
yielding an ``advance(n)`` callable; the CLI calls ``enable()`` so that people see bars while
tests and Prefect workers stay quiet.
"""

from __future__ import annotations

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


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    if _console is None:
        yield lambda n=1: None
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
        yield lambda n=1: bar.advance(task, n)
