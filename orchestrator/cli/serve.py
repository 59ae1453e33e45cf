"""``campaign serve [--register-only]``: the scheduled campaigns as Prefect deployments.

Reads the rules folder (``CAMPAIGN_PATHS_RULES_DIR``), prints a table of the deployments
(flow/name, schedule, time zone, next runs) and of the rules files that got none and why
(not a campaign, errors with ``file:line:col``, no ``schedule:``, in a cycle), then serves them until
stopped (Ctrl-C), or with ``--register-only`` only registers them with the Prefect API
(``PREFECT_API_URL``) and returns. The work is in ``flows.deployments``.

Registered in ``cli.py`` as ``app.command("serve")(serve_command)``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import console, err, fail, get_settings, print_problems

__all__ = ["serve_command"]


def _schedule_text(deployment) -> tuple[str, str]:
    """(what, time zone) of a RunnerDeployment's first schedule."""
    if not deployment.schedules:
        return "by hand", ""
    schedule = deployment.schedules[0].schedule
    if getattr(schedule, "cron", None):
        what = f"cron {schedule.cron}"
    elif getattr(schedule, "interval", None):
        what = f"every {int(schedule.interval.total_seconds() // 60)} min"
    else:
        what = f"rrule {schedule.rrule}"
    return what, schedule.timezone or "UTC"


def serve_command(
    register_only: Annotated[
        bool,
        typer.Option(
            "--register-only",
            help="Register the deployments with the Prefect API and return; do not serve.",
            metavar="",
        ),
    ] = False,
) -> None:
    """Deploy the scheduled campaigns (waves, success reports, retraining) to Prefect and serve them."""
    from flows.deployments import apply_plan, next_runs, plan_deployments, schedule_spec, serve_deployments

    settings = get_settings()
    if not settings.paths.rules_dir.is_dir():
        raise fail(f"rules folder {settings.paths.rules_dir} does not exist (CAMPAIGN_PATHS_RULES_DIR)")
    plan = plan_deployments(settings)
    table = Table(title=f"Deployments of {settings.paths.rules_dir}")
    table.add_column("deployment", overflow="fold")
    table.add_column("schedule", overflow="fold")
    table.add_column("time zone")
    table.add_column("next runs", overflow="fold")
    for deployment in plan.deployments:
        what, tz = _schedule_text(deployment)
        schedules = deployment.schedules or []
        wave = deployment.flow_name in ("campaign_wave", "campaign_cycle") and schedules
        spec = schedule_spec(schedules[0].schedule) if wave else None
        runs = ", ".join(f"{t:%a %Y-%m-%d %H:%M}" for t in next_runs(spec)) if spec else ""
        table.add_row(escape(f"{deployment.flow_name}/{deployment.name}"), escape(what), escape(tz), runs)
    console.print(table)
    for skipped in plan.skipped:
        if skipped.reason == "errors":
            print_problems(list(skipped.problems))
            err.print(f"[red]{escape(str(skipped.path))}: has errors, not deployed[/]", highlight=False)
        elif skipped.reason in ("no schedule", "in a cycle"):
            console.print(f"{escape(str(skipped))}", highlight=False)
        else:
            console.print(f"[dim]{escape(str(skipped))}[/]", highlight=False)
    if not plan.deployments:
        raise fail(f"no scheduled campaign in {settings.paths.rules_dir}: nothing to deploy")
    if register_only:
        ids = apply_plan(plan, settings)
        console.print(f"{len(ids)} deployment(s) registered; `campaign serve` starts their scheduled runs")
        broken = [s for s in plan.skipped if s.reason == "errors"]
        if broken:
            raise fail(f"{len(broken)} rules file(s) with errors were not deployed")
        return
    console.print("serving; scheduled runs start here until Ctrl-C (the schedules are paused on exit)")
    serve_deployments(settings, plan)
