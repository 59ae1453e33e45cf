"""The ``campaign`` command line.

Commands: ``db upgrade|current``, ``import customers FILE``, ``validate FILE...``,
``run FILE [--dry-run]`` and ``demo``. Exit status 0 on success, 1 when input is invalid or
a wave could not finish (the output says why and what to do), 2 on wrong usage.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from channels.base import DeliveryError
from flows.run import run_cycle
from orchestrator.cli import launch
from orchestrator.cli.api import api_command
from orchestrator.cli.deliverability import deliverability_app
from orchestrator.cli.dlq import dlq_app
from orchestrator.cli.erase import erase_command
from orchestrator.cli.models import models_app
from orchestrator.cli.output import console, err, fail, print_problems
from orchestrator.cli.policy import policy_app, suppressions_app
from orchestrator.cli.report import (
    global_report_command,
    import_conversions_command,
    import_results_command,
    report_command,
)
from orchestrator.cli.retrain import retrain_command
from orchestrator.cli.serve import serve_command
from orchestrator.errors import ValidationFailed
from orchestrator.execution import progress
from orchestrator.settings import Settings, get_settings
from orchestrator.wave.console import print_channels, print_funnel, print_losses, print_summary

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Multi-channel campaign orchestration engine.")
db_app = typer.Typer(no_args_is_help=True, help="Engine database schema.")
import_app = typer.Typer(no_args_is_help=True, help="Load data into the engine database.")
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(suppressions_app, name="suppressions")
app.add_typer(policy_app, name="policy")
app.add_typer(models_app, name="models")
app.add_typer(dlq_app, name="dlq")
app.add_typer(deliverability_app, name="deliverability")
app.command("report")(report_command)
app.command("report-global")(global_report_command)
app.command("api")(api_command)
app.command("serve")(serve_command)
app.command("erase")(erase_command)
models_app.command("retrain")(retrain_command)
import_app.command("conversions")(import_conversions_command)
import_app.command("results")(import_results_command)


@app.callback()
def _prefect_defaults(ctx: typer.Context) -> None:
    """While a command runs, an ephemeral Prefect server it starts sends no usage telemetry (unless told otherwise);
    every file it writes is its user's alone (umask 077: files 0600, folders 0700)."""
    os.umask(0o077)
    ctx.with_resource(analytics_opt_out())


def analytics_opt_out():
    """Prefect settings whose default for ``PREFECT_SERVER_ANALYTICS_ENABLED`` is false; a value set in the
    environment, `.env` or a Prefect profile still wins. The ephemeral server (started by the first flow
    run without ``PREFECT_API_URL``) gets the current Prefect settings as its environment."""
    from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings

    return temporary_settings(set_defaults={PREFECT_SERVER_ANALYTICS_ENABLED: False})


# --- db -----------------------------------------------------------------------------------


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


# --- import -------------------------------------------------------------------------------


@import_app.command("customers")
def import_customers_command(
    file: Annotated[Path, typer.Argument(help="CSV (optionally .gz) or Parquet file.")],
    delimiter: Annotated[str | None, typer.Option(help="Field delimiter; sniffed when omitted.")] = None,
    header: Annotated[
        bool | None,
        typer.Option("--header/--no-header", help="Whether the first line names the columns; sniffed when omitted."),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option(help="Column holding the customer id; generated from the row number when omitted.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Import nothing if any row cannot be read.")] = False,
) -> None:
    """Load customers into the customer table (re-import updates by id)."""
    from orchestrator.customers.importer import ImportFailed, import_customers
    from orchestrator.db.engine import connect

    settings = get_settings()
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
                strict=strict,
                progress=advance,
            )
    except ImportFailed as exc:
        raise fail(str(exc)) from exc
    for bad in report.bad_rows[:50]:
        err.print(f"[yellow]{escape(f'{file}:{bad.line}: {bad.reason}')}[/]", highlight=False)
    if len(report.bad_rows) > 50:
        err.print(f"[yellow]... and {len(report.bad_rows) - 50} more unreadable rows[/]")
    table = Table(title=f"Imported {file.name}", show_header=False)
    for label, value in (
        ("rows read", report.rows_read),
        ("imported", report.rows_imported),
        ("new customers", report.inserted),
        ("updated customers", report.updated),
        ("unreadable rows (skipped)", len(report.bad_rows)),
        ("erased customers (skipped)", report.erased_skipped),
        ("columns", len(report.columns)),
        ("ids", "generated from row numbers" if report.id_generated else "from the file"),
    ):
        table.add_row(label, str(value))
    console.print(table)
    renamed = {k: v for k, v in report.renamed.items() if k != v}
    if renamed:
        console.print("renamed columns: " + ", ".join(f"{k} -> {v}" for k, v in renamed.items()), highlight=False)


