"""The ``campaign`` command line: the ``app`` and its groups, ``run`` and ``demo``.

Commands: ``db upgrade|current`` and ``import customers FILE`` (``data.py``), ``validate FILE...``
(``validate.py``), ``explain`` and ``preview`` (``explain.py``), ``run FILE [--dry-run] [--yes]`` and
``demo`` (here), ``status``, ``report``, ``approve``, ``audit``, ``erase``, ``api``, ``serve`` and the
groups ``models``, ``policy``, ``suppressions``, ``dlq``, ``deliverability`` (a module each). Each
module defines its commands; this one registers them. Exit status 0 on success, 1 when input is
invalid or a wave could not finish (the output says why and what to do), 2 on wrong usage.
"""

from __future__ import annotations

import os
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from orchestrator.cli import launch
from orchestrator.cli.api import api_command
from orchestrator.cli.data import db_app, import_customers_command
from orchestrator.cli.deliverability import deliverability_app
from orchestrator.cli.dlq import dlq_app
from orchestrator.cli.erase import erase_command
from orchestrator.cli.explain import explain_command, prepare_cycle, preview_command
from orchestrator.cli.governance import approve_command, audit_command
from orchestrator.cli.models import models_app
from orchestrator.cli.output import (
    FORMAT_HELP,
    OutputFormat,
    console,
    err,
    fail,
    get_settings,
    print_json,
    print_problems,
)
from orchestrator.cli.policy import policy_app, suppressions_app
from orchestrator.cli.report import (
    global_report_command,
    import_conversions_command,
    import_results_command,
    report_command,
)
from orchestrator.cli.retrain import retrain_command
from orchestrator.cli.serve import serve_command
from orchestrator.cli.status import status_command
from orchestrator.cli.validate import validate_command
from orchestrator.errors import ValidationFailed
from orchestrator.execution import progress
from orchestrator.wave.console import print_summary

if TYPE_CHECKING:
    from orchestrator.settings import Settings

APP_HELP = """Multi-channel campaign orchestration engine.

Exit status of every command: 0 on success, 1 when input is invalid or the work could not finish (the message says why and what to do), 2 on wrong usage (an unknown option or a value not among the choices shown).

Commands that print data take --format json: one JSON document on stdout, messages on stderr.
"""  # noqa: E501 - rich wraps help text itself; a line break here would show

app = typer.Typer(no_args_is_help=True, add_completion=False, help=APP_HELP)
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
app.command("status")(status_command)
app.command("erase")(erase_command)
app.command("approve")(approve_command)
app.command("audit")(audit_command)
app.command("validate")(validate_command)
app.command("explain")(explain_command)
app.command("preview")(preview_command)
models_app.command("retrain")(retrain_command)
import_app.command("conversions")(import_conversions_command)
import_app.command("results")(import_results_command)
import_app.command("customers")(import_customers_command)


PREFECT_COMMANDS = frozenset({"run", "demo", "serve", "models"})  # the commands that may run a flow


def _print_version(value: bool) -> None:
    if value:
        import orchestrator

        console.print(f"campaign {orchestrator.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _process_defaults(
    ctx: typer.Context,
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Every file a command writes is its user's alone (umask 077: files 0600, folders 0700). Commands that
    run flows get the engine's Prefect defaults (``flows.prefect_api.prefect_defaults``: no usage telemetry
    from the temporary server, its start-up timeout ``CAMPAIGN_PREFECT_STARTUP_TIMEOUT``); the others do
    not import Prefect at all."""
    os.umask(0o077)
    if ctx.invoked_subcommand in PREFECT_COMMANDS and not {"--help", "-h"} & set(sys.argv):
        from flows.prefect_api import prefect_defaults

        ctx.with_resource(prefect_defaults(get_settings()))


# --- run ----------------------------------------------------------------------------------


def _seed(rules_files: list[Path], wave: str | None, test_to: str, n: int, *, as_json: bool) -> None:
    """``run --test-to``: the sample e-mails to the test addresses (``orchestrator.wave.seed``); records nothing."""
    from channels.base import DeliveryError
    from orchestrator.wave.seed import parse_test_addresses, send_test_messages

    if len(rules_files) != 1:
        raise fail("--test-to sends one campaign's sample; give one rules file")
    try:
        recipients = parse_test_addresses(test_to)
    except ValueError as exc:
        raise fail(str(exc), code=2) from exc
    settings, prepared, plans = prepare_cycle(rules_files, wave)
    try:
        report = send_test_messages(settings, prepared[0], plans[0], recipients, n)
    except ValueError as exc:  # no e-mail channel; DKIM required but no key
        raise fail(f"{rules_files[0]}: {exc}") from exc
    except DeliveryError as exc:
        raise fail(f"test send failed: {exc}") from exc
    if as_json:
        print_json(report.as_dict())
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


def _preflight(settings: Settings, rules_files: list[Path], wave: str | None, dry_run: bool, label: str) -> None:
    """Before Prefect: invalid input, a blocked day or an unreachable server ends here, with nothing recorded."""
    from orchestrator.wave import stages

    try:
        stages.preflight(settings, rules_files, wave, dry_run=dry_run)
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{label}: {len(exc.errors)} error(s); nothing was recorded or sent") from exc
    except (stages.WaveBlocked, stages.Unreachable) as exc:
        raise fail(str(exc)) from exc


def _run_flows(
    settings: Settings,
    rules_files: list[Path],
    wave: str | None,
    dry_run: bool,
    started: Any,
    *,
    debug: bool,
    label: str,
    confirm: Any = None,
) -> list[dict]:
    """``flows.run.run_cycle``; its errors end as one paragraph (re-raised as they are with ``debug``)."""
    from flows.prefect_api import PrefectUnavailable, console_without_tracebacks
    from flows.run import SendDeclined, run_cycle
    from orchestrator.wave import stages

    if not debug:
        console_without_tracebacks()
    try:
        return run_cycle(settings, rules_files, wave=wave, dry_run=dry_run, on_started=started, confirm=confirm)
    except SendDeclined as exc:
        raise fail(f"{label}: {exc}") from exc
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{label}: {len(exc.errors)} error(s); nothing was recorded or sent") from exc
    except (stages.WaveIncomplete, stages.WaveBlocked, stages.WaveFailed, PrefectUnavailable) as exc:
        if debug:
            raise
        raise fail(str(exc)) from exc
    except Exception as exc:
        if debug:
            raise
        first = str(exc).splitlines()[0][:500] if str(exc) else "no detail"
        raise fail(
            f"{label}: the run stopped ({type(exc).__name__}: {first}). Run it again with --debug for the "
            "traceback; what was recorded is kept and the same command resumes the wave."
        ) from exc


class TaskRunnerChoice(StrEnum):
    threads = "threads"
    dask = "dask"


RUN_HELP = """Run one wave of one or more campaigns as a Prefect flow.

