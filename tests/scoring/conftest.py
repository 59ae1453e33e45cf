"""Fixtures of the scoring tests: ``campaign models`` in-process."""

from __future__ import annotations

import pytest
import typer


@pytest.fixture
def cli(make_cli):
    """Run ``campaign models ...`` against the test database and data folder, on wide consoles."""
    from orchestrator.cli import models as cli_models
    from orchestrator.cli import output as cli_output

    app = typer.Typer()
    app.add_typer(cli_models.models_app, name="models")
    return make_cli(app, "models", wide=[cli_models, cli_output])