# --- validate -----------------------------------------------------------------------------


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Rules files to check.")]) -> None:
    """Check rules files against the schema, the customer table and their templates."""
    from orchestrator.customers.table import customer_columns
    from orchestrator.db.engine import connect
    from orchestrator.wave.validation import has_errors, validate_campaign

    settings = get_settings()
    engine = connect(settings)
    columns = customer_columns(engine, settings.database.customer_table)
    failed = False
    for file in files:
        problems = validate_campaign(settings, file, columns, engine).problems
        print_problems(problems)
        failed |= has_errors(problems)
        if not has_errors(problems):
            console.print(f"[green]{file}: ok[/]", highlight=False)
    if failed:
        raise typer.Exit(1)


# --- run ----------------------------------------------------------------------------------


def _prepare_cycle(rules_files: list[Path], wave: str | None):
    """Validate, select and plan (with the funnel); on invalid input or a blocked day, print why and exit 1."""
    from orchestrator.wave import stages

    settings = get_settings()
    try:
        prepared, plans = stages.prepare_cycle(settings, rules_files, wave)
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{', '.join(map(str, rules_files))}: {len(exc.errors)} error(s)") from exc
    except stages.WaveBlocked as exc:
        raise fail(str(exc)) from exc
    return settings, prepared, plans


@app.command()
def explain(
    rules_files: Annotated[list[Path], typer.Argument(help="Rules file(s); several are planned as one cycle.")],
    wave: Annotated[
        str | None, typer.Option(help="Wave label or date the rules are evaluated at; today when omitted.")
    ] = None,
) -> None:
    """Show how many customers each condition, list, policy filter, score cut, arbitration and channel keeps."""
    _settings, _prepared, plans = _prepare_cycle(rules_files, wave)
    for plan in plans:
        if len(plans) > 1:
            console.print(f"[bold]{escape(plan.spec.name)}[/] (priority {plan.spec.priority})")
        print_funnel(console, [vars(step) for step in plan.selection.funnel])
        print_channels(console, plan)
    if len(plans) > 1:
        print_losses(console, plans)


@app.command()
def preview(
    rules_file: Annotated[Path, typer.Argument(help="The campaign's rules file.")],
    n: Annotated[int, typer.Option("--n", min=1, max=100, help="Customers per variant.")] = 5,
    output: Annotated[
        Path | None, typer.Option(help="HTML file to write; default var/preview/<campaign>.html.")
    ] = None,
    wave: Annotated[str | None, typer.Option(help="Wave label or date; today when omitted.")] = None,
) -> None:
    """Render the messages of a few sampled customers per channel and variant, to the terminal and an HTML file."""
    from rich.panel import Panel
    from rich.text import Text

    from orchestrator.wave.preview import preview_messages, write_html

    settings, prepared, plans = _prepare_cycle([rules_file], wave)
    messages = preview_messages(settings, prepared[0], plans[0], n)
    for m in messages:
        title = f"{m.channel}: customer {m.customer_id}" + (f", variant {m.variant}" if m.variant else "")
        if m.parts is None:
            console.print(Panel(Text(m.error or "", style="red"), title=escape(title)))
        else:
            console.print(Panel(Text(m.body), title=escape(f"{title}: {m.headline}")))
    name = prepared[0].spec.name
    path = write_html(output or settings.paths.data_dir / "preview" / f"{name}.html", name, messages)
    console.print(f"{len(messages)} message(s) written to {path}")
    if any(m.parts is None for m in messages):
        raise typer.Exit(1)


def _seed(rules_files: list[Path], wave: str | None, test_to: str, n: int, *, as_json: bool) -> None:
    """``run --test-to``: the sample e-mails to the test addresses (``orchestrator.wave.seed``); records nothing."""
    from orchestrator.wave.seed import parse_test_addresses, send_test_messages

    if len(rules_files) != 1:
        raise fail("--test-to sends one campaign's sample; give one rules file")
    try:
        recipients = parse_test_addresses(test_to)
    except ValueError as exc:
        raise fail(str(exc), code=2) from exc
    settings, prepared, plans = _prepare_cycle(rules_files, wave)
    try:
        report = send_test_messages(settings, prepared[0], plans[0], recipients, n)
    except ValueError as exc:  # no e-mail channel; DKIM required but no key
        raise fail(f"{rules_files[0]}: {exc}") from exc
    except DeliveryError as exc:
        raise fail(f"test send failed: {exc}") from exc
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
    else:
        console.print(
            f"test send of {report.campaign}: {report.rendered} sample message(s) ({', '.join(report.variants)}) "
            f"x {len(recipients)} address(es) = {report.sent} sent, marked [TEST]; nothing recorded",
            highlight=False,
        )
    for problem in report.failed:
        err.print(f"[yellow]{escape(problem)}[/]", highlight=False)
    if report.failed:
        raise typer.Exit(1)


