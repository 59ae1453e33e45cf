"""What every ``campaign`` command prints with: the consoles, errors and problems.

Text that comes from files or data (problems, labels, messages) is escaped, so a ``[...]`` in
a rules file or a template never turns into rich markup.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from orchestrator.errors import Problem

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` and return the ``typer.Exit`` to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        style = "red" if problem.severity == "error" else "yellow"
        err.print(f"[{style}]{escape(str(problem))}[/]", highlight=False, soft_wrap=True)
