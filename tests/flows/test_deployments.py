"""``campaign serve``: the rules folder's deployments, registered with the session's real Prefect API.

Every test writes its own rules folder with campaign names unique to the test, because the
Prefect API is shared by the whole session; deployments are read back by name.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from flows.deployments import (
    REPORT_CRON,
    ServeSettings,
    apply_deployments,
    apply_plan,
    campaign_deployments,
    next_runs,
    plan_deployments,
)
from orchestrator.db import audit
from orchestrator.db.engine import connect
from orchestrator.rules.spec import ScheduleSpec
from orchestrator.settings import PathSettings, Settings, use_settings

CAMPAIGN = """\
name: {name}
description: {description}
control:
  share: 0.1
channels:
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
{extra}"""

BROKEN = """\
name: {name}
control:
  share: 2
channels:
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
schedule:
  cron: "0 9 * * MON"
"""


def _campaign(folder: Path, name: str, extra: str = "", description: str = "A test campaign.") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(CAMPAIGN.format(name=name, description=description, extra=extra), encoding="utf-8")
    return path


@pytest.fixture
def rules(tmp_path) -> dict:
    """A rules folder: cron (Europe/Berlin) + scores, interval, unscheduled, broken, policy.yaml, a segment."""
    folder = tmp_path / "rules"
    (folder / "segments").mkdir(parents=True)
    suffix = uuid.uuid4().hex[:8]
    names = {k: f"{k}-{suffix}" for k in ("weekly", "hourly", "manual", "broken")}
    names["model"] = f"model-{suffix}"
    _campaign(
        folder,
        names["weekly"],
        f"scores:\n  model: {names['model']}\n  min_score: 0.1\n"
        'schedule:\n  cron: "0 9 * * MON"\n  timezone: Europe/Berlin\n',
        description="Weekly win-back.",
    )
    _campaign(folder, names["hourly"], "schedule:\n  interval_minutes: 60\n")
    _campaign(folder, names["manual"])
    (folder / f"{names['broken']}.yaml").write_text(BROKEN.format(name=names["broken"]), encoding="utf-8")
    (folder / "policy.yaml").write_text("frequency_caps:\n  - {max: 4, days: 30}\n", encoding="utf-8")
    (folder / "segments" / "lapsed.yaml").write_text(
        "name: lapsed\nall:\n  - recency_days: {gte: 90}\n", encoding="utf-8"
    )
    settings = Settings(paths=PathSettings(rules_dir=folder, data_dir=tmp_path / "var"))
    return {"folder": folder, "settings": settings, **names}


def _read(full_name: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(full_name)


def _missing(full_name: str) -> bool:
    from prefect.exceptions import ObjectNotFound

    try:
        _read(full_name)
    except ObjectNotFound:
        return True
    return False


# --- plain functions, no API ---------------------------------------------------------------


def test_plan_deploys_scheduled_campaigns_and_reports_the_rest(rules):
    plan = plan_deployments(rules["settings"])
    names = sorted(f"{d.flow_name}/{d.name}" for d in plan.deployments)
    assert names == sorted(
        [
            f"campaign_wave/{rules['weekly']}: wave",
            f"campaign_wave/{rules['hourly']}: wave",
            f"success_report/{rules['weekly']}: success report",
            f"success_report/{rules['hourly']}: success report",
            f"retrain_model/{rules['model']}: retraining",
        ]
    )
    reasons = {s.path.name: s.reason for s in plan.skipped}
    assert reasons == {
        f"{rules['manual']}.yaml": "no schedule",
        f"{rules['broken']}.yaml": "errors",
        "policy.yaml": "not a campaign",
    }
    assert plan.unscheduled() == [rules["manual"]]
    broken = next(s for s in plan.skipped if s.reason == "errors")
    assert str(broken).startswith(f"{rules['folder'] / rules['broken']}.yaml:3:")  # control.share: 2, line 3
    assert "share" in str(broken)
    assert [d.name for d in campaign_deployments(rules["settings"])] == [d.name for d in plan.deployments]


def test_parameters_carry_no_settings(rules, monkeypatch):
    monkeypatch.setenv("CAMPAIGN_SMTP_PASSWORD", "very-secret-password")
    for deployment in plan_deployments(rules["settings"]).deployments:
        assert "very-secret-password" not in repr(deployment.parameters)
        assert not any(key in deployment.parameters for key in ("settings", "database_url", "smtp"))


def test_next_runs_follow_the_time_zone():
    after = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # Friday; Berlin switches to summer time on Sunday
    weekly = next_runs(ScheduleSpec(cron="0 9 * * MON", timezone="Europe/Berlin"), 2, after=after)
    assert [t.isoformat() for t in weekly] == ["2026-03-30T09:00:00+02:00", "2026-04-06T09:00:00+02:00"]
    hourly = next_runs(ScheduleSpec(interval_minutes=90), 2, after=after)
    assert hourly[0] > after and hourly[1] - hourly[0] == timedelta(minutes=90)
    rrule = next_runs(
        ScheduleSpec(rrule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0", timezone="Europe/Berlin"), 1, after=after
    )
    assert rrule[0].isoformat() == "2026-03-30T09:00:00+02:00"
    # as the Prefect API may hand a rule back: with a DTSTART of its own
    stored = next_runs(
        ScheduleSpec.model_construct(
            rrule="DTSTART:20240101T000000Z\nRRULE:FREQ=WEEKLY;BYDAY=TU;BYHOUR=8;BYMINUTE=30",
            timezone="Europe/Berlin",
            cron=None,
            interval_minutes=None,
        ),
        1,
        after=after,
    )
    assert stored[0].isoformat() == "2026-03-31T08:30:00+02:00"


# --- against the Prefect API ---------------------------------------------------------------


def test_apply_registers_schedules_parameters_tags_and_concurrency(rules, prefect_api_url):
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    ids = apply_deployments(rules["settings"])
    assert len(ids) == 5

    weekly = _read(f"campaign_wave/{rules['weekly']}: wave")
    assert len(weekly.schedules) == 1
    schedule = weekly.schedules[0].schedule
    assert isinstance(schedule, CronSchedule)
    assert (schedule.cron, schedule.timezone) == ("0 9 * * MON", "Europe/Berlin")
    assert weekly.parameters == {
        "rules_path": str((rules["folder"] / f"{rules['weekly']}.yaml").resolve()),
        "wave_key": None,
        "dry_run": False,
    }
    assert Path(weekly.parameters["rules_path"]).is_absolute()
    assert set(weekly.tags) == {"campaign", f"campaign:{rules['weekly']}"}
    assert weekly.description.startswith("Weekly win-back.\n\nOne wave of campaign")
    assert "started by hand pauses after planning for a send form" in weekly.description
    assert weekly.global_concurrency_limit is not None and weekly.global_concurrency_limit.limit == 1
    assert weekly.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE
    assert weekly.entrypoint == "flows.campaign_wave.campaign_wave"
    assert not weekly.paused

    hourly = _read(f"campaign_wave/{rules['hourly']}: wave")
    schedule = hourly.schedules[0].schedule
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.interval.total_seconds() == 3600 and schedule.timezone == "UTC"
    assert hourly.global_concurrency_limit.limit == 1

    report = _read(f"success_report/{rules['weekly']}: success report")
    assert report.parameters == {
        "campaign": rules["weekly"],
        "html_path": str((rules["settings"].paths.data_dir / "reports" / f"{rules['weekly']}.html").resolve()),
    }
    assert (report.schedules[0].schedule.cron, report.schedules[0].schedule.timezone) == (REPORT_CRON, "Europe/Berlin")
    assert set(report.tags) == {"success-report", f"campaign:{rules['weekly']}"}

    retrain = _read(f"retrain_model/{rules['model']}: retraining")
    assert retrain.parameters == {"name": rules["model"], "campaigns": [rules["weekly"]], "kind": "uplift"}
    assert retrain.schedules == []  # run by hand unless CAMPAIGN_SERVE_RETRAIN_CRON says when

    assert _missing(f"campaign_wave/{rules['manual']}: wave")
    assert _missing(f"campaign_wave/{rules['broken']}: wave")
    assert _missing("campaign_wave/policy")


@pytest.mark.slow
def test_reapplying_updates_the_schedule_in_place(rules, prefect_api_url):
    from prefect.client.schemas.schedules import RRuleSchedule

    apply_deployments(rules["settings"])
    before = _read(f"campaign_wave/{rules['weekly']}: wave")
    path = rules["folder"] / f"{rules['weekly']}.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            'cron: "0 9 * * MON"', 'rrule: "FREQ=WEEKLY;BYDAY=TU;BYHOUR=8;BYMINUTE=30"'
        ),
        encoding="utf-8",
    )
    apply_deployments(rules["settings"])
    after = _read(f"campaign_wave/{rules['weekly']}: wave")
    assert after.id == before.id  # updated, not a second deployment
    assert len(after.schedules) == 1
    schedule = after.schedules[0].schedule
    assert isinstance(schedule, RRuleSchedule)
    assert "BYDAY=TU" in schedule.rrule and schedule.timezone == "Europe/Berlin"
    assert after.global_concurrency_limit.limit == 1
    assert after.version != before.version  # the rules file's hash

    # The hourly campaign loses its schedule: its deployment stays, without schedules.
    hourly = rules["folder"] / f"{rules['hourly']}.yaml"
    hourly.write_text(hourly.read_text(encoding="utf-8").split("schedule:")[0], encoding="utf-8")
    plan = plan_deployments(rules["settings"])
    assert rules["hourly"] in plan.unscheduled()
    apply_plan(plan, rules["settings"])
    assert _read(f"campaign_wave/{rules['hourly']}: wave").schedules == []
    # every change is in the audit trail: which deployments, which campaign lost its schedule
    changes = audit.events(connect(rules["settings"]), "deployment-change")
    assert len(changes) == 3 and all(c.details["how"] == "apply" for c in changes)
    change = changes[-1]
    assert change.details["unscheduled"] == ", ".join(plan.unscheduled()) and rules["hourly"] in plan.unscheduled()
    assert rules["weekly"] in change.details["deployments"] and rules["hourly"] not in change.details["deployments"]
    assert change.counts["unscheduled"] == len(plan.unscheduled()) and change.actor.startswith("os:")


def test_retraining_scheduled_when_configured(rules, prefect_api_url):
    serve = ServeSettings(retrain_cron="0 3 * * SUN", retrain_timezone="Europe/Berlin", report_cron=None)
    apply_plan(plan_deployments(rules["settings"], serve))
    retrain = _read(f"retrain_model/{rules['model']}: retraining")
    assert (retrain.schedules[0].schedule.cron, retrain.schedules[0].schedule.timezone) == (
        "0 3 * * SUN",
        "Europe/Berlin",
    )
    assert _read(f"success_report/{rules['weekly']}: success report").schedules == []


# --- CLI ------------------------------------------------------------------------------------


@pytest.fixture
def serve_cli(rules, monkeypatch, prefect_api_url):
    from orchestrator.cli import output as cli_output
    from orchestrator.cli import serve as cli_serve

    wide, wide_err = Console(width=250), Console(stderr=True, width=250)
    monkeypatch.setattr(cli_serve, "console", wide)
    monkeypatch.setattr(cli_serve, "err", wide_err)
    monkeypatch.setattr(cli_output, "err", wide_err)
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("serve")(cli_serve.serve_command)

    def invoke(*args):
        with use_settings(rules["settings"]):  # rules_dir is the rules folder
            return CliRunner().invoke(app, ["serve", *args])

    return invoke


def test_cli_register_only(serve_cli, rules):
    result = serve_cli("--register-only")
    out = result.output
    assert result.exit_code == 1, out  # the broken file is reported, the others are registered
    assert f"campaign_wave/{rules['weekly']}: wave" in out and "cron 0 9 * * MON" in out and "Europe/Berlin" in out
    assert f"campaign_wave/{rules['hourly']}: wave" in out and "every 60 min" in out
    assert f"{rules['broken']}.yaml:3:" in out
    assert f"campaign {rules['manual']} has no schedule" in out
    assert "policy.yaml: not a campaign" in out
    assert "5 deployment(s) registered" in out
    assert _read(f"campaign_wave/{rules['weekly']}: wave").schedules[0].schedule.timezone == "Europe/Berlin"


def test_cli_register_only_clean_folder(serve_cli, rules):
    (rules["folder"] / f"{rules['broken']}.yaml").unlink()
    result = serve_cli("--register-only")
    assert result.exit_code == 0, result.output
    assert not _missing(f"success_report/{rules['hourly']}: success report")


# --- names, parameter descriptions, cycles -----------------------------------------------------


def test_deployments_explain_their_parameters(rules, prefect_api_url):
    apply_deployments(rules["settings"])
    weekly = _read(f"campaign_wave/{rules['weekly']}: wave")
    described = {name: p.get("description", "") for name, p in weekly.parameter_openapi_schema["properties"].items()}
    assert set(described) == {"rules_path", "wave_key", "dry_run", "wait_for_approval", "approval_timeout"}
    assert all(described.values())
    assert "rules file" in described["rules_path"]
    assert "YYYY-MM-DD" in described["wave_key"] and "record and send nothing" in described["dry_run"]
    report = _read(f"success_report/{rules['weekly']}: success report")
    assert all(p.get("description") for p in report.parameter_openapi_schema["properties"].values())
    retrain = _read(f"retrain_model/{rules['model']}: retraining")
    assert all(p.get("description") for p in retrain.parameter_openapi_schema["properties"].values())


CYCLE = """\
cycle: {name}
description: Weekly and hourly together.
campaigns: [{first}, {second}]
schedule:
  cron: "30 8 * * TUE"
  timezone: Europe/Berlin