def with_execution(settings: Settings, **values: object) -> Settings:
    """``settings`` with the execution options given (not None) in place of the configured ones, validated.

    The flow gets the object from ``flows.run.run_cycle``, not as flow parameters, so it
    needs no environment change; raises ``ValidationError`` for a value out of bounds.
    """
    given = {name: value for name, value in values.items() if value is not None}
    execution = type(settings.execution).model_validate(settings.execution.model_dump() | given)
    return settings.model_copy(update={"execution": execution})


@app.command()
def run(
    rules_files: Annotated[
        list[Path], typer.Argument(help="Rules file(s); several run as one cycle (arbitration, shared capacity).")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Select and render, record and send nothing.")] = False,
    wave: Annotated[str | None, typer.Option(help="Wave label; today's date when omitted.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    task_runner: Annotated[
        str | None,
        typer.Option(
            "--task-runner", help="threads: chunks run in this process; dask: on a Dask cluster (prefect-dask)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Chunks at once: threads, or local Dask worker processes.")
    ] = None,
    dask_address: Annotated[
        str | None, typer.Option(help="Scheduler address of an existing Dask cluster; unset: a local cluster.")
    ] = None,
    chunk_size: Annotated[
        int | None, typer.Option(help="Customers per chunk task (scoring, rendering, sending).")
    ] = None,
    test_to: Annotated[
        str | None,
        typer.Option(
            "--test-to",
            help="Seed test: send a sample of the e-mails to these internal addresses (comma-separated), "
            "marked [TEST]; no wave is recorded and no customer is contacted.",
        ),
    ] = None,
    test_sample: Annotated[int, typer.Option(min=1, max=20, help="With --test-to: customers per variant.")] = 3,
) -> None:
    """Run one wave of one or more campaigns as a Prefect flow."""
    from orchestrator.wave.stages import WaveBlocked, WaveIncomplete

    if test_to is not None:
        _seed(rules_files, wave, test_to, test_sample, as_json=as_json)
        return

    if not as_json:
        progress.enable(err)
    label = ", ".join(str(f) for f in rules_files)
    options: dict[str, Any] = {
        "task_runner": task_runner,
        "workers": workers,
        "dask_address": dask_address,
        "chunk_size": chunk_size,
    }
    try:
        settings = with_execution(get_settings(), **options)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise fail(f"--{str(error['loc'][0]).replace('_', '-')}: {error['msg']}") from exc
    loaded = time.perf_counter() - launch.STARTED

    def started(prefect_seconds: float) -> None:
        if not as_json:
            err.print(
                f"engine loaded in {loaded:.1f} s, Prefect started in {prefect_seconds:.1f} s (not part of any stage)",
                highlight=False,
            )

    try:
        summaries = run_cycle(settings, rules_files, wave=wave, dry_run=dry_run, on_started=started)
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{label}: {len(exc.errors)} error(s); nothing was recorded or sent") from exc
    except (WaveIncomplete, WaveBlocked) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(summaries[0] if len(summaries) == 1 else summaries))
    else:
        for summary in summaries:
            print_summary(console, summary)
    errors = [problem for summary in summaries for problem in summary["render_problems"]]
    if any(summary["render_errors"] for summary in summaries):
        for problem in errors:
            err.print(f"[red]{escape(problem)}[/]", highlight=False)
        raise fail(f"{sum(s['render_errors'] for s in summaries)} message(s) failed to render")


@app.command()
def demo(
    customers: Annotated[
        int, typer.Option(min=100, max=2_000_000, help="Size of the synthetic customer base.")
    ] = 20_000,
    output: Annotated[Path, typer.Option(help="Folder for the demo's database and e-mails (emptied first).")] = Path(
        "demo-output"
    ),
) -> None:
    """The whole loop on local servers: three waves, outcomes posted back, retraining, success reports."""
    from orchestrator.demo.run import DemoFilesMissing, run_demo

    progress.enable(err)
    try:
        run_demo(output, customers, console=console)
    except DemoFilesMissing as exc:
        raise fail(str(exc)) from exc


def main() -> None:  # pragma: no cover
    app()
