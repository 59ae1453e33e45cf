"""Progress bars for long-running commands (rich), silent unless a command turns them on.

Plain functions report progress through ``progress(description, total)``, a context manager
yielding an ``advance(n, failed=0)`` callable: ``n`` items done, ``failed`` of them not done
successfully (failed, skipped); the CLI calls ``enable()`` so that people see bars while tests
and Prefect workers stay quiet.

A bar shows the count done of the total with thousands separators (``12,400/50,000``), the rate
(``1,234/s``), the time elapsed and the time left (ETA), and the failures so far (``37 failed``,
red once there is one).

While a bar is drawn on a terminal, log lines (Prefect's console handler and any other logging
handler writing to the terminal) are printed above it, never into it: the last frame ends with
its own line and the next log line starts on a fresh one.

Chunks: while a bar is open, a ``progress`` opened inside it (a chunk's function, run in this
process by a thread) advances the open bar instead of drawing its own. Work done in another
process (a Dask worker) cannot reach the bar; the caller advances it by that chunk's result,
``counted_elsewhere`` tells which.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

__all__ = ["Advance", "counted_elsewhere", "disable", "enable", "progress"]

_console: Console | None = None


class Advance(Protocol):
    """``advance(n, failed=0)``: ``n`` more items handled, ``failed`` of them not successfully."""

    def __call__(self, n: int = 1, failed: int = 0) -> None: ...


def enable(console: Console | None = None) -> None:
    global _console
    _console = console or Console(stderr=True)


def disable() -> None:
    global _console
    _console = None


_open: list[Advance] = []  # the bar open in this process, if any


def counted_elsewhere(pid: int) -> bool:
    """Whether work done by process ``pid`` could not advance this process's open bar itself."""
    return pid != os.getpid()


def _ignore(n: int = 1, failed: int = 0) -> None:
    """The ``advance`` of a bar nobody sees."""


class CountColumn(ProgressColumn):
    """Done of total with thousands separators: ``12,400/50,000`` (``12,400`` without a total)."""

    def render(self, task: Task) -> Text:
        done = f"{int(task.completed):,}"
        return Text(done if task.total is None else f"{done}/{int(task.total):,}", style="progress.download")


class RateColumn(ProgressColumn):
    """Items per second, e.g. ``1,234/s`` (``–/s`` until known)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("–/s", style="progress.data.speed")
        return Text(f"{speed:,.0f}/s" if speed >= 10 else f"{speed:.1f}/s", style="progress.data.speed")


class FailedColumn(ProgressColumn):
    """The failures so far: ``0 failed``, in red from the first one."""

    def render(self, task: Task) -> Text:
        failed = int(task.fields.get("failed", 0))
        return Text(f"{failed:,} failed", style="bold red" if failed else "dim")


def columns() -> tuple[ProgressColumn, ...]:
    """What a bar shows, left to right."""
    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        CountColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        FailedColumn(),
    )


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Advance]:
    if _console is None:
        yield _ignore
        return
    if _open:  # inside an open bar (a chunk of its work): advance that one
        yield _open[-1]
        return
    with Progress(*columns(), console=_console, transient=False) as bar:
        task = bar.add_task(description, total=total, failed=0)

        def advance(n: int = 1, failed: int = 0) -> None:
            if failed:
                bar.update(task, advance=n, failed=bar.tasks[task].fields.get("failed", 0) + failed)
            else:
                bar.advance(task, n)

        _open.append(advance)
        try:
            with _logs_above(bar):
                yield advance
        finally:
            _open.remove(advance)


@contextmanager
def _logs_above(bar: Progress) -> Iterator[None]:
    """While ``bar`` is live on a terminal, point logging handlers that write to the terminal at the
    live display's stream proxies (rich prints those lines above the bar), and back afterwards."""
    live = bar.live
    if not live.is_started or not (live.console.is_terminal or live.console.is_jupyter):
        yield
        return
    targets = {id(sys.__stderr__): sys.stderr, id(sys.__stdout__): sys.stdout}  # the proxies while live
    restore: list[Callable[[], None]] = []
    for handler in _handlers():
        stream = getattr(handler, "stream", None)
        console = getattr(handler, "console", None)  # Prefect's handler prints through its own rich Console
        if isinstance(console, Console) and id(console.file) in targets:
            old = console.file
            console.file = targets[id(old)]
            restore.append(partial(setattr, console, "file", old))
        elif isinstance(handler, logging.StreamHandler) and id(stream) in targets:
            handler.setStream(targets[id(stream)])
            restore.append(partial(handler.setStream, stream))
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()


def _handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    seen: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            seen.setdefault(id(handler), handler)
    return list(seen.values())
