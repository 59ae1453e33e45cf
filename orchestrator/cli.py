"""The ``campaign`` command line.

Commands: ``db upgrade|current``, ``import customers FILE``, ``validate FILE...``,
``run FILE [--dry-run]`` and ``demo``. Exit status 0 on success, 1 when input is invalid or
a wave could not finish (the output says why and what to do), 2 on wrong usage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from orchestrator import progress
from orchestrator.cli_api import api_command
from orchestrator.cli_dlq import dlq_app
from orchestrator.cli_retrain import retrain_command
from orchestrator.cli_serve import serve_command
from orchestrator.cli_report import import_conversions_command, import_results_command, report_command
from orchestrator.cli_models import models_app
from orchestrator.cli_policy import policy_app, suppressions_app
from orchestrator.cli_output import console, err, fail, print_problems
from orchestrator.problems import ValidationFailed
from orchestrator.settings import ExecutionSettings, get_settings

# The embedded Prefect server would try to send usage telemetry; opt out unless told otherwise.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Multi-channel campaign orchestration engine.")
db_app = typer.Typer(no_args_is_help=True, help="Engine database schema.")
import_app = typer.Typer(no_args_is_help=True, help="Load data into the engine database.")
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(suppressions_app, name="suppressions")
app.add_typer(policy_app, name="policy")
app.add_typer(models_app, name="models")
app.add_typer(dlq_app, name="dlq")
app.command("report")(report_command)
app.command("api")(api_command)
app.command("serve")(serve_command)
models_app.command("retrain")(retrain_command)
import_app.command("conversions")(import_conversions_command)
import_app.command("results")(import_results_command)

# --- db -----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the engine's database migrations (also done automatically on first use)."""
    from orchestrator import database

    settings = get_settings()
    engine = database.create_engine(settings.database_url)
    before = database.current_revision(engine)
    after = database.upgrade(engine)
    console.print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and the newest one."""
    from orchestrator import database

    engine = database.create_engine(get_settings().database_url)
    console.print(f"current: {database.current_revision(engine) or 'empty'}; newest: {database.head_revision()}")


# --- import -------------------------------------------------------------------------------


@import_app.command("customers")
def import_customers_command(
    file: Annotated[Path, typer.Argument(help="CSV (optionally .gz) or Parquet file.")],
    delimiter: Annotated[Optional[str], typer.Option(help="Field delimiter; sniffed when omitted.")] = None,
    header: Annotated[Optional[bool], typer.Option("--header/--no-header", help="Whether the first line names the columns; sniffed when omitted.")] = None,
    id_column: Annotated[Optional[str], typer.Option(help="Column holding the customer id; generated from the row number when omitted.")] = None,
    strict: Annotated[bool, typer.Option(help="Import nothing if any row cannot be read.")] = False,
) -> None:
    """Load customers into the customer table (re-import updates by id)."""
    from orchestrator.customers import ImportFailed, import_customers
    from orchestrator.database import connect

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
    from orchestrator.customer_table import customer_columns
    from orchestrator.database import connect
    from orchestrator.validation import has_errors, validate_campaign

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


def print_summary(summary: dict) -> None:
    title = f"Campaign {summary['campaign']}, wave {summary['wave']}" + (" (dry run)" if summary["dry_run"] else "")
    table = Table(title=title, show_header=False)
    rows = [("selected", summary["selected"]), ("treatment", summary["treated"]), ("control (not contacted)", summary["control"])]
    if summary.get("global_control"):
        rows.append(("global control (held out of every campaign)", summary["global_control"]))
    if summary["dry_run"]:
        rows += [("rendered", summary["rendered"]), ("render errors", summary["render_errors"])]
    else:
        rows += [
            ("sent in this run", summary["sent_this_run"]),
            ("sent in total", summary.get("ledger_sent", 0)),
            ("failed (permanent)", summary.get("ledger_failed", 0)),
            ("skipped (invalid address, render error)", summary.get("ledger_skipped", 0)),
            ("still pending", summary.get("ledger_pending", 0)),
            ("wave status", summary["status"]),
        ]
    for channel, n in sorted((summary.get("channels") or {}).items()):
        rows.append((f"treated on {channel}", n))
    for winner, n in sorted((summary.get("lost_to") or {}).items()):
        rows.append((f"lost to campaign {winner}", n))
    if summary.get("waiting_for_capacity"):
        rows.append(("waiting for channel capacity", summary["waiting_for_capacity"]))
    if summary.get("dead_batches"):
        rows.append(("task lists rejected (campaign dlq list)", summary["dead_batches"]))
    for label, value in rows:
        table.add_row(escape(label), str(value))
    if summary.get("funnel"):
        print_funnel(summary["funnel"])
    console.print(table)


def print_funnel(funnel: list[dict]) -> None:
    """The selection funnel as a table: customers left after each filter."""
    table = Table(title="Selection funnel")
    table.add_column("stage")
    table.add_column("filter")
    table.add_column("removed", justify="right")
    table.add_column("remaining", justify="right")
    for step in funnel:
        removed = f"-{step['removed']:,}" if step["removed"] else ""
        table.add_row(escape(step["stage"]), escape(step["label"]), removed, f"{step['remaining']:,}")
    console.print(table)


def _prepare_cycle(rules_files: list[Path], wave: str | None):
    """Validate, select and plan (with the funnel); on invalid input or a blocked day, print why and exit 1."""
    from orchestrator import wave as stages

    settings = get_settings()
    try:
        prepared = [stages.prepare(settings, f, wave) for f in rules_files]
        candidates = [stages.select_candidates(settings, p, with_funnel=True) for p in prepared]
        plans = stages.plan(settings, prepared, candidates, with_funnel=True)
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{', '.join(map(str, rules_files))}: {len(exc.errors)} error(s)") from exc
    except stages.WaveBlocked as exc:
        raise fail(str(exc)) from exc
    return settings, prepared, plans


@app.command()
def explain(
    rules_files: Annotated[list[Path], typer.Argument(help="Rules file(s); several are planned as one cycle.")],
    wave: Annotated[Optional[str], typer.Option(help="Wave label or date the rules are evaluated at; today when omitted.")] = None,
) -> None:
    """Show how many customers each condition, list, policy filter, score cut, arbitration and channel keeps."""
    _settings, _prepared, plans = _prepare_cycle(rules_files, wave)
    for plan in plans:
        if len(plans) > 1:
            console.print(f"[bold]{escape(plan.spec.name)}[/] (priority {plan.spec.priority})")
        print_funnel([vars(step) for step in plan.selection.funnel])
        print_channels(plan)
    if len(plans) > 1:
        print_losses(plans)


def print_channels(plan) -> None:
    """Treated and control customers per allocated channel."""
    import numpy as np

    table = Table(title="Channels (allocation within today's capacity)")
    table.add_column("channel")
    table.add_column("treated", justify="right")
    table.add_column("control", justify="right")
    arms = plan.selection.arms
    for channel in plan.spec.channels.names():
        on = plan.channels == channel
        table.add_row(channel, f"{int(np.count_nonzero(on & (arms == 'treatment'))):,}", f"{int(np.count_nonzero(on & (arms == 'control'))):,}")
    if plan.waiting:
        table.add_row("waiting (channel full)", f"{plan.waiting:,}", "")
    console.print(table)


def print_losses(plans) -> None:
    """Arbitration: customers each campaign lost to each other one."""
    names = [p.spec.name for p in plans]
    winners = sorted({w for p in plans for w in p.lost_to} | set(names))
    table = Table(title="Arbitration: customers lost (row) to (column)")
    table.add_column("campaign")
    for w in winners:
        table.add_column(escape(w), justify="right")
    for p in plans:
        table.add_row(escape(p.spec.name), *(f"{p.lost_to.get(w, 0):,}" if w != p.spec.name else "-" for w in winners))
    console.print(table)


@app.command()
def preview(
    rules_file: Annotated[Path, typer.Argument(help="The campaign's rules file.")],
    n: Annotated[int, typer.Option("--n", min=1, max=100, help="Customers per variant.")] = 5,
    output: Annotated[Optional[Path], typer.Option(help="HTML file to write; default var/preview/<campaign>.html.")] = None,
    wave: Annotated[Optional[str], typer.Option(help="Wave label or date; today when omitted.")] = None,
) -> None:
    """Render the messages of a few sampled customers per channel and variant, to the terminal and an HTML file."""
    from rich.panel import Panel
    from rich.text import Text

    from orchestrator.preview import preview_messages, write_html

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


def run_campaign(rules_file: Path, *, wave: str | None, dry_run: bool) -> dict:
    """Run the ``campaign_wave`` flow; returns its summary or raises the stage's exception."""
    return run_cycle([rules_file], wave=wave, dry_run=dry_run)[0]


