"""Whole-campaign validation: rules file + templates + policy + models, with file:line:col."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from orchestrator.customers.importer import import_customers
from orchestrator.customers.table import customer_columns
from orchestrator.demo.synthetic import write_csv
from orchestrator.scoring.registry import register
from orchestrator.scoring.response import train_response_model
from orchestrator.wave.validation import validate_campaign
from tests.conftest import REPO

RULES = (REPO / "rules" / "winback-email.yaml").read_text()


def _rules(tmp_path, extra: str) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(RULES + extra)
    return path


def _line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _train(engine, settings, columns=("age", "revenue_12m", "segment")):
    rng = np.random.default_rng(3)
    n = 2_000
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "revenue_12m": rng.gamma(2, 500, n),
            "segment": rng.choice(["gold", "silver", "bronze"], n),
            "shoe_size": rng.integers(36, 48, n),
        }
    )
    frame["y"] = (rng.random(n) < 0.05 + 0.2 * (frame["segment"] == "gold")).astype(int)
    result = train_response_model(frame[[*columns, "y"]], "y")
    register(engine, settings, "propensity", result.model, result.metrics, result.fingerprint, "y", result.rows)


def test_unknown_model_is_named_at_its_line(engine, settings, tmp_path):
    import_customers(engine, write_csv(tmp_path / "c.csv", 300))
    _train(engine, settings)
    path = _rules(tmp_path, "scores:\n  model: propensty\n  min_score: 0.1\n")
    check = validate_campaign(settings, path, customer_columns(engine), engine)
    [problem] = [p for p in check.problems if p.severity == "error"]
    assert (problem.file, problem.line, problem.col) == (str(path), _line_of(path, "model: propensty"), 10)
    assert "propensty" in problem.message and "did you mean 'propensity'" in problem.message


def test_model_whose_feature_is_missing_from_the_customer_table(engine, settings, tmp_path):
    import_customers(engine, write_csv(tmp_path / "c.csv", 300))
    _train(engine, settings, columns=("age", "shoe_size"))
    path = _rules(tmp_path, "scores:\n  model: propensity\n  top: 100\n")
    check = validate_campaign(settings, path, customer_columns(engine), engine)
    [problem] = [p for p in check.problems if p.severity == "error"]
    assert problem.line == _line_of(path, "model: propensity")
    assert "feature 'shoe_size' is missing" in problem.message


def test_known_model_validates_and_scores_column_stays_optional(engine, settings, tmp_path):
    import_customers(engine, write_csv(tmp_path / "c.csv", 300))
    _train(engine, settings)
    path = _rules(tmp_path, "scores:\n  model: propensity\n  top_percent: 30\n")
    check = validate_campaign(settings, path, customer_columns(engine), engine)
    assert check.ok, [str(p) for p in check.problems]


def test_control_share_and_policy_cap_errors_name_the_field(settings, tmp_path):
    path = tmp_path / "campaign.yaml"
    path.write_text(RULES.replace("share: 0.1", "share: 1.5") + "policy:\n  frequency_caps:\n    - {max: 0, days: 7}\n")
    check = validate_campaign(settings, path, None)
    errors = [p for p in check.problems if p.severity == "error"]
    share = next(p for p in errors if "share" in p.message)
    assert share.line == _line_of(path, "share: 1.5")
    cap = next(p for p in errors if "max" in p.message)
    assert cap.line == _line_of(path, "{max: 0, days: 7}")


def test_a_channel_no_customer_may_get_is_an_error_at_its_line(engine, settings, tmp_path):
    """A multichannel campaign whose field force may visit nobody (no customer is 'platinum'): the
    channel's eligible: condition is named at its line; the channels customers may get pass."""
    import_customers(engine, write_csv(tmp_path / "c.csv", 300))
    text = (REPO / "rules" / "retention-multichannel.yaml").read_text()
    path = tmp_path / "retention.yaml"
    path.write_text(text.replace("eligible: {segment: gold}", "eligible: {segment: platinum}"))
    check = validate_campaign(settings, path, customer_columns(engine), engine)
    errors = [p for p in check.problems if p.severity == "error"]
    [problem] = [p for p in errors if "field_force" in p.message]
    assert (problem.file, problem.line) == (str(path), _line_of(path, "eligible: {segment: platinum}"))
    assert "none of the" in problem.message and "customers of the audience may get it" in problem.message
    assert not [p for p in errors if "call_center" in p.message or "channel email" in p.message]
    path.write_text(text)  # as shipped: every channel has customers
    assert not [
        p
        for p in validate_campaign(settings, path, customer_columns(engine), engine).problems
        if "none of the" in p.message
    ]


