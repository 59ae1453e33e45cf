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
            f"campaign_wave/{rules['weekly']}",
            f"campaign_wave/{rules['hourly']}",
            f"success_report/{rules['weekly']}",
            f"success_report/{rules['hourly']}",
            f"retrain_model/{rules['model']}",
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


# --- against the Prefect API ---------------------------------------------------------------


def test_apply_registers_schedules_parameters_tags_and_concurrency(rules, prefect_api_url):
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    ids = apply_deployments(rules["settings"])
    assert len(ids) == 5

    weekly = _read(f"campaign_wave/{rules['weekly']}")
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
    assert set(weekly.tags) == {"campaign", rules["weekly"]}
    assert weekly.description == "Weekly win-back."
    assert weekly.global_concurrency_limit is not None and weekly.global_concurrency_limit.limit == 1
    assert weekly.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE
    assert weekly.entrypoint == "flows.campaign_wave.campaign_wave"
    assert not weekly.paused

    hourly = _read(f"campaign_wave/{rules['hourly']}")
    schedule = hourly.schedules[0].schedule
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.interval.total_seconds() == 3600 and schedule.timezone == "UTC"
    assert hourly.global_concurrency_limit.limit == 1

    report = _read(f"success_report/{rules['weekly']}")
    assert report.parameters == {"campaign": rules["weekly"]}
    assert (report.schedules[0].schedule.cron, report.schedules[0].schedule.timezone) == (REPORT_CRON, "Europe/Berlin")
    assert set(report.tags) == {"success-report", rules["weekly"]}

    retrain = _read(f"retrain_model/{rules['model']}")
    assert retrain.parameters == {"name": rules["model"], "campaigns": [rules["weekly"]], "kind": "uplift"}
    assert retrain.schedules == []  # run by hand unless CAMPAIGN_SERVE_RETRAIN_CRON says when

    assert _missing(f"campaign_wave/{rules['manual']}")
    assert _missing(f"campaign_wave/{rules['broken']}")
    assert _missing("campaign_wave/policy")


@pytest.mark.slow
def test_reapplying_updates_the_schedule_in_place(rules, prefect_api_url):
    from prefect.client.schemas.schedules import RRuleSchedule

    apply_deployments(rules["settings"])
    before = _read(f"campaign_wave/{rules['weekly']}")
    path = rules["folder"] / f"{rules['weekly']}.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            'cron: "0 9 * * MON"', 'rrule: "FREQ=WEEKLY;BYDAY=TU;BYHOUR=8;BYMINUTE=30"'
        ),
        encoding="utf-8",
    )
    apply_deployments(rules["settings"])
    after = _read(f"campaign_wave/{rules['weekly']}")
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
    assert _read(f"campaign_wave/{rules['hourly']}").schedules == []
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
    retrain = _read(f"retrain_model/{rules['model']}")
    assert (retrain.schedules[0].schedule.cron, retrain.schedules[0].schedule.timezone) == (
        "0 3 * * SUN",
        "Europe/Berlin",
    )
    assert _read(f"success_report/{rules['weekly']}").schedules == []


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
    assert f"campaign_wave/{rules['weekly']}" in out and "cron 0 9 * * MON" in out and "Europe/Berlin" in out
    assert f"campaign_wave/{rules['hourly']}" in out and "every 60 min" in out
    assert f"{rules['broken']}.yaml:3:" in out
    assert f"campaign {rules['manual']} has no schedule" in out
    assert "policy.yaml: not a campaign" in out
    assert "5 deployment(s) registered" in out
    assert _read(f"campaign_wave/{rules['weekly']}").schedules[0].schedule.timezone == "Europe/Berlin"


def test_cli_register_only_clean_folder(serve_cli, rules):
    (rules["folder"] / f"{rules['broken']}.yaml").unlink()
    result = serve_cli("--register-only")
    assert result.exit_code == 0, result.output
    assert not _missing(f"success_report/{rules['hourly']}")