def run_cycle(rules_files: list[Path], *, wave: str | None, dry_run: bool) -> list[dict]:
    """Run one campaign as ``campaign_wave`` or several as the ``campaign_cycle`` flow; returns the summaries.

    The flow runs its chunk tasks on the task runner of the execution settings (``CAMPAIGN_EXECUTION_*``).
    """
    from flows.campaign_wave import campaign_cycle, campaign_wave
    from flows.chunk_runner import task_runner

    runner = task_runner(get_settings().execution)
    if len(rules_files) == 1:
        flow = campaign_wave.with_options(task_runner=runner)
        state = flow(str(rules_files[0]), wave_key=wave, dry_run=dry_run, return_state=True)
    else:
        flow = campaign_cycle.with_options(task_runner=runner)
        state = flow([str(f) for f in rules_files], wave_key=wave, dry_run=dry_run, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result if isinstance(result, list) else [result]


@contextmanager
def execution_overrides(**values: object) -> Iterator[None]:
    """Set ``CAMPAIGN_EXECUTION_<NAME>`` for the options given (not None) while the block runs.

    The flow reads its settings from the environment (no secret travels as a flow parameter),
    so command-line options reach it the same way.
    """
    given = {name: value for name, value in values.items() if value is not None}
    saved = {name: os.environ.get(f"CAMPAIGN_EXECUTION_{name.upper()}") for name in given}
    os.environ.update({f"CAMPAIGN_EXECUTION_{name.upper()}": str(value) for name, value in given.items()})
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(f"CAMPAIGN_EXECUTION_{name.upper()}", None)
            else:
                os.environ[f"CAMPAIGN_EXECUTION_{name.upper()}"] = value
        get_settings.cache_clear()


@app.command()
def run(
    rules_files: Annotated[list[Path], typer.Argument(help="Rules file(s); several run as one cycle (arbitration, shared capacity).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Select and render, record and send nothing.")] = False,
    wave: Annotated[Optional[str], typer.Option(help="Wave label; today's date when omitted.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    task_runner: Annotated[
        Optional[str],
        typer.Option("--task-runner", help="threads: chunks run in this process; dask: on a Dask cluster (prefect-dask)."),
    ] = None,
    workers: Annotated[Optional[int], typer.Option(help="Chunks at once: threads, or local Dask worker processes.")] = None,
    dask_address: Annotated[
        Optional[str], typer.Option(help="Scheduler address of an existing Dask cluster; unset: a local cluster.")
    ] = None,
    chunk_size: Annotated[Optional[int], typer.Option(help="Customers per chunk task (scoring, rendering, sending).")] = None,
) -> None:
    """Run one wave of one or more campaigns as a Prefect flow."""
    from orchestrator.wave import WaveBlocked, WaveIncomplete

    if not as_json:
        progress.enable(err)
    label = ", ".join(str(f) for f in rules_files)
    options = {"task_runner": task_runner, "workers": workers, "dask_address": dask_address, "chunk_size": chunk_size}
    try:
        ExecutionSettings(**{name: value for name, value in options.items() if value is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise fail(f"--{str(error['loc'][0]).replace('_', '-')}: {error['msg']}") from exc
    try:
        with execution_overrides(**options):
            summaries = run_cycle(rules_files, wave=wave, dry_run=dry_run)
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{label}: {len(exc.errors)} error(s); nothing was recorded or sent") from exc
    except (WaveIncomplete, WaveBlocked) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(summaries[0] if len(summaries) == 1 else summaries))
    else:
        for summary in summaries:
            print_summary(summary)
    errors = [problem for summary in summaries for problem in summary["render_problems"]]
    if any(summary["render_errors"] for summary in summaries):
        for problem in errors:
            err.print(f"[red]{escape(problem)}[/]", highlight=False)
        raise fail(f"{sum(s['render_errors'] for s in summaries)} message(s) failed to render")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=100, max=2_000_000, help="Size of the synthetic customer base.")] = 20_000,
    output: Annotated[Path, typer.Option(help="Folder for the demo's database and e-mails (emptied first).")] = Path("demo-output"),
) -> None:
    """The whole loop on local servers: three waves, outcomes posted back, retraining, success reports."""
    from orchestrator.demo import run_demo

    progress.enable(err)
    run_demo(output, customers, console=console)


def main() -> None:  # pragma: no cover
    app()
