"""A campaign is checked against the policy and capacity entries of its own channels only.

The shared ``rules/policy.yaml`` names consent columns for the call center and the field force,
and ``rules/capacity.yaml`` a reps file for the field force; an e-mail campaign on a customer
table without phone data, or in a repository without ``reps.csv``, must validate, explain and
plan all the same, while a campaign that does use those channels is stopped by validate.
"""

from __future__ import annotations

import csv
import shutil

import pytest

from orchestrator.customers.importer import import_customers
from orchestrator.customers.table import customer_columns
from orchestrator.demo.synthetic import write_csv
from orchestrator.wave import stages
from orchestrator.wave.validation import has_errors, validate_campaign
from tests.support import REPO

WAVE = "2026-11-24"  # a Tuesday: not a blocked day of the shipped policy


@pytest.fixture
def rules_settings(settings, tmp_path):
    """The settings with a copy of the repo's rules/ and templates/ (to delete files from)."""
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    paths = settings.paths.model_copy(update={"rules_dir": tmp_path / "rules", "templates_dir": tmp_path / "templates"})
    return settings.model_copy(update={"paths": paths})


def _customers_without(engine, tmp_path, drop: set[str]) -> None:
    full = write_csv(tmp_path / "full.csv", 600, seed=3)
    with full.open(newline="") as source:
        rows = list(csv.DictReader(source))
    columns = [c for c in rows[0] if c not in drop]
    path = tmp_path / "customers.csv"
    with path.open("w", newline="") as target:
        writer = csv.DictWriter(target, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    import_customers(engine, path)


def test_an_email_campaign_runs_on_a_table_without_phone_columns(engine, rules_settings, tmp_path):
    _customers_without(engine, tmp_path, {"phone", "consent_phone"})
    columns = customer_columns(engine)
    assert "consent_phone" not in columns
    email = rules_settings.paths.rules_dir / "winback-email.yaml"
    check = validate_campaign(rules_settings, email, columns, engine)
    assert not has_errors(check.problems), [str(p) for p in check.problems]
    prepared, [plan] = stages.prepare_cycle(rules_settings, [email], WAVE)
    assert plan.selection.funnel[-1].remaining > 0

    # a campaign that calls: the policy's consent column for the call center is checked for it
    calls = rules_settings.paths.rules_dir / "calls.yaml"
    calls.write_text(
        "name: calls\naudience:\n  all:\n    - age: {gte: 18}\ncontrol:\n  share: 0.1\n"
        "channels:\n  call_center:\n    template: retention\n    phone_column: email\n"
    )
    errors = [
        str(p) for p in validate_campaign(rules_settings, calls, columns, engine).problems if p.severity == "error"
    ]
    assert any("consent column 'consent_phone' for call_center" in e for e in errors), errors
    assert not any("for email" in e or "field_force" in e for e in errors), errors


def test_a_missing_reps_file_stops_only_the_campaigns_that_visit(engine, rules_settings, tmp_path):
    import_customers(engine, write_csv(tmp_path / "c.csv", 600, seed=4))
    (rules_settings.paths.rules_dir / "reps.csv").unlink()
    columns = customer_columns(engine)
    email = rules_settings.paths.rules_dir / "winback-email.yaml"
    check = validate_campaign(rules_settings, email, columns, engine)
    assert not has_errors(check.problems), [str(p) for p in check.problems]
    _prepared, [plan] = stages.prepare_cycle(rules_settings, [email], WAVE)  # explain's path
    assert plan.selection.funnel[-1].remaining > 0

    multi = rules_settings.paths.rules_dir / "retention-multichannel.yaml"
    errors = [
        str(p) for p in validate_campaign(rules_settings, multi, columns, engine).problems if p.severity == "error"
    ]
    assert any("reps.csv" in e and "does not exist" in e for e in errors), errors
