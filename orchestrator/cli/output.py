"""What every ``campaign`` command prints with: the consoles, errors and problems.

Text that comes from files or data (problems, labels, messages) is escaped, so a ``[...]`` in
a rules file or a template never turns into rich markup.

Machine output (``--format json``) goes to stdout alone, through ``print_json``: plain JSON text,
no colours or wrapping; every message (progress, "written to", warnings) goes to ``err``
(stderr), so ``campaign ... --format json > out.json`` gives a file ``json.load`` reads.
Numbers people read carry thousands separators (``number``).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from orchestrator.errors import Problem

if TYPE_CHECKING:
    from orchestrator.settings import Settings

console = Console()


def get_settings() -> Settings:
    """``orchestrator.settings.get_settings()``, imported when a command needs it: pydantic-settings costs
    a fifth of a second that ``campaign --help`` does not pay."""
    from orchestrator.settings import get_settings as current

    return current()


err = Console(stderr=True)


def number(x: float | int, digits: int = 0) -> str:
    """A number for people: thousands separators, ``digits`` decimals (``12,400``, ``0.25`` with 2)."""
    return f"{x:,.{digits}f}"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` and return the ``typer.Exit`` to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        style = "red" if problem.severity == "error" else "yellow"
        err.print(f"[{style}]{escape(str(problem))}[/]", highlight=False, soft_wrap=True)


class OutputFormat(StrEnum):
    """``--format`` of the commands that print data."""

    text = "text"
    json = "json"


FORMAT_HELP = "text (for people) or json (one JSON document on stdout; messages on stderr)."


def print_json(document: Any) -> None:
    """``document`` as one indented JSON document on stdout (dates and paths as text), nothing else: no
    markup, colours or line wrapping."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "col": problem.col,
        "severity": problem.severity,
        "message": problem.message,
    }
