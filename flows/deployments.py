"""Prefect deployments of the campaigns in the rules folder (``campaign serve``).

``plan_deployments(settings)`` reads every ``*.yaml``/``*.yml`` file directly in
``settings.paths.rules_dir`` and builds:

* ``campaign_wave/<campaign>``: one per campaign whose rules file validates and has a
  ``schedule:``. Parameters ``rules_path`` (absolute), ``wave_key=None``, ``dry_run=False``
  (visible and editable in the Prefect UI); the file's cron / interval / rrule schedule in
  its time zone; tags ``campaign`` and the campaign name; the rules file's description;
  version = the first 12 hex digits of the file's SHA-256; a deployment concurrency limit of
  1 (collision strategy ``ENQUEUE``), so two waves of one campaign never run at once: a
  second run waits until the first one ends.
* ``success_report/<campaign>``: one per scheduled campaign, daily (``REPORT_CRON``, 07:00 in
  the campaign's time zone), parameter ``campaign``; tags ``success-report`` and the name.
* ``retrain_model/<model>``: one per model a valid campaign's ``scores:`` names, parameters
  ``name``, ``campaigns`` (every campaign scoring with it) and ``kind`` (``uplift``);
  tags ``retraining`` and the model name. Not scheduled unless ``retrain_cron`` is given
  (``CAMPAIGN_SERVE_RETRAIN_CRON``, in ``CAMPAIGN_SERVE_RETRAIN_TIMEZONE``, default UTC).

Files that are not campaigns (no top-level ``name:``: ``policy.yaml``, ``capacity.yaml``,
``outcomes.yaml``; segment files live in ``segments/`` and are not read) are skipped silently
but listed; a campaign file with errors is not deployed and is reported with its problems
(``file:line:col: message``); a campaign without ``schedule:`` is listed as unscheduled and,
if it has a deployment from an earlier schedule, that deployment's schedules are removed.

``apply_deployments(settings)`` registers the deployments with the Prefect API without
running anything (idempotent: re-applying updates schedules, parameters and description in
place); ``serve_deployments(settings)`` serves them with ``prefect.serve`` (blocking; flow
runs execute in this process's environment). Settings (secrets included) never go into
parameters: the flows read them from the ``CAMPAIGN_*`` environment of the process that runs
them.
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

from orchestrator.errors import Problem
from orchestrator.rules.loader import NO_TABLE_WARNING, validate_campaign_file
from orchestrator.rules.spec import CampaignSpec, ScheduleSpec
from orchestrator.settings import Settings

if TYPE_CHECKING:  # imported lazily: Prefect is slow to import
    from prefect.deployments.runner import RunnerDeployment

__all__ = [
    "DeploymentPlan",
    "REPORT_CRON",
    "ServeSettings",
    "SkippedFile",
    "apply_deployments",
    "campaign_deployments",
    "next_runs",
    "plan_deployments",
    "prefect_schedule",
    "serve_deployments",
]

REPORT_CRON = "0 7 * * *"
"""Default schedule of the success reports: daily at 07:00 in the campaign's time zone."""

INTERVAL_ANCHOR = datetime(2024, 1, 1)
"""Interval schedules count from this local midnight (a Monday) in their time zone, so
re-applying never moves them (Prefect's default anchor is 'now')."""

CONCURRENCY_LIMIT = 1


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
    reason: Literal["not a campaign", "errors", "no schedule"]
    problems: tuple[Problem, ...] = ()
    campaign: str | None = None

    def __str__(self) -> str:
        if self.reason == "errors":
            errors = [p for p in self.problems if p.severity == "error"]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return f"{errors[0]}{more}" if errors else f"{self.path}: errors"
        if self.reason == "no schedule":
            return f"{self.path}: campaign {self.campaign} has no schedule: (run it with campaign run)"
        return f"{self.path}: not a campaign (no name:)"


@dataclass
class DeploymentPlan:
    """The deployments built from the rules folder, the campaigns behind them, and the files skipped."""

    deployments: list[RunnerDeployment] = field(default_factory=list)
    campaigns: list[CampaignSpec] = field(default_factory=list)  # scheduled and valid: deployed
    skipped: list[SkippedFile] = field(default_factory=list)

    def unscheduled(self) -> list[str]:
        return [s.campaign for s in self.skipped if s.reason == "no schedule" and s.campaign]


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
    rule = rrulestr(schedule.rrule, dtstart=INTERVAL_ANCHOR.replace(tzinfo=tz))
    out: list[datetime] = []
    current = now
    while len(out) < n:
        nxt = rule.after(current)
        if nxt is None:
            break
        out.append(nxt)
        current = nxt
    return out


def _is_campaign_file(path: Path) -> bool:
    """A top-level mapping with ``name:`` (a file that does not parse counts, so its errors are reported)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return True
    except OSError:
        return False
    return isinstance(data, dict) and "name" in data


def _read_rules(rules_dir: Path) -> tuple[list[CampaignSpec], list[SkippedFile]]:
    """Valid campaigns (scheduled or not) and every file skipped; files in name order."""
    campaigns: list[CampaignSpec] = []
    skipped: list[SkippedFile] = []
    files = sorted({*rules_dir.glob("*.yaml"), *rules_dir.glob("*.yml")})
    for path in files:
        if not _is_campaign_file(path):
            skipped.append(SkippedFile(path, "not a campaign"))
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
    return unique, skipped


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

    return _synchronous(
        campaign_wave.to_deployment(
            name=spec.name,
            schedules=[prefect_schedule(_schedule_of(spec))],
            parameters={"rules_path": str(Path(spec.source).resolve()), "wave_key": None, "dry_run": False},
            concurrency_limit=_concurrency(),
            description=spec.description or f"Waves of campaign {spec.name} ({Path(spec.source).name}).",
            tags=["campaign", spec.name],
            version=spec.sha256[:12],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    )


def _report_deployment(spec: CampaignSpec, cron: str | None) -> RunnerDeployment:
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.deployments.runner import EntrypointType

    from flows.success_report import success_report

    return _synchronous(
        success_report.to_deployment(
            name=spec.name,
            schedules=[CronSchedule(cron=cron, timezone=_schedule_of(spec).timezone)] if cron else [],
            parameters={"campaign": spec.name},
            concurrency_limit=_concurrency(),
            description=f"Success control of campaign {spec.name}: treated against control, as artifacts.",
            tags=["success-report", spec.name],
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
            name=model,
            schedules=schedules,
            parameters={"name": model, "campaigns": campaigns, "kind": serve.retrain_kind},
            concurrency_limit=_concurrency(),
            description=(
                f"Retrain model {model} on the waves of {', '.join(campaigns)}; promote it if it beats the champion."
            ),
            tags=["retraining", model],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    )


def plan_deployments(settings: Settings, serve: ServeSettings | None = None) -> DeploymentPlan:
    """The deployments of the rules folder and the files skipped (see the module docstring)."""
    serve = serve or getattr(settings, "serve", None) or ServeSettings()
    campaigns, skipped = _read_rules(Path(settings.paths.rules_dir))
    plan = DeploymentPlan(skipped=skipped)
    for spec in campaigns:
        if spec.schedule is None:
            plan.skipped.append(SkippedFile(Path(spec.source), "no schedule", campaign=spec.name))
            continue
        plan.campaigns.append(spec)
        plan.deployments.append(_wave_deployment(spec))
    for spec in plan.campaigns:
        plan.deployments.append(_report_deployment(spec, serve.report_cron))
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
                deployment = client.read_deployment_by_name(f"campaign_wave/{name}")
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
