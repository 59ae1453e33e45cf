"""The success report as people read it: in a real headless browser at phone width (420 px),
the trend over waves with provisional waves marked, cost and ROI visible, the currency and the
"data as of" stamp; ``campaign report`` output fit for machines and labelled by the chosen outcome;
a wave without outcomes; charts without data; rates below 1%.

The reports come from the ledger (real database, conversions imported), through the CLI.
"""

from __future__ import annotations

import json
import shutil
from datetime import date

import numpy as np
import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.ledger import contacts as ledger
from orchestrator.responses.conversions import import_conversions
from orchestrator.settings import use_settings
from orchestrator.success.formatting import lift_points, pct
from orchestrator.success.statistics import Estimate
from orchestrator.targeting.frame import ContactFrame
from tests.conftest import REPO
from tests.support.browser import SKIP_WITHOUT_BROWSER, measure_page

CLOSED, OPEN = "2026-10-01", "2026-11-24"  # as of 2026-12-06 with a 30-day window: closed, still open
AS_OF = "2026-12-06"


@pytest.fixture
def report_env(settings, engine, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    paths = settings.paths.model_copy(update={"rules_dir": rules, "templates_dir": REPO / "templates"})
    report = settings.report.model_copy(update={"currency": "CHF"})
    with use_settings(settings.model_copy(update={"paths": paths, "report": report})):
        yield engine


def _wave(engine, tmp_path, campaign: str, key: str, *, seed: int, n: int = 3000, buy_on: str | None = None):
    """A sent wave of ``n`` customers (20% control); with ``buy_on``, conversions that day (5% + 4 points treated)."""
    rng = np.random.default_rng(seed)
    wave = ledger.open_wave(engine, ledger.ensure_campaign(engine, campaign, None), key, "0" * 64)
    ids = [f"{key}-{i:05d}" for i in range(n)]
    control = rng.random(n) < 0.2
    frame = ContactFrame.of(ids, np.where(control, "control", "treatment").astype(object), channel="email")
    ledger.record_contacts(engine, wave.id, frame, planned_for=date.fromisoformat(key))
    with engine.begin() as conn:
        conn.execute(
            ledger.contacts.update()
            .where(ledger.contacts.c.wave_id == wave.id, ledger.contacts.c.arm == "treatment")
            .values(status="sent")
        )
    if buy_on is not None:
        buys = rng.random(n) < np.where(control, 0.05, 0.09)
        path = tmp_path / f"{key}-conversions.csv"
        path.write_text(
            "customer_id,occurred_at,amount\n"
            + "".join(f"{cid},{buy_on},40\n" for cid, b in zip(ids, buys, strict=True) if b)
        )
        import_conversions(engine, path)


def _html(tmp_path, *args: str) -> str:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", *args, "--as-of", AS_OF, "--html", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def test_report_has_the_trend_provisional_waves_currency_and_stamp(report_env, tmp_path):
    _wave(report_env, tmp_path, "winback-email", CLOSED, seed=1, buy_on="2026-10-09")
    _wave(report_env, tmp_path, "winback-email", OPEN, seed=2, buy_on="2026-11-30")
    result = CliRunner().invoke(app, ["report", "winback-email", "--as-of", AS_OF, "--format", "json"])
    report = json.loads(result.stdout)
    assert report["currency"] == "CHF" and report["data_as_of"].startswith("2026-11-30")
    assert report["wave_dates"] == {CLOSED: CLOSED, OPEN: OPEN}
    readings = {s["key"]: s["reading"] for s in report["segments"] if s["dimension"] == "wave"}
    assert readings[CLOSED] == "final" and readings[OPEN] != "final"

    page = _html(tmp_path, "winback-email")
    assert "Lift and incremental value per wave" in page
    assert f"{OPEN} ({OPEN}) lift" in page and ", provisional" in page  # the chart's description
    assert "provisional: window open until 2026-12-24" in page  # the Status cell of the open wave
    assert "Cost (CHF)" in page and "Incremental revenue (CHF)" in page and "cost " in page and " CHF." in page
    assert "Data as of 2026-11-30" in page and f"windows read as of {AS_OF}" in page


@SKIP_WITHOUT_BROWSER
def test_report_reads_at_420_px_in_a_real_browser(report_env, tmp_path):
    _wave(report_env, tmp_path, "winback-email", CLOSED, seed=1, buy_on="2026-10-09")
    _wave(report_env, tmp_path, "winback-email", OPEN, seed=2, buy_on="2026-11-30")
    page = _html(tmp_path, "winback-email")
    assert page.count("<svg") == 3  # trend, lift, curve (no scores: no gains chart)
    for width in (420, 1280):
        found = measure_page(page, width)
        assert found["width"] == width
        assert found["texts"] > 150  # the charts' and tables' text was measured
        assert found["small"] == [], f"text below 10 px at {width} px: {found['small'][:10]}"
        assert found["min_font"] >= 10
        assert found["roi_cells"] >= 4 and found["roi_offscreen"] == [], found["roi_offscreen"]
        assert found["overflowing"] == [], f"sticks out or scrolls at {width} px: {found['overflowing'][:10]}"
        assert found["scrollWidth"] <= width


def test_json_alone_on_stdout_with_html(report_env, tmp_path):
    _wave(report_env, tmp_path, "winback-email", OPEN, seed=2, buy_on="2026-11-30")
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "winback-email", "--format", "json", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["campaign"] == "winback-email"  # nothing after the JSON
    assert "HTML report written to" in result.stderr and "HTML report" not in result.stdout
    assert out.exists()


def test_labels_follow_the_chosen_outcome_and_empty_charts_say_so(report_env, tmp_path):
    rng = np.random.default_rng(8)
    lines = ["customer_id,segment,visit,conversion"]
    for i in range(3000):
        arm = ("mail", "no e-mail")[i % 2]
        visit = rng.random() < (0.10 if arm == "no e-mail" else 0.16)
        lines.append(f"{i},{arm},{int(visit)},{int(visit and rng.random() < 0.05)}")
    path = tmp_path / "mailing.csv"
    path.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    args = ["--campaign", "mailing", "--arm-column", "segment", "--control-label", "no e-mail", "--date", "2008-03-01"]
    imported = runner.invoke(
        app, ["import", "results", str(path), *args, "--outcome", "visit", "--outcome", "conversion"]
    )
    assert imported.exit_code == 0, imported.output
    table = runner.invoke(app, ["report", "mailing", "--outcome", "visit"], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "success: outcome 'visit'" in table.stdout and "goal: conversion" not in table.stdout
    report = json.loads(runner.invoke(app, ["report", "mailing", "--outcome", "visit", "--format", "json"]).stdout)
    assert report["outcome"] == "visit"
    assert any("additional customers with the outcome 'visit'" in n for n in report["notes"])
    assert not any("additional conversions" in n for n in report["notes"])
    page = _html(tmp_path, "mailing", "--outcome", "visit")
    assert "success: outcome &#x27;visit&#x27;" in page and "goal: conversion" not in page
    # imported outcomes have no dates: no curve with empty axes, a sentence instead
    assert "No response curve: every success is dated on the day of contact" in page
    assert page.count("<svg") == 2  # trend and lift only


def test_a_wave_without_outcomes_says_so_and_how_to_import_them(report_env, tmp_path):
    _wave(report_env, tmp_path, "winback-email", OPEN, seed=3, n=200)  # no conversions at all
    result = CliRunner().invoke(app, ["report", "winback-email", "--as-of", AS_OF], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert f"No outcomes recorded yet for wave {OPEN}" in text
    assert "campaign import conversions FILE" in text and "POST /v1/outcomes" in text
    assert "too small to tell" not in text and "too small for a reliable lift" not in text
    page = _html(tmp_path, "winback-email")
    assert "No trend yet: no outcomes have been recorded" in page and "<svg" not in page
    assert "data as of: no outcome recorded yet" in page.lower()


def test_rates_below_one_percent_get_one_decimal_more():
    assert pct(0.042) == "4.2%" and pct(0.0042) == "0.42%" and pct(0.0) == "0.0%" and pct(None) == "–"
    assert lift_points(Estimate(0.021, 0.008, 0.034)) == "+2.1 [0.8, 3.4]"
    assert lift_points(Estimate(0.0042, 0.0008, 0.0076)) == "+0.42 [0.08, 0.76]"