# --- campaign validate: every file of rules/ by kind -------------------------------------------


def test_the_readme_command_validates_the_shipped_rules_folder(make_cli, settings, customers):
    """``campaign validate rules/*.yaml`` (the README's command) and ``campaign validate`` exit 0 on the repo."""
    import json

    from orchestrator.cli import main, validate

    cli = make_cli(main.app, wide=[main, validate])
    shipped = sorted((REPO / "rules").glob("*.yaml"))
    result = cli("validate", *shipped)
    assert result.exit_code == 0, result.output
    assert f"{REPO / 'rules' / 'policy.yaml'}: ok (policy)" in result.output
    assert f"{REPO / 'rules' / 'capacity.yaml'}: ok (capacity)" in result.output
    everything = cli("validate", "--format", "json")
    assert everything.exit_code == 0, everything.output
    document = json.loads(everything.stdout)
    kinds = {Path(f["file"]).relative_to(REPO / "rules").as_posix(): f["kind"] for f in document["files"]}
    assert kinds["policy.yaml"] == "policy" and kinds["capacity.yaml"] == "capacity"
    assert kinds["segments/lapsed.yaml"] == "segment" and kinds["winback-email.yaml"] == "campaign"
    assert document["ok"] is True


def test_each_kind_is_checked_by_its_own_schema(make_cli, settings, customers, tmp_path):
    import json

    from orchestrator.cli import main, validate

    (tmp_path / "policy.yaml").write_text("consent:\n  email: consent_emial\n")
    (tmp_path / "capacity.yaml").write_text("call_center:\n  tasks_per_dy: 5\n")
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments" / "young.yaml").write_text("name: young\naudience:\n  agee: {lt: 30}\n")
    cli = make_cli(main.app, wide=[main, validate])
    result = cli(
        "validate",
        "--format",
        "json",
        tmp_path / "policy.yaml",
        tmp_path / "capacity.yaml",
        tmp_path / "segments" / "young.yaml",
    )
    assert result.exit_code == 1
    by_file = {Path(f["file"]).name: f for f in json.loads(result.stdout)["files"]}
    assert [p["line"] for p in by_file["policy.yaml"]["problems"]] == [2]
    assert "consent_emial" in by_file["policy.yaml"]["problems"][0]["message"]
    assert "tasks_per_day" in by_file["capacity.yaml"]["problems"][0]["message"]
    assert by_file["young.yaml"]["kind"] == "segment" and "agee" in by_file["young.yaml"]["problems"][0]["message"]


# --- CLI conventions: --version, --format json on the commands that print data -------------------


def test_version_and_json_output_of_explain_and_models(make_cli, engine, settings, tmp_path):
    import json

    import orchestrator
    from orchestrator.cli import explain, main

    import_customers(engine, write_csv(tmp_path / "c.csv", 400))
    _train(engine, settings)
    cli = make_cli(main.app, wide=[main, explain])
    version = cli("--version")
    assert version.exit_code == 0 and version.stdout.strip() == f"campaign {orchestrator.__version__}"

    explained = cli("explain", REPO / "rules" / "winback-email.yaml", "--wave", "2026-11-24", "--format", "json")
    assert explained.exit_code == 0, explained.output
    [plan] = json.loads(explained.stdout)
    assert plan["campaign"] == "winback-email" and plan["funnel"][0]["remaining"] == 400
    assert plan["channels"]["email"]["treated"] > 0 and plan["channels"]["email"]["control"] > 0

    listed = json.loads(cli("models", "list", "--format", "json").stdout)
    assert [(m["name"], m["version"], m["stage"]) for m in listed] == [("propensity", 1, "champion")]
    shown = json.loads(cli("models", "show", "propensity", "--format", "json").stdout)
    assert shown["metrics"]["roc_auc"] == listed[0]["metrics"]["roc_auc"] and shown["target"] == "y"
