"""Prefect deployments of the campaigns and cycles in the rules folder (``campaign serve``).

``plan_deployments(settings)`` reads every ``*.yaml``/``*.yml`` file directly in
``settings.paths.rules_dir`` and builds, each with a name that says what it runs and
descriptions of its parameters (shown in the Prefect UI's run form):

* ``campaign_wave/<campaign>: wave``: one per campaign whose rules file validates and has a
  ``schedule:`` (and is not part of a cycle). Parameters ``rules_path`` (absolute),
  ``wave_key=None``, ``dry_run=False`` (visible and editable in the Prefect UI); the file's cron /
  interval / rrule schedule in its time zone; tags ``campaign`` and ``campaign:<name>``; the rules
  file's description; version = the first 12 hex digits of the file's SHA-256; a deployment
  concurrency limit of 1 (collision strategy ``ENQUEUE``), so two waves of one campaign never run
  at once: a second run waits until the first one ends.
* ``campaign_cycle/<cycle>: cycle``: one per cycle file (``orchestrator.rules.cycles``: a
  top-level ``cycle:``, the ``campaigns:`` that run together and their ``schedule:``), running
  those campaigns as one cycle (arbitration, shared capacity). Parameters ``rules_paths``,
  ``wave_key``, ``dry_run``; tags ``campaign-cycle``, ``cycle:<name>`` and ``campaign:<name>`` of
  each campaign. A campaign in a cycle gets no wave deployment of its own (its own
  ``schedule:`` is ignored and reported), so it is never selected outside its cycle.
* ``success_report/<campaign>: success report``: one per deployed campaign (alone or in a cycle),
  daily (``REPORT_CRON``, 07:00 in the campaign's or cycle's time zone), parameters ``campaign``
  and ``html_path`` (``<data_dir>/reports/<campaign>.html``, which the wave runs' result
  artifacts point to); tags ``success-report`` and ``campaign:<name>``.
* ``retrain_model/<model>: retraining``: one per model a valid campaign's ``scores:`` names,
  parameters ``name``, ``campaigns`` (every campaign scoring with it) and ``kind`` (``uplift``);
  tags ``retraining`` and ``model:<name>``. Not scheduled unless ``retrain_cron`` is given
  (``CAMPAIGN_SERVE_RETRAIN_CRON``, in ``CAMPAIGN_SERVE_RETRAIN_TIMEZONE``, default UTC).

Files that are neither campaigns nor cycles (no top-level ``name:`` or ``cycle:``:
``policy.yaml``, ``capacity.yaml``, ``outcomes.yaml``; segment files live in ``segments/`` and
are not read) are skipped silently but listed; a campaign or cycle file with errors (a cycle
naming a campaign that is not in the folder or not valid, or one already in another cycle) is
not deployed and is reported with its problems (``file:line:col: message``); a campaign without
``schedule:`` is listed as unscheduled and, if it has a wave deployment from an earlier schedule,
that deployment's schedules are removed (so are those of a campaign that joined a cycle).

``apply_deployments(settings)`` registers the deployments with the Prefect API without
running anything (idempotent: re-applying updates schedules, parameters and description in
place); ``serve_deployments(settings)`` serves them with ``prefect.serve`` (blocking; flow
runs execute in this process's environment). Settings (secrets included) never go into
parameters: the flows read them from the ``CAMPAIGN_*`` environment of the process that runs
them. ``scheduled_waves()`` reads the next scheduled run of every wave and cycle deployment
back from the Prefect API (for ``campaign status``).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from uuid import UUID

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.run import campaign_tag
from orchestrator.errors import Problem, did_you_mean
from orchestrator.rules.cycles import CycleSpec, validate_cycle_file
from orchestrator.rules.loader import NO_TABLE_WARNING, validate_campaign_file
from orchestrator.rules.spec import CampaignSpec, ScheduleSpec
from orchestrator.settings import Settings

if TYPE_CHECKING:  # imported lazily: Prefect is slow to import
    from prefect.deployments.runner import RunnerDeployment

__all__ = [
    "DeploymentPlan",
    "REPORT_CRON",
    "ScheduledRun",
    "ServeSettings",
    "SkippedFile",
    "apply_deployments",
    "campaign_deployments",
    "next_runs",
    "plan_deployments",
    "prefect_schedule",
    "schedule_spec",
    "scheduled_waves",
    "serve_deployments",
    "wave_deployment_name",
]

REPORT_CRON = "0 7 * * *"
"""Default schedule of the success reports: daily at 07:00 in the campaign's time zone."""

