"""``campaign report`` and ``campaign import conversions|results``: success control from the command line.

* ``report CAMPAIGN [--wave KEY ...] [--format table|json] [--html FILE]``: treated against
  control per wave, channel, variant and score decile (``orchestrator.success.report``), measured as
  the campaign's rules file says (``success:``); for imported historical results name the
  outcome (``--outcome visited``) and the money column (``--revenue spend``). ``--by COLUMN``
  (repeatable) breaks the lift down by customer columns as they were at selection time;
  ``--covariate COLUMN`` adds covariates to the regression adjustment; ``--as-of DATE`` reads
  the report as of that day (which windows are open).
* ``report-global [--month YYYY-MM ...]``: the global control group against everybody else, per
  month: what all campaigns together add (``orchestrator.success.global_control``).
* ``import conversions FILE [--strict]``: purchases/goals to attribute to waves.
* ``import results FILE --campaign NAME --arm-column arm --control-label control --outcome visited ...
  [--covariate COLUMN ...] [--generate-ids]``: a campaign run elsewhere, with pre-period covariates
  (``--generate-ids`` for a file without a customer id column).

Registered in ``cli.py``: ``report_command`` as ``report``, the import commands on ``import_app``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import console, err, fail, get_settings, print_json, print_problems
from orchestrator.errors import ValidationFailed
from orchestrator.success.campaign import build_campaign_report

__all__ = ["global_report_command", "import_conversions_command", "import_results_command", "report_command"]


def report_command(
    campaign: Annotated[str, typer.Argument(help="Campaign name (as in its rules file or import).")],
    wave: Annotated[list[str] | None, typer.Option(help="Only these waves (repeat the option).")] = None,
    format_: Annotated[str, typer.Option("--format", help="table (terminal) or json.")] = "table",
    html: Annotated[Path | None, typer.Option(help="Also write an HTML report with charts to this file.")] = None,
    outcome: Annotated[str | None, typer.Option(help="Imported results: the outcome column that is success.")] = None,
    revenue: Annotated[str | None, typer.Option(help="Imported results: the money outcome column.")] = None,
    by: Annotated[
        list[str] | None, typer.Option(help="Break the lift down by this customer column (repeat the option).")
    ] = None,
    covariate: Annotated[
        list[str] | None, typer.Option(help="Also adjust the lift for this numeric customer column (repeat).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Read the report as of this day (default today).")
    ] = None,
) -> None:
    """Success control: treated against control, lift with confidence, revenue, cost, ROI."""
    from orchestrator.success.data import CampaignNotFound
    from orchestrator.success.html_page import write_html
    from orchestrator.success.terminal import print_report

    if format_ not in ("table", "json"):
        raise typer.BadParameter("--format is table or json")
    day = _day(as_of, "--as-of")
    try:
        report = build_campaign_report(
            get_settings(),
            campaign,
            waves=wave,
            outcome=outcome,
            revenue=revenue,
            covariates=covariate,
            by=by,
            as_of=day,
        )
    except CampaignNotFound as exc:
        raise fail(str(exc)) from exc
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"the rules file of {campaign} has errors") from exc
    if html is not None:  # a message, so on stderr: with --format json stdout holds only the JSON
        err.print(f"HTML report written to {escape(str(write_html(report, html)))}", highlight=False, soft_wrap=True)
    if format_ == "json":
        print_json(report.to_dict())
    else:
        print_report(report, console)


def import_conversions_command(
    file: Annotated[Path, typer.Argument(help="CSV (or .csv.gz): customer_id, occurred_at, amount[, product].")],
    strict: Annotated[bool, typer.Option(help="Import nothing if any row is bad.", metavar="")] = False,
) -> None:
    """Import conversions (purchases, goals) to attribute to waves."""
    from orchestrator.db.engine import connect
    from orchestrator.responses.conversions import import_conversions

    try:
        report = import_conversions(connect(get_settings()), file, strict=strict)
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{file}: nothing was imported") from exc
    print_problems(report.bad_rows)
    table = Table(title=f"Conversions from {file.name}", show_header=False)
    for label, value in (
        ("rows read", report.rows_read),
        ("imported", report.imported),
        ("imported before", report.duplicates),
        ("bad rows (skipped)", len(report.bad_rows)),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    if report.bad_rows:
        raise typer.Exit(1)


def import_results_command(
    file: Annotated[Path, typer.Argument(help="CSV: one row per customer with arm and outcome columns.")],
    campaign: Annotated[str, typer.Option(help="Name for the campaign in the ledger.")],
    outcome: Annotated[list[str], typer.Option(help="Outcome column (repeat): binary (0/1, yes/no) or money.")],
    arm_column: Annotated[str, typer.Option(help="Column naming each customer's arm.")] = "arm",
    control_label: Annotated[str, typer.Option(help="The arm value of the control group.")] = "control",
    id_column: Annotated[str, typer.Option(help="Column with the customer id.")] = "customer_id",
    generate_ids: Annotated[
        bool,
        typer.Option(
            "--generate-ids",
            help="The file has no id column: give each row an id of its own (campaign/wave/row).",
            metavar="",
        ),
    ] = False,
    wave: Annotated[str | None, typer.Option(help="Wave key; default the file name.")] = None,
    wave_date: Annotated[str | None, typer.Option("--date", help="Date the campaign ran, e.g. 2026-03-01.")] = None,
    covariate: Annotated[
        list[str] | None,
        typer.Option(help="Numeric column known before the campaign (e.g. last year's spend), for CUPED (repeat)."),
    ] = None,
) -> None:
    """Import the results of a campaign run elsewhere (arms and outcomes per customer)."""
    from orchestrator.db.engine import connect
    from orchestrator.responses.results_import import import_results
    from orchestrator.rules.spec import SLUG

    if not SLUG.match(campaign):
        raise typer.BadParameter("use lower-case letters, digits, '-' and '_'", param_hint="--campaign")
    try:
        day = date.fromisoformat(wave_date) if wave_date else None
    except ValueError as exc:
        raise typer.BadParameter(f"'{wave_date}' is not a date like 2026-03-01", param_hint="--date") from exc
    try:
        report = import_results(
            connect(get_settings()),
            file,
            campaign=campaign,
            arm_column=arm_column,
            control_label=control_label,
            outcome_columns=outcome,
            id_column=id_column,
            wave_key=wave,
            wave_date=day,
            settings=get_settings(),
            covariates=covariate,
            generate_ids=generate_ids,
        )
    except ValidationFailed as exc:
        print_problems(exc.problems)
        raise fail(f"{file}: nothing was imported") from exc
    if report.already_imported:
        console.print(f"wave '{report.wave}' of campaign '{campaign}' was imported before; nothing changed")
        return
    table = Table(title=f"Results of {campaign}, wave {report.wave}", show_header=False)
    table.add_row("customers", f"{report.customers:,}")
    for arm, n in report.arms.items():
        table.add_row(f"arm {arm}" + (" (control)" if arm == control_label else ""), f"{n:,}")
    for column, kind in report.outcomes.items():
        table.add_row(f"outcome {column}", kind)
    if report.covariates:
        table.add_row("covariates", ", ".join(report.covariates))
    table.add_row("outcome events", f"{report.events:,}")
    console.print(table)
    console.print(f"analyse it with: campaign report {campaign}")


def global_report_command(
    month: Annotated[list[str] | None, typer.Option(help="Only this month, e.g. 2026-03 (repeat the option).")] = None,
    format_: Annotated[str, typer.Option("--format", help="table (terminal) or json.")] = "table",
    html: Annotated[Path | None, typer.Option(help="Also write the report as an HTML page to this file.")] = None,
) -> None:
    """What marketing as a whole adds: the global control group against everybody else, per month."""
    from orchestrator.db.engine import connect
    from orchestrator.success.global_control import NoGlobalControl, global_control_report
    from orchestrator.success.global_render import print_global_report, write_global_html

    if format_ not in ("table", "json"):
        raise typer.BadParameter("--format is table or json")
    settings = get_settings()
    try:
        report = global_control_report(connect(settings), settings, months=month)
    except NoGlobalControl as exc:
        raise fail(str(exc)) from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from exc
    if html is not None:
        err.print(
            f"HTML report written to {escape(str(write_global_html(report, html)))}", highlight=False, soft_wrap=True
        )
    if format_ == "json":
        print_json(report.to_dict())
    else:
        print_global_report(report, console)


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"'{text}' is not a date like 2026-03-01", param_hint=option) from exc
