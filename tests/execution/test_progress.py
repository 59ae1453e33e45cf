"""Progress bars as people see them on a terminal: counts with thousands separators, rate, ETA and
failures; log lines printed above the bar, never into its last frame."""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest
from rich.console import Console

from orchestrator.execution import progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def terminal():
    buffer = io.StringIO()
    progress.enable(Console(file=buffer, force_terminal=True, width=140, color_system=None))
    yield buffer
    progress.disable()


def _screen(raw: str) -> list[str]:
    """What stays on a terminal: per line, the text after the last carriage return / line erase."""
    lines = []
    for line in ANSI.sub("\r", raw).split("\n"):
        lines.append(line.split("\r")[-1] if "\r" in line else line)
    return lines


def test_bar_shows_count_rate_eta_and_failures(terminal):
    with progress.progress("send email", 12_400) as advance:
        advance(6_000)
        advance(6_400, failed=37)
    raw = terminal.getvalue()
    final = [line for line in _screen(raw) if line.startswith("send email")][-1]
    assert "12,400/12,400" in final and "37 failed" in final and "ETA" in final
    assert re.search(r"[0-9,.]+/s", final), final
    assert ANSI.sub("", raw).endswith("\n")  # the last frame ends its line


def test_log_lines_go_above_the_bar_not_into_it(terminal):
    log = logging.getLogger("tests.progress.terminal")
    handler = logging.StreamHandler(sys.__stderr__)  # like Prefect's, bound to the terminal when made
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    try:
        with progress.progress("render", 1_000) as advance:
            advance(500)
            log.warning("half way there")
            advance(500)
        log.warning("after the bar")  # the handler writes to the terminal again, not to the bar's console
    finally:
        log.removeHandler(handler)
    assert handler.stream is sys.__stderr__
    lines = _screen(terminal.getvalue())
    assert "WARNING half way there" in lines  # a line of its own: not glued to a frame
    assert not any("render" in line and "half way" in line for line in lines)
    assert "after the bar" not in terminal.getvalue()


def test_silent_unless_enabled():
    progress.disable()
    with progress.progress("send email", 10) as advance:
        advance(10, failed=2)  # accepted and ignored