INTERVAL_ANCHOR = datetime(2024, 1, 1)
"""Interval schedules count from this local midnight (a Monday) in their time zone, so
re-applying never moves them (Prefect's default anchor is 'now')."""

CONCURRENCY_LIMIT = 1


def wave_deployment_name(campaign: str) -> str:
    return f"{campaign}: wave"


def cycle_deployment_name(cycle: str) -> str:
    return f"{cycle}: cycle"


def report_deployment_name(campaign: str) -> str:
    return f"{campaign}: success report"


def retrain_deployment_name(model: str) -> str:
    return f"{model}: retraining"


class ServeSettings(BaseSettings):
    """What ``campaign serve`` schedules besides the campaigns (env ``CAMPAIGN_SERVE_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="CAMPAIGN_SERVE_", env_file=".env", env_file_encoding="utf-8", extra="ignore", validate_default=True
    )

    report_cron: str | None = Field(
        REPORT_CRON,
        description="Cron of the success_report deployments, in each campaign's time zone; empty = not scheduled.",
    )
    retrain_cron: str | None = Field(
        None, description="Cron of the retrain_model deployments; unset = deployed but only run by hand."
    )
    retrain_timezone: str = Field("UTC", description="IANA time zone of retrain_cron.")
    retrain_kind: Literal["uplift", "response"] = Field("uplift", description="Kind of model retraining builds.")


@dataclass(frozen=True)
class SkippedFile:
    """A rules file that got no deployment, and why."""

    path: Path
    reason: Literal["not a campaign", "errors", "no schedule", "in a cycle"]
    problems: tuple[Problem, ...] = ()
    campaign: str | None = None

    def __str__(self) -> str:
        if self.reason == "errors":
            errors = [p for p in self.problems if p.severity == "error"]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return f"{errors[0]}{more}" if errors else f"{self.path}: errors"
        if self.reason == "no schedule":
            return f"{self.path}: campaign {self.campaign} has no schedule: (run it with campaign run)"
        if self.reason == "in a cycle":
            return f"{self.path}: campaign {self.campaign} runs in its cycle only; its own schedule: is not used"
        return f"{self.path}: not a campaign or cycle (no name: or cycle:)"


@dataclass
class DeploymentPlan:
    """The deployments built from the rules folder, the campaigns behind them, and the files skipped."""

    deployments: list[RunnerDeployment] = field(default_factory=list)
    campaigns: list[CampaignSpec] = field(default_factory=list)  # scheduled and valid: deployed alone
    skipped: list[SkippedFile] = field(default_factory=list)
    cycles: list[CycleSpec] = field(default_factory=list)  # valid cycles: deployed

    def unscheduled(self) -> list[str]:
        """Campaigns without a wave deployment of their own (no schedule, or in a cycle)."""
        return [s.campaign for s in self.skipped if s.reason in ("no schedule", "in a cycle") and s.campaign]


def prefect_schedule(schedule: ScheduleSpec):
    """The Prefect schedule (``CronSchedule`` / ``IntervalSchedule`` / ``RRuleSchedule``) of a rules file.

    The schedule carries the rules file's time zone.
    """
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    if schedule.cron is not None:
        return CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    if schedule.interval_minutes is not None:
        anchor = INTERVAL_ANCHOR.replace(tzinfo=zoneinfo.ZoneInfo(schedule.timezone))
        return IntervalSchedule(
            interval=timedelta(minutes=schedule.interval_minutes), anchor_date=anchor, timezone=schedule.timezone
        )
    return RRuleSchedule(rrule=schedule.rrule, timezone=schedule.timezone)


def next_runs(schedule: ScheduleSpec, n: int = 3, *, after: datetime | None = None) -> list[datetime]:
    """The next ``n`` start times of ``schedule`` after ``after`` (default now), in its time zone."""
    tz = zoneinfo.ZoneInfo(schedule.timezone)
    now = (after or datetime.now(UTC)).astimezone(tz)
    if schedule.cron is not None:
        from cronsim import CronSim

        it = CronSim(schedule.cron, now)
        return [next(it) for _ in range(n)]
    if schedule.interval_minutes is not None:
        step = timedelta(minutes=schedule.interval_minutes)
        anchor = INTERVAL_ANCHOR.replace(tzinfo=tz)
        k = max(0, int((now - anchor) // step) + 1)
        return [(anchor + (k + i) * step).astimezone(tz) for i in range(n)]
    from dateutil.rrule import rrulestr

    if schedule.rrule is None:
        raise ValueError("the schedule has none of cron, interval_minutes and rrule")
    # wall-clock times in the schedule's zone; a DTSTART the API added to the rule (with or without a
    # zone) is read the same way, so rules as written and as stored by Prefect give the same times
    rule = rrulestr(schedule.rrule, dtstart=INTERVAL_ANCHOR, ignoretz=True)
    out: list[datetime] = []
    current = now.replace(tzinfo=None)
    while len(out) < n:
        nxt = rule.after(current)
        if nxt is None:
            break
        out.append(nxt.replace(tzinfo=tz))
        current = nxt
    return out


def _file_kind(path: Path) -> Literal["campaign", "cycle"] | None:
    """``campaign`` for a top-level mapping with ``name:`` (or a file that does not parse, so its errors are
    reported), ``cycle`` for one with ``cycle:``, else None."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return "campaign"
    except OSError:
        return None
    if isinstance(data, dict) and "cycle" in data and "name" not in data:
        return "cycle"
    return "campaign" if isinstance(data, dict) and "name" in data else None


