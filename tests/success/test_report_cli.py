"""``campaign report`` end to end: a wave in the ledger, conversions imported, the report as
table, JSON and HTML; campaigns without a control group; imported historical results; the
``success_report`` Prefect flow against the session's real Prefect API."""

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
from orchestrator.targeting.frame import ContactFrame
from tests.conftest import REPO

WAVE = "2026-11-24"


@pytest.fixture
def report_env(settings, engine, tmp_path):
    """The engine; while the test runs, the CLI and the flows get the test's settings (``use_settings``)."""
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    paths = settings.paths.model_copy(update={"rules_dir": rules, "templates_dir": REPO / "templates"})
    with use_settings(settings.model_copy(update={"paths": paths})):
        yield engine


def _wave(engine, tmp_path, campaign: str, *, n: int = 4000, control_share: float = 0.2, effect: float = 0.04):
    """A recorded and sent wave, and conversions: 5% base rate, plus ``effect`` among the treated."""
    rng = np.random.default_rng(3)
    wave = ledger.open_wave(engine, ledger.ensure_campaign(engine, campaign, None), WAVE, "0" * 64)
    ids = [f"C{i:06d}" for i in range(n)]
    control = rng.random(n) < control_share
    arms = np.where(control, "control", "treatment").astype(object)
    frame = ContactFrame.of(ids, arms, channel="email", score=rng.random(n))
    ledger.record_contacts(engine, wave.id, frame, planned_for=date(2026, 11, 24))
    with engine.begin() as conn:
        conn.execute(ledger.contacts.update().where(ledger.contacts.c.arm == "treatment").values(status="sent"))
    buys = rng.random(n) < np.where(control, 0.05, 0.05 + effect)
    path = tmp_path / f"{campaign}-conversions.csv"
    path.write_text(
        "customer_id,occurred_at,amount\n"
        + "".join(f"{cid},2026-11-30,50\n" for cid, b in zip(ids, buys, strict=True) if b)
    )
    import_conversions(engine, path)
    return wave


def test_report_measures_lift_against_control_as_json_table_and_html(report_env, tmp_path):
    _wave(report_env, tmp_path, "winback-email")
    runner = CliRunner()
    result = runner.invoke(app, ["report", "winback-email", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    overall = next(s for s in report["segments"] if s["dimension"] == "overall")
    assert overall["treated"] + overall["control"] == 4000 and overall["control"] > 600
    lift = overall["absolute_lift"]
    assert lift["low"] < 0.04 < lift["high"] and overall["p_value"] < 0.01 and overall["significant"]
    assert overall["cost"] == pytest.approx(overall["treated"] * 0.05)  # rules: 0.05 per e-mail sent
    assert overall["roi"]["value"] is not None
    assert {s["dimension"] for s in report["segments"]} >= {"overall", "wave", "channel", "score_decile"}

    html = tmp_path / "report.html"
    table = runner.invoke(app, ["report", "winback-email", "--html", str(html)])
    assert table.exit_code == 0, table.output
    assert "the campaign worked" in table.output and html.read_text().count("<svg") == 4  # trend, lift, curve, gains


def test_report_without_control_group_says_lift_cannot_be_measured(report_env, tmp_path):
    _wave(report_env, tmp_path, "winback-email", control_share=0.0)
    result = CliRunner().invoke(app, ["report", "winback-email", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    overall = next(s for s in report["segments"] if s["dimension"] == "overall")
    assert overall["control"] == 0 and overall["absolute_lift"]["value"] is None and overall["p_value"] is None
    assert "no control group" in overall["flags"]
    assert any("cannot be measured" in note for note in report["notes"])


def test_report_of_an_unknown_campaign_suggests_the_name(report_env, tmp_path):
    _wave(report_env, tmp_path, "winback-email")
    result = CliRunner().invoke(app, ["report", "winback-emial"])
    assert result.exit_code == 1 and "did you mean 'winback-email'" in result.output


def test_imported_results_are_reported_by_their_outcome(report_env, tmp_path):
    rng = np.random.default_rng(8)
    lines = ["customer_id,segment,visit,spend"]
    for i in range(3000):
        arm = ("mens", "womens", "no e-mail")[i % 3]
        visit = rng.random() < (0.10 if arm == "no e-mail" else 0.17)
        lines.append(f"{i},{arm},{int(visit)},{round(rng.gamma(1, 30), 2) if visit and rng.random() < 0.1 else 0}")
    path = tmp_path / "mailing.csv"
    path.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    imported = runner.invoke(
        app,
        [
            "import",
            "results",
            str(path),
            "--campaign",
            "mailing-2008",
            "--arm-column",
            "segment",
            "--control-label",
            "no e-mail",
            "--outcome",
            "visit",
            "--outcome",
            "spend",
            "--date",
            "2008-03-01",
        ],
    )
    assert imported.exit_code == 0, imported.output
    assert "arm no e-mail (control)" in imported.output
    result = runner.invoke(app, ["report", "mailing-2008", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    variants = {s["key"]: s for s in report["segments"] if s["dimension"] == "variant"}
    assert set(variants) == {"mens", "womens"} and all(v["significant"] for v in variants.values())
    assert any("success = 'visit', revenue = 'spend'" in note for note in report["notes"])


def test_success_report_flow_attaches_artifacts(report_env, tmp_path, prefect_api_url):
    from flows.success_report import success_report

    _wave(report_env, tmp_path, "winback-email")
    result = success_report("winback-email", html_path=str(tmp_path / "flow.html"))
    assert next(s for s in result["segments"] if s["dimension"] == "overall")["significant"]
    assert (tmp_path / "flow.html").exists()

    # Read it back over the API's REST interface (this Prefect/FastAPI pairing's client sends nulls
    # the filter endpoint refuses, so the request is written out).
    import httpx

    body = {"artifacts": {"key": {"any_": ["success-winback-email"]}}, "limit": 5, "sort": "CREATED_DESC"}
    found = httpx.post(f"{prefect_api_url}/artifacts/filter", json=body, timeout=30).raise_for_status().json()
    assert found and found[0]["type"] == "markdown" and "campaign worked" in found[0]["data"]
