"""``campaign db upgrade|current`` and ``campaign import customers FILE``: the engine database and its customers.

``db_app`` (the ``db`` group) and ``import_customers_command`` are registered in ``main.py``
(``app.add_typer(db_app, name="db")``, ``import_app.command("customers")(import_customers_command)``).
Loading customers is ``orchestrator.customers.importer``; this module parses the options, shows
progress and prints the import's summary (counts, how the file was read, each column's type and why).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import console, err, fail, get_settings
from orchestrator.execution import progress

__all__ = ["db_app", "import_customers_command"]

db_app = typer.Typer(no_args_is_help=True, help="Engine database schema.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the engine's database migrations (also done automatically on first use)."""
    from orchestrator.db import engine as database

    settings = get_settings()
    engine = database.create_engine(settings.database_url)
    before = database.current_revision(engine)
    after = database.upgrade(engine)
    console.print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and the newest one."""
    from orchestrator.db import engine as database

    engine = database.create_engine(get_settings().database_url)
    console.print(f"current: {database.current_revision(engine) or 'empty'}; newest: {database.head_revision()}")


def import_customers_command(
    file: Annotated[Path, typer.Argument(help="CSV (optionally .gz) or Parquet file.")],
    delimiter: Annotated[
        str | None, typer.Option(help="Field delimiter: , ; | or tab; sniffed when omitted (the summary says which).")
    ] = None,
    header: Annotated[
        bool | None,
        typer.Option(
            "--header/--no-header", help="Whether the first line names the columns; sniffed when omitted.", metavar=""
        ),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding, e.g. cp1252 or latin-1; UTF-8 when omitted.")
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(help="Column holding the customer id; default the column named customer_id (or 'Customer ID')."),
    ] = None,
    generate_ids: Annotated[
        bool,
        typer.Option(
            "--generate-ids",
            help="The file has no ids: add every row as a new customer (never updates anyone).",
            metavar="",
        ),
    ] = False,
    text: Annotated[
        list[str] | None, typer.Option("--text", help="Keep this column as text, e.g. codes like 00123 (repeat).")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Import nothing if any row cannot be read.", metavar="")] = False,
    reject_file: Annotated[
        Path | None,
        typer.Option(
            help="Where to copy skipped rows (reasons in the same name with .txt); default under var/rejects."
        ),
    ] = None,
) -> None:
    """Load customers into the customer table (re-import updates by id).

    Rows that cannot be read are skipped, counted and copied to a reject file (--strict: import
    nothing). A file without an id column is refused when the table already has customers,
    unless --generate-ids. Exit status 0 when the file was imported, 1 when it was refused
    (nothing imported), 2 on wrong usage.
    """
    from orchestrator.customers.importer import ImportFailed, import_customers
    from orchestrator.db.engine import connect
    from orchestrator.settings import private_dir

    settings = get_settings()
    delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter or "", delimiter)
    if delimiter is not None and len(delimiter) != 1:
        raise typer.BadParameter("one character, or 'tab'", param_hint="--delimiter")
    if reject_file is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        kind = ".parquet" if file.suffix.lower() in (".parquet", ".pq") else ".csv"
        reject_file = private_dir(settings.paths.data_dir / "rejects") / f"{file.name}-{stamp}.rejected{kind}"
    progress.enable(err)
    try:
        with progress.progress(f"import {file.name}", None) as advance:
            report = import_customers(
                connect(settings),
                file,
                table=settings.database.customer_table,
                delimiter=delimiter,
                header=header,
                id_column=id_column,
                encoding=encoding,
                generate_ids=generate_ids,
                text_columns=text or (),
                strict=strict,
                reject_file=reject_file,
                progress=advance,
            )
    except ImportFailed as exc:
        raise fail(str(exc)) from exc
    _print_import_report(file, report)


def _print_import_report(file: Path, report: Any) -> None:
    """The summary of ``campaign import customers``: counts, how the file was read, each column's type and why."""
    for bad in report.bad_rows[:50]:
        err.print(f"[yellow]{escape(f'{file}:{bad.line}: {bad.reason}')}[/]", highlight=False)
    if len(report.bad_rows) > 50:
        err.print(f"[yellow]... and {len(report.bad_rows) - 50} more unreadable rows[/]")
    table = Table(title=f"Imported {file.name}", show_header=False)
    for label, value in (
        ("rows read", f"{report.rows_read:,}"),
        ("imported", f"{report.rows_imported:,}"),
        ("new customers", f"{report.inserted:,}"),
        ("updated customers", f"{report.updated:,}"),
        ("unreadable rows (skipped)", f"{len(report.bad_rows):,}"),
        ("erased customers (skipped)", f"{report.erased_skipped:,}"),
        ("ids", report.ids),
        *report.layout.items(),
    ):
        table.add_row(label, escape(str(value)))
    console.print(table)
    types = Table(title="Columns", show_header=True)
    types.add_column("column")
    types.add_column("type: why")
    for name, reason in report.types.items():
        types.add_row(escape(name), escape(reason))
    console.print(types)
    renamed = {k: v for k, v in report.renamed.items() if k != v}
    if renamed:
        console.print(
            escape("renamed columns: " + ", ".join(f"{k} -> {v}" for k, v in renamed.items())), highlight=False
        )
    if report.bad_rows:
        rejects = report.reject_file
        where = f"; they are in {rejects} (reasons: {rejects.with_suffix('.txt')})" if rejects else ""
        err.print(
            escape(f"warning: {len(report.bad_rows):,} row(s) of {file} were skipped" + where)
            + "; correct them and import that file, or use --strict to import nothing when a row is bad",
            style="yellow",
            highlight=False,
        )
