"""``campaign suppressions ...`` and ``campaign policy ...``: the suppression list and the policy file.

* ``suppressions import FILE --reason R [--channel C] [--source S]``: add the customer ids of a
  CSV file to the suppression list (idempotent: entries already there are left as they are).
* ``suppressions list [--reason R]``: how many customers per reason and channel (counts only).
* ``policy check [FILE]``: validate the policy file (default ``rules/policy.yaml``) against
  the customer table; problems as ``file:line:col``, exit status 1 on any error.

Registered in ``cli.py`` as ``suppressions_app`` and ``policy_app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import console, err, fail, get_settings, print_problems
from orchestrator.errors import Problem, did_you_mean
from orchestrator.rules.suppression_terms import ALL_CHANNELS, REASONS

__all__ = ["policy_app", "suppressions_app"]

NO_TABLE_WARNING = "there is no customer table yet, so the consent columns were not checked"

suppressions_app = typer.Typer(no_args_is_help=True, help="The suppression list: who must not be contacted.")
policy_app = typer.Typer(no_args_is_help=True, help="The contact policy file.")


def _reason(value: str | None) -> str | None:
    if value is not None and value not in REASONS:
        hint = did_you_mean(value, REASONS) or f"; the reasons are {', '.join(REASONS)}"
        raise typer.BadParameter(f"unknown reason '{value}'{hint}")
    return value


@suppressions_app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="CSV file of customer ids: a 'customer_id' column, or ids in the first column.")
    ],
    reason: Annotated[str, typer.Option(help=f"Why: {', '.join(REASONS)}.", callback=_reason)],
    channel: Annotated[str, typer.Option(help="Channel the entries block; '*' = every channel.")] = ALL_CHANNELS,
    source: Annotated[str | None, typer.Option(help="Where the list came from; default the file name.")] = None,
) -> None:
    """Add customers to the suppression list (entries already there are kept as they are)."""
    from orchestrator.db.engine import connect
    from orchestrator.targeting.policy import import_suppressions

    if not file.is_file():
        raise fail(f"{file}: the file does not exist")
    try:
        report = import_suppressions(connect(get_settings()), file, reason, channel, source)
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(f"{file}: {exc}") from exc
    for line, why in report.bad_rows[:50]:
        err.print(f"[yellow]{escape(f'{file}:{line}: {why}')}[/]", highlight=False)
    if len(report.bad_rows) > 50:
        err.print(f"[yellow]... and {len(report.bad_rows) - 50:,} more unreadable rows[/]")
    table = Table(title=f"Suppressions from {file.name} ({reason}, channel {channel})", show_header=False)
    for label, value in (
        ("rows read", report.rows_read),
        ("distinct customer ids", report.ids),
        ("added", report.added),
        ("already on the list", report.already_present),
        ("unreadable rows (skipped)", len(report.bad_rows)),
    ):
        table.add_row(label, str(value))
    console.print(table)


@suppressions_app.command("list")
def list_command(
    reason: Annotated[str | None, typer.Option(help="Only this reason.", callback=_reason)] = None,
) -> None:
    """How many customers are suppressed, per reason and channel (no customer data)."""
    from orchestrator.db.engine import connect
    from orchestrator.targeting.policy import suppression_counts

    counts = suppression_counts(connect(get_settings()), reason)
    table = Table(title="Suppression list")
    table.add_column("reason")
    table.add_column("channel")
    table.add_column("customers", justify="right")
    for why, channel, n in counts:
        table.add_row(why, "all" if channel == ALL_CHANNELS else channel, f"{n:,}")
    console.print(table if counts else "the suppression list is empty", highlight=False)


@policy_app.command("check")
def check_command(
    file: Annotated[Path | None, typer.Argument(help="Policy file; default policy.yaml in the rules folder.")] = None,
) -> None:
    """Check the policy file against its schema and the customer table's columns."""
    from orchestrator.customers.table import customer_columns
    from orchestrator.db.engine import connect
    from orchestrator.rules.policy_spec import load_policy

    settings = get_settings()
    path = file if file is not None else settings.paths.rules_dir / "policy.yaml"
    columns = customer_columns(connect(settings), settings.database.customer_table)
    _policy, problems = load_policy(path, columns)
    if columns is None and not any(p.severity == "error" for p in problems):
        problems.append(Problem(str(path), None, None, NO_TABLE_WARNING, "warning"))
    print_problems(problems)
    if any(p.severity == "error" for p in problems):
        raise typer.Exit(1)
    console.print(f"[green]{path}: ok[/]", highlight=False)