A real send asks first, after selecting and planning and before anything is recorded: "send 12,400 contacts through 3 channels? [y/N]"; without a terminal to ask at, pass --yes.

Before Prefect starts, every rules file is validated, the day is checked against the contact policy and (unless --dry-run) the SMTP server of e-mail campaigns must accept a connection; each failure ends with one paragraph saying what to change (a traceback only with --debug).

Exit status: 0 when the wave was recorded and sent (or the dry run rendered), 1 when input is invalid, a server is unreachable, the day is blocked, contacts stay pending or messages failed to render (the message says which and what to run next), 2 on wrong usage.
"""  # noqa: E501 - rich wraps help text itself


@app.command(help=RUN_HELP)
def run(
    rules_files: Annotated[
        list[Path], typer.Argument(help="Rules file(s); several run as one cycle (arbitration, shared capacity).")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Select and render, record and send nothing.", metavar="")
    ] = False,
    wave: Annotated[str | None, typer.Option(help="Wave label; today's date when omitted.")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help=FORMAT_HELP)] = OutputFormat.text,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.", metavar="")] = False,
    task_runner: Annotated[
        TaskRunnerChoice | None,
        typer.Option(
            "--task-runner",
            help="threads: chunks run in this process; dask: on a Dask cluster (prefect-dask). "
            "Default CAMPAIGN_EXECUTION_TASK_RUNNER (threads).",
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
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Send without asking first (for scripts and schedulers).", metavar="")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of errors (Prefect's and the engine's).", metavar="")
    ] = False,
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
    as_json = as_json or output_format == OutputFormat.json
    if test_to is not None:
        _seed(rules_files, wave, test_to, test_sample, as_json=as_json)
        return
    if not as_json:
        progress.enable(err)
    label = ", ".join(str(f) for f in rules_files)
    options: dict[str, Any] = {
        "task_runner": task_runner.value if task_runner is not None else None,
        "workers": workers,
        "dask_address": dask_address,
        "chunk_size": chunk_size,
    }
    from pydantic import ValidationError

    try:
        settings = with_execution(get_settings(), **options)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise fail(f"--{str(error['loc'][0]).replace('_', '-')}: {error['msg']}") from exc
    if not dry_run and not yes and not _interactive():
        raise fail(
            "campaign run sends for real and asks first, but there is no terminal to ask at (stdin is not one): "
            "pass --yes to send without asking, or --dry-run to rehearse"
        )
    _preflight(settings, rules_files, wave, dry_run, label)
    loaded = time.perf_counter() - launch.STARTED

    def started(prefect_seconds: float) -> None:
        if not as_json:
            err.print(
                f"engine loaded in {loaded:.1f} s, Prefect started in {prefect_seconds:.1f} s (not part of any stage)",
                highlight=False,
            )

    def confirm(plan: Any) -> bool:
        return typer.confirm(plan.question(), default=False, err=True)

    summaries = _run_flows(
        settings,
        rules_files,
        wave,
        dry_run,
        started,
        debug=debug,
        label=label,
        confirm=None if yes or dry_run else confirm,
    )
    if as_json:
        print_json(summaries[0] if len(summaries) == 1 else summaries)
    else:
        for summary in summaries:
            print_summary(console, summary)
    errors = [problem for summary in summaries for problem in summary["render_problems"]]
    if any(summary["render_errors"] for summary in summaries):
        for problem in errors:
            err.print(f"[red]{escape(problem)}[/]", highlight=False)
        raise fail(f"{sum(s['render_errors'] for s in summaries)} message(s) failed to render")


def _interactive() -> bool:
    """Whether a person can answer at this process's standard input (a terminal)."""
    import sys

    return sys.stdin is not None and sys.stdin.isatty()


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
    from flows.prefect_api import PrefectUnavailable
    from orchestrator.demo.run import DemoFilesMissing, run_demo

    progress.enable(err)
    try:
        run_demo(output, customers, console=console)
    except (DemoFilesMissing, PrefectUnavailable) as exc:
        raise fail(str(exc)) from exc


def main() -> None:  # pragma: no cover
    app()
