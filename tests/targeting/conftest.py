"""Fixtures of the target-group selection tests: settings with the test contact policy
(``tests.support.targeting.POLICY``) and the ``campaign`` command on those settings."""

from __future__ import annotations

import shutil

import pytest
import yaml

from orchestrator.settings import DatabaseSettings, PathSettings, Settings
from tests.support import REPO
from tests.support.targeting import POLICY


@pytest.fixture
def policy_settings(db_url, tmp_path) -> Settings:
    """Settings with the test's own rules folder (and policy) and a copy of the templates."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "policy.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    return Settings(
        paths=PathSettings(rules_dir=rules, templates_dir=tmp_path / "templates", data_dir=tmp_path / "var"),
        database=DatabaseSettings(url=db_url),
    )


@pytest.fixture
def cli(make_cli, customers):
    """``cli(*args)``: the ``campaign`` command in-process with the test's settings in the environment."""
    from orchestrator.cli import explain, validate
    from orchestrator.cli import main as module

    return make_cli(module.app, wide=[module, explain, validate])