def _read_rules(rules_dir: Path) -> tuple[list[CampaignSpec], list[SkippedFile], list[CycleSpec]]:
    """Valid campaigns (scheduled or not), every file skipped and the valid cycle files; files in name order."""
    campaigns: list[CampaignSpec] = []
    skipped: list[SkippedFile] = []
    cycles: list[CycleSpec] = []
    files = sorted({*rules_dir.glob("*.yaml"), *rules_dir.glob("*.yml")})
    for path in files:
        kind = _file_kind(path)
        if kind is None:
            skipped.append(SkippedFile(path, "not a campaign"))
            continue
        if kind == "cycle":
            cycle, problems = validate_cycle_file(path)
            if cycle is None:
                skipped.append(SkippedFile(path, "errors", tuple(problems)))
            else:
                cycles.append(cycle)
            continue
        spec, problems = validate_campaign_file(path, columns=None)
        problems = [p for p in problems if p.message != NO_TABLE_WARNING]
        if spec is None:
            skipped.append(SkippedFile(path, "errors", tuple(problems)))
        else:
            campaigns.append(spec)
    names: dict[str, Path] = {}
    unique: list[CampaignSpec] = []
    for spec in campaigns:
        if spec.name in names:
            problem = Problem(
                str(spec.source), None, None, f"campaign {spec.name} is also defined in {names[spec.name]}"
            )
            skipped.append(SkippedFile(Path(spec.source), "errors", (problem,)))
            continue
        names[spec.name] = Path(spec.source)
        unique.append(spec)
    return unique, skipped, cycles


def _check_cycles(
    cycles: list[CycleSpec], campaigns: list[CampaignSpec], rules_dir: Path
) -> tuple[list[CycleSpec], list[SkippedFile]]:
    """The cycles whose campaigns are all valid and in no other cycle; the others as skipped files."""
    known = {c.name for c in campaigns}
    taken: dict[str, str] = {}
    valid: list[CycleSpec] = []
    skipped: list[SkippedFile] = []
    for cycle in cycles:
        problems = []
        for name in cycle.campaigns:
            if name not in known:
                hint = did_you_mean(name, known) or f" (the valid campaigns: {', '.join(sorted(known)) or 'none'})"
                problems.append(
                    Problem(
                        str(cycle.source),
                        None,
                        None,
                        f"cycle {cycle.cycle}: there is no valid campaign named '{name}' in {rules_dir}{hint}",
                    )
                )
            elif name in taken:
                problems.append(
                    Problem(
                        str(cycle.source),
                        None,
                        None,
                        f"cycle {cycle.cycle}: campaign {name} is already in cycle {taken[name]}; "
                        "a campaign runs in one cycle at most",
                    )
                )
        if problems:
            skipped.append(SkippedFile(Path(cycle.source), "errors", tuple(problems)))
            continue
        taken.update({name: cycle.cycle for name in cycle.campaigns})
        valid.append(cycle)
    return valid, skipped


