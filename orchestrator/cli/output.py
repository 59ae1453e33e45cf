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

import typer
from rich.console import Console
from rich.markup import escape

from orchestrator.errors import Problem

console = Console()
err = Console(stderr=True)


def print_json(data: object) -> None:
    """``data`` as indented JSON on stdout, and nothing else (no markup, colours or line wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


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