"""


def test_a_cycle_file_becomes_one_deployment_of_its_campaigns(rules, prefect_api_url):
    from flows.deployments import scheduled_waves

    cycle = f"cycle-{rules['weekly']}"
    (rules["folder"] / "together.yaml").write_text(
        CYCLE.format(name=cycle, first=rules["weekly"], second=rules["manual"]), encoding="utf-8"
    )
    plan = plan_deployments(rules["settings"])
    names = {f"{d.flow_name}/{d.name}" for d in plan.deployments}
    assert f"campaign_cycle/{cycle}: cycle" in names
    assert f"campaign_wave/{rules['weekly']}: wave" not in names  # runs in its cycle only
    assert f"success_report/{rules['manual']}: success report" in names  # every campaign of the cycle is reported
    reasons = {s.path.name: s.reason for s in plan.skipped}
    assert reasons[f"{rules['weekly']}.yaml"] == reasons[f"{rules['manual']}.yaml"] == "in a cycle"
    assert set(plan.unscheduled()) == {rules["weekly"], rules["manual"]}

    apply_plan(plan)
    deployed = _read(f"campaign_cycle/{cycle}: cycle")
    assert deployed.parameters["rules_paths"] == [
        str((rules["folder"] / f"{rules[k]}.yaml").resolve()) for k in ("weekly", "manual")
    ]
    assert (deployed.schedules[0].schedule.cron, deployed.schedules[0].schedule.timezone) == (
        "30 8 * * TUE",
        "Europe/Berlin",
    )
    assert set(deployed.tags) == {
        "campaign-cycle",
        f"cycle:{cycle}",
        f"campaign:{rules['weekly']}",
        f"campaign:{rules['manual']}",
    }
    assert deployed.description.startswith("Weekly and hourly together.")
    assert deployed.global_concurrency_limit.limit == 1

    after = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # a Friday
    scheduled = scheduled_waves(after=after)
    assert scheduled[rules["manual"]].deployment == f"campaign_cycle/{cycle}: cycle"
    assert scheduled[rules["manual"]].next_run.isoformat() == "2026-03-31T08:30:00+02:00"
    assert scheduled[rules["hourly"]].next_run - after <= timedelta(hours=1)


def test_a_cycle_naming_an_unknown_campaign_is_reported(rules):
    (rules["folder"] / "together.yaml").write_text(
        CYCLE.format(name="together", first=rules["weekly"], second=rules["weekly"][:-1] + "x"), encoding="utf-8"
    )
    (rules["folder"] / "bad-cycle.yaml").write_text(
        "cycle: Bad Name\ncampaigns: [a]\nschedule:\n  cron: '0 9 * * MON'\n", encoding="utf-8"
    )
    plan = plan_deployments(rules["settings"])
    assert not [d for d in plan.deployments if d.flow_name == "campaign_cycle"]
    problems = {s.path.name: "\n".join(map(str, s.problems)) for s in plan.skipped if s.reason == "errors"}
    assert f"there is no valid campaign named '{rules['weekly'][:-1]}x'" in problems["together.yaml"]
    assert f"did you mean '{rules['weekly']}'?" in problems["together.yaml"]
    bad = problems["bad-cycle.yaml"]
    assert "bad-cycle.yaml:1:" in bad and "cycle name 'Bad Name' is not allowed" in bad
    assert "bad-cycle.yaml:2:" in bad and "at least 2" in bad
    # the weekly campaign is not in a valid cycle: it keeps its own wave deployment
    assert any(d.name == f"{rules['weekly']}: wave" for d in plan.deployments)