def _concurrency():
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return ConcurrencyLimitConfig(limit=CONCURRENCY_LIMIT, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


_T = TypeVar("_T")


def _synchronous(value: _T | Coroutine[Any, Any, _T]) -> _T:
    """The result of a Prefect sync-compatible call made from synchronous code, where it is never a coroutine."""
    if isinstance(value, Coroutine):
        value.close()
        raise TypeError("a Prefect call returned a coroutine: deployments are planned from synchronous code only")
    return value


def _schedule_of(spec: CampaignSpec) -> ScheduleSpec:
    if spec.schedule is None:
        raise ValueError(f"campaign '{spec.name}' has no schedule: it gets no deployment")
    return spec.schedule


def _wave_deployment(spec: CampaignSpec) -> RunnerDeployment:
    from prefect.deployments.runner import EntrypointType

    from flows.campaign_wave import campaign_wave

    about = (
        f"One wave of campaign {spec.name} ({Path(spec.source).name}) per scheduled run: select, plan, "
        "render, record, send. A real run started by hand pauses after planning for a send form (nothing is "
        "recorded until it is answered); dry_run true rehearses without sending."
    )
    return _synchronous(
        campaign_wave.to_deployment(
            name=wave_deployment_name(spec.name),
            schedules=[prefect_schedule(_schedule_of(spec))],
            parameters={"rules_path": str(Path(spec.source).resolve()), "wave_key": None, "dry_run": False},
            concurrency_limit=_concurrency(),
            description=f"{spec.description}\n\n{about}" if spec.description else about,
            tags=["campaign", campaign_tag(spec.name)],
            version=spec.sha256[:12],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    )


def _cycle_deployment(cycle: CycleSpec, specs: list[CampaignSpec]) -> RunnerDeployment:
    from prefect.deployments.runner import EntrypointType

    from flows.campaign_wave import campaign_cycle

    about = (
        f"One wave of the campaigns {', '.join(cycle.campaigns)} as one cycle ({Path(cycle.source).name}): "
        "each customer goes to at most one of them, channel capacity is shared. "
        "A real run started by hand pauses after planning for a send form (nothing is recorded until it is "
        "answered); dry_run true rehearses without sending."
    )
    return _synchronous(
        campaign_cycle.to_deployment(
            name=cycle_deployment_name(cycle.cycle),
            schedules=[prefect_schedule(cycle.schedule)],
            parameters={
                "rules_paths": [str(Path(s.source).resolve()) for s in specs],
                "wave_key": None,
                "dry_run": False,
            },
            concurrency_limit=_concurrency(),
            description=f"{cycle.description}\n\n{about}" if cycle.description else about,
            tags=["campaign-cycle", f"cycle:{cycle.cycle}", *(campaign_tag(s.name) for s in specs)],
            version=cycle.sha256[:12],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    )


def _report_deployment(spec: CampaignSpec, cron: str | None, timezone: str, reports_dir: Path) -> RunnerDeployment:
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.deployments.runner import EntrypointType

    from flows.success_report import success_report

    return _synchronous(
        success_report.to_deployment(
            name=report_deployment_name(spec.name),
            schedules=[CronSchedule(cron=cron, timezone=timezone)] if cron else [],
            parameters={"campaign": spec.name, "html_path": str((reports_dir / f"{spec.name}.html").resolve())},
            concurrency_limit=_concurrency(),
            description=(
                f"Success control of campaign {spec.name}: its treated customers against its control group, "
                "lift with confidence intervals, as artifacts and an HTML report."
            ),
            tags=["success-report", campaign_tag(spec.name)],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    )


def _retrain_deployment(model: str, campaigns: list[str], serve: ServeSettings) -> RunnerDeployment:
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.deployments.runner import EntrypointType

    from flows.retraining import retrain_model

    schedules = [CronSchedule(cron=serve.retrain_cron, timezone=serve.retrain_timezone)] if serve.retrain_cron else []
    return _synchronous(
        retrain_model.to_deployment(
            name=retrain_deployment_name(model),
            schedules=schedules,
            parameters={"name": model, "campaigns": campaigns, "kind": serve.retrain_kind},
            concurrency_limit=_concurrency(),
            description=(
                f"Retrain model {model} on the waves of {', '.join(campaigns)}; promote it if it beats the champion."
            ),
            tags=["retraining", f"model:{model}"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    )


def plan_deployments(settings: Settings, serve: ServeSettings | None = None) -> DeploymentPlan:
    """The deployments of the rules folder and the files skipped (see the module docstring)."""
    serve = serve or getattr(settings, "serve", None) or ServeSettings()
    rules_dir = Path(settings.paths.rules_dir)
    campaigns, skipped, cycles = _read_rules(rules_dir)
    cycles, bad_cycles = _check_cycles(cycles, campaigns, rules_dir)
    plan = DeploymentPlan(skipped=skipped + bad_cycles, cycles=cycles)
    in_cycle = {name: cycle for cycle in cycles for name in cycle.campaigns}
    by_name = {spec.name: spec for spec in campaigns}
    for spec in campaigns:
        if spec.name in in_cycle:
            plan.skipped.append(SkippedFile(Path(spec.source), "in a cycle", campaign=spec.name))
        elif spec.schedule is None:
            plan.skipped.append(SkippedFile(Path(spec.source), "no schedule", campaign=spec.name))
        else:
            plan.campaigns.append(spec)
            plan.deployments.append(_wave_deployment(spec))
    for cycle in cycles:
        plan.deployments.append(_cycle_deployment(cycle, [by_name[name] for name in cycle.campaigns]))
    reports_dir = Path(settings.paths.data_dir) / "reports"
    for spec in plan.campaigns:
        plan.deployments.append(_report_deployment(spec, serve.report_cron, _schedule_of(spec).timezone, reports_dir))
    for cycle in cycles:
        for name in cycle.campaigns:
            plan.deployments.append(
                _report_deployment(by_name[name], serve.report_cron, cycle.schedule.timezone, reports_dir)
            )
    models: dict[str, list[str]] = {}
    for spec in campaigns:
        if spec.scores is not None:
            models.setdefault(spec.scores.model, []).append(spec.name)
    for model, names in sorted(models.items()):
        plan.deployments.append(_retrain_deployment(model, names, serve))
    plan.skipped.sort(key=lambda s: str(s.path))
    return plan


def campaign_deployments(settings: Settings) -> list[RunnerDeployment]:
    """The deployments of the rules folder: campaign waves, success reports, retraining."""
    return plan_deployments(settings).deployments


def _unschedule_stale(names: list[str]) -> None:
    """Remove the schedules of ``campaign_wave`` deployments whose campaign lost its ``schedule:``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                deployment = client.read_deployment_by_name(f"campaign_wave/{wave_deployment_name(name)}")
            except ObjectNotFound:
                continue
            if deployment.schedules:
                client.update_deployment(deployment.id, DeploymentUpdate(schedules=[]))


def apply_plan(plan: DeploymentPlan, settings: Settings | None = None) -> list[UUID]:
    """Register the plan's deployments with the Prefect API (create or update); their ids. With
    ``settings``, the change is an audit event (``deployment-change``) in the engine database."""
    ids = [_synchronous(deployment.apply()) for deployment in plan.deployments]
    _unschedule_stale(plan.unscheduled())
    if settings is not None:
        _audit_deployments(settings, plan, "apply")
    return ids


def _audit_deployments(settings: Settings, plan: DeploymentPlan, how: str) -> None:
    """One ``deployment-change`` audit event: which deployments, which campaigns lost their schedule."""
    from orchestrator.db import audit
    from orchestrator.db.engine import connect

    names = sorted(d.name for d in plan.deployments)
    details: dict[str, str | int] = {"how": how, "deployments": ", ".join(names)[:200]}
    if plan.unscheduled():
        details["unscheduled"] = ", ".join(plan.unscheduled())[:200]
    audit.record_now(
        connect(settings),
        actor=audit.current_actor(),
        action="deployment-change",
        subject=f"{len(names)} deployments",
        counts={"deployments": len(names), "unscheduled": len(plan.unscheduled()), "skipped": len(plan.skipped)},
        details=details,
    )


def apply_deployments(settings: Settings) -> list[UUID]:
    """Register the deployments of the rules folder with the Prefect API, without serving them (audited)."""
    return apply_plan(plan_deployments(settings), settings)


def serve_deployments(settings: Settings, plan: DeploymentPlan | None = None) -> None:
    """Serve the deployments (blocking): this process starts their scheduled runs until stopped.

    On shutdown ``prefect.serve`` pauses the served deployments' schedules, so no run piles up
    while nothing serves them; the next ``campaign serve`` resumes them.
    """
    from prefect import serve

    plan = plan or plan_deployments(settings)
    if not plan.deployments:
        raise ValueError(f"no scheduled campaign in {settings.paths.rules_dir}: nothing to serve")
    _unschedule_stale(plan.unscheduled())
    _audit_deployments(settings, plan, "serve")
    serve(*plan.deployments, print_starting_message=False)


@dataclass(frozen=True)
class ScheduledRun:
    """When the wave or cycle deployment of a campaign runs next, as the Prefect API says."""

    campaign: str
    deployment: str  # flow/deployment
    next_run: datetime | None  # None: no active schedule
    paused: bool = False


def schedule_spec(schedule: Any) -> ScheduleSpec | None:
    """A Prefect schedule as the rules files' ``ScheduleSpec`` (None for a kind this engine never deploys)."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    timezone = getattr(schedule, "timezone", None) or "UTC"
    if isinstance(schedule, CronSchedule):
        return ScheduleSpec(cron=schedule.cron, timezone=timezone)
    if isinstance(schedule, IntervalSchedule):
        return ScheduleSpec(interval_minutes=max(1, int(schedule.interval.total_seconds() // 60)), timezone=timezone)
    if isinstance(schedule, RRuleSchedule):
        return ScheduleSpec(rrule=schedule.rrule, timezone=timezone)
    return None


def scheduled_waves(*, after: datetime | None = None) -> dict[str, ScheduledRun]:
    """Per campaign, the next run of its ``campaign_wave`` or ``campaign_cycle`` deployment (by its
    ``campaign:<name>`` tags), computed from the deployment's active schedules as the Prefect API holds
    them. Raises whatever the Prefect client raises when the API cannot be reached."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    found: dict[str, ScheduledRun] = {}
    with get_client(sync_client=True) as client:
        flows = {
            f.id: f.name
            for f in client.read_flows(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["campaign_wave", "campaign_cycle"]))
            )
        }
        if not flows:
            return found
        deployments = client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=list(flows.values()))))
    for deployment in deployments:
        campaigns = [t.removeprefix("campaign:") for t in deployment.tags if t.startswith("campaign:")]
        times = []
        for schedule in deployment.schedules:
            try:
                spec = schedule_spec(schedule.schedule) if schedule.active else None
                if spec is not None:
                    times += next_runs(spec, 1, after=after)
            except (ValueError, TypeError):  # a schedule edited in the UI into a form not read here: skipped
                continue
        run = ScheduledRun(
            campaign="",
            deployment=f"{flows.get(deployment.flow_id, '?')}/{deployment.name}",
            next_run=min(times, key=lambda t: t.astimezone(UTC)) if times and not deployment.paused else None,
            paused=bool(deployment.paused),
        )
        for name in campaigns:
            earlier = found.get(name)
            if earlier is None or (
                run.next_run is not None and (earlier.next_run is None or run.next_run < earlier.next_run)
            ):
                found[name] = ScheduledRun(name, run.deployment, run.next_run, run.paused)
    return found
