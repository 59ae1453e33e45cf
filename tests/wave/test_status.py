"""``campaign status`` on a database with two campaigns and three waves: last and next wave,
pending / failed / dead-lettered contacts, open success windows and the headline lift, as a
table and as JSON; the next wave read from deployments registered with the real Prefect API."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from orchestrator.cli import main as cli_main
from orchestrator.cli import status as cli_status
from orchestrator.db.tables import DispatchBatch, table_of
from orchestrator.ledger import contacts as ledger
from orchestrator.responses.conversions import import_conversions
from orchestrator.settings import Settings
from orchestrator.targeting.frame import ContactFrame
from orchestrator.wave.overview import campaign_overview
from tests.support import REPO

TODAY = date.today()
OLD, RECENT = TODAY - timedelta(days=70), TODAY - timedelta(days=5)  # winback-email's window: 30 days


@pytest.fixture
def status_settings(settings, tmp_path) -> Settings:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    return settings.model_copy(update={"paths": settings.paths.model_copy(update={"rules_dir": rules})})


def _wave(engine, tmp_path, campaign: str, day: date, *, channel: str, n: int, seed: int, effect: float):
    """A recorded wave of ``n`` customers (20% control) whose treated contacts were sent, and its purchases."""
    rng = np.random.default_rng(seed)
    wave = ledger.open_wave(engine, ledger.ensure_campaign(engine, campaign, None), day.isoformat(), "0" * 64)
    ids = [f"{campaign[:3].upper()}{day:%m%d}{i:05d}" for i in range(n)]
    control = rng.random(n) < 0.2
    frame = ContactFrame.of(ids, np.where(control, "control", "treatment").astype(object), channel=channel)
    ledger.record_contacts(engine, wave.id, frame, planned_for=day)
    with engine.begin() as conn:
        conn.execute(
            ledger.contacts.update()
            .where(ledger.contacts.c.wave_id == wave.id, ledger.contacts.c.arm == "treatment")
            .values(status="sent")
        )
    ledger.set_wave_status(engine, wave.id, ledger.WaveStatus.COMPLETED)
    buys = rng.random(n) < np.where(control, 0.05, 0.05 + effect)
    path = tmp_path / f"{campaign}-{day}.csv"
    bought = day + timedelta(days=2)
    path.write_text(
        "customer_id,occurred_at,amount\n" + "".join(f"{c},{bought},50\n" for c, b in zip(ids, buys, strict=True) if b)
    )
    import_conversions(engine, path)
    return wave


def _set_status(engine, wave_id: int, status: str, n: int) -> None:
    with engine.begin() as conn:
        ids = conn.execute(
            sa.select(ledger.contacts.c.id)
            .where(ledger.contacts.c.wave_id == wave_id, ledger.contacts.c.status == "sent")
            .limit(n)
        ).scalars()
        conn.execute(ledger.contacts.update().where(ledger.contacts.c.id.in_(list(ids))).values(status=status))


@pytest.fixture
def three_waves(status_settings, engine, tmp_path):
    """winback-email: an old wave (window closed) and a recent one with 12 pending and 3 failed contacts;
    retention-multichannel: a recent call-center wave with a dead-lettered task list of 7."""
    _wave(engine, tmp_path, "winback-email", OLD, channel="email", n=4000, seed=1, effect=0.05)
    recent = _wave(engine, tmp_path, "winback-email", RECENT, channel="email", n=4000, seed=2, effect=0.05)
    _set_status(engine, recent.id, "pending", 12)
    _set_status(engine, recent.id, "failed", 3)
    calls = _wave(engine, tmp_path, "retention-multichannel", RECENT, channel="call_center", n=600, seed=3, effect=0)
    with engine.begin() as conn:
        conn.execute(
            table_of(DispatchBatch).insert(),
            [
                {"wave_id": calls.id, "channel": "call_center", "endpoint": "call_center", "seq": seq,
                 "webhook_id": f"msg_test_{seq}", "size": 7, "status": status, "attempts": 1}
                for seq, status in ((1, "dead"), (2, "delivered"))
            ],
        )  # fmt: skip
    return engine


def test_overview_counts_waves_contacts_windows_and_lift(status_settings, three_waves):
    statuses = {s.campaign: s for s in campaign_overview(status_settings, next_waves={}, as_of=TODAY)}
    assert set(statuses) == {"winback-email", "retention-multichannel"}  # the ledger and the rules folder
    winback, retention = statuses["winback-email"], statuses["retention-multichannel"]
    assert (winback.waves, winback.last_wave, winback.last_wave_status) == (2, RECENT.isoformat(), "completed")
    assert (winback.pending, winback.failed, winback.dead_lettered) == (12, 3, 0)
    assert [(w.wave, w.closes) for w in winback.open_windows] == [
        (RECENT.isoformat(), (RECENT + timedelta(days=30)).isoformat())
    ]
    assert winback.lift.significant and winback.lift.provisional
    assert winback.lift.low < 0.05 < winback.lift.high and winback.lift.low > 0
    assert "the campaign worked" in winback.lift.headline
    assert (retention.waves, retention.pending, retention.failed, retention.dead_lettered) == (1, 0, 0, 7)
    assert [w.wave for w in retention.open_windows] == [RECENT.isoformat()]  # 45-day window
    assert winback.next_wave is None and winback.next_wave_note == "not scheduled"


def test_status_command_table_and_json_with_deployments(status_settings, three_waves, make_cli, prefect_api_url):
    from flows.deployments import apply_deployments

    apply_deployments(status_settings)  # winback-email has a schedule in rules/; retention-multichannel none
    cli = make_cli(cli_main.app, wide=[cli_status])
    result = cli("status", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schedule_note"] is None
    by_name = {c["campaign"]: c for c in data["campaigns"]}
    winback = by_name["winback-email"]
    assert winback["next_wave_deployment"] == "campaign_wave/winback-email: wave"
    next_wave = date.fromisoformat(winback["next_wave"][:10])
    assert TODAY <= next_wave <= TODAY + timedelta(days=7) and next_wave.weekday() == 0  # cron 0 9 * * MON
    assert winback["next_wave"].endswith(("+01:00", "+02:00"))  # Europe/Berlin
    assert (winback["pending"], winback["failed"], winback["dead_lettered"]) == (12, 3, 0)
    assert winback["lift"]["significant"] and winback["lift"]["provisional"]
    assert by_name["retention-multichannel"]["next_wave"] is None
    assert by_name["retention-multichannel"]["next_wave_note"] == "not scheduled"
    assert by_name["retention-multichannel"]["dead_lettered"] == 7

    table = cli("status")
    assert table.exit_code == 0, table.output
    out = table.stdout
    assert f"{RECENT.isoformat()} (completed)" in out and "not scheduled" in out
    assert f"{RECENT.isoformat()} until {(RECENT + timedelta(days=30)).isoformat()}" in out
    assert "significant, provisional" in out and ("CET" in out or "CEST" in out)


def test_status_without_a_prefect_api_says_the_next_wave_is_unknown(status_settings, three_waves, make_cli):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    cli = make_cli(cli_main.app, wide=[cli_status])
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # nothing listens on port 9
        result = cli("status", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "http://127.0.0.1:9/api is not reachable" in data["schedule_note"]
    assert all(c["next_wave"] is None and c["next_wave_note"].startswith("unknown: ") for c in data["campaigns"])
