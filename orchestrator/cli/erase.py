"""``campaign erase ID... [--file IDS] [--by WHO]``: erase customers' personal data everywhere.

What is removed or pseudonymised, and what stays (aggregate statistics, one ``do_not_contact``
entry per person), is ``orchestrator.ledger.erasure``'s contract. The command prints the rows
affected per kind (never an id) and the audit event it recorded. Exit status 0 when done, 1 when
the file of ids cannot be read. Registered in ``cli.py`` with ``app.command("erase")(erase_command)``.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orchestrator.cli.output import console, fail, get_settings

__all__ = ["erase_command"]


def erase_command(
    ids: Annotated[list[str] | None, typer.Argument(help="Customer ids to erase.", show_default=False)] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A text file of customer ids, one per line ('#' comments).")
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Who asks, for the audit trail (default: the user running the command).")
    ] = None,
) -> None:
    """Erase customers: delete their rows, pseudonymise the ledger, keep the statistics, block re-imports."""
    from orchestrator.db.engine import connect
    from orchestrator.ledger.erasure import erase, read_id_file

    wanted = list(ids or [])
    if file is not None:
        try:
            wanted += read_id_file(file)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise fail(f"cannot read the ids in {file}: {exc}") from None
    if not wanted:
        raise fail("name the customers to erase: campaign erase ID... or --file ids.txt", code=2)
    settings = get_settings()
    report = erase(connect(settings), settings, wanted, actor=by or f"cli:{getpass.getuser()}")
    table = Table(title=f"erasure (audit event {report.audit_id})", show_header=False)
    for name, value in report.counts.items():
        table.add_row(name.replace("_", " "), f"{value:,}")
    console.print(table)
