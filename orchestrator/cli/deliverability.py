"""``campaign deliverability check FILE``: the pre-flight lint of a campaign's e-mail.

Checks DKIM (a key aligned with the From domain), one-click unsubscribe (RFC 8058 headers, signed),
a visible unsubscribe link, a plain-text part, the message size and the spam complaint rate of
recent waves (``orchestrator.wave.deliverability``). Nothing is recorded or sent.

Exit status: 0 when nothing is wrong (warnings are printed), 1 when a check found an error (or a
warning, with ``--strict``), 2 when the campaign cannot be checked (invalid rules file, no
customer table, no e-mail channel). ``--format json`` prints the findings as JSON.

Registered in ``main.py`` as ``deliverability_app``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import console, fail, get_settings, print_problems
from orchestrator.errors import ValidationFailed

__all__ = ["deliverability_app"]

deliverability_app = typer.Typer(no_args_is_help=True, help="Deliverability of a campaign's e-mail.")

_STYLE = {"ok": "green", "warning": "yellow", "error": "red"}


@deliverability_app.command("check")
def check_command(
    rules_file: Annotated[Path, typer.Argument(help="The campaign's rules file.")],
    format_: Annotated[str, typer.Option("--format", help="table (terminal) or json.")] = "table",
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of sent e-mail the complaint rate covers.")] = 30,
    sample: Annotated[int, typer.Option(min=1, max=100, help="Sample messages per variant.")] = 5,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too (exit status 1).", metavar="")] = False,
) -> None:
    """Lint the campaign's e-mail: DKIM, one-click unsubscribe, unsubscribe link, text part, size, complaints."""
    from orchestrator.wave.deliverability import check_deliverability

    if format_ not in ("table", "json"):
        raise typer.BadParameter("--format is table or json")
    try:
        report = check_deliverability(get_settings(), rules_file, days=days, sample=sample)
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{rules_file}: {len(exc.errors)} error(s); the campaign cannot be checked", code=2) from exc
    except ValueError as exc:  # the campaign sends no e-mail
        raise fail(f"{rules_file}: {exc}", code=2) from exc
    if format_ == "json":
        console.print_json(json.dumps(report.as_dict()))
    else:
        table = Table(title=f"Deliverability of {escape(report.campaign)} (From {escape(report.sender)})")
        for column in ("check", "result", "finding"):
            table.add_column(column)
        for f in report.findings:
            table.add_row(f.check, f"[{_STYLE[f.status]}]{f.status}[/]", escape(f.message))
        console.print(table)
        console.print(f"{report.errors} error(s), {report.warnings} warning(s) in {report.sample} sample message(s)")
    if report.errors or (strict and report.warnings):
        raise typer.Exit(1)
