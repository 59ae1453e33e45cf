"""Shared fixtures: real databases (SQLite file and PostgreSQL), settings in a temp folder,
synthetic customers, the ``campaign`` command in-process, and the real servers a wave and a
cycle deliver to (aiosmtpd, uvicorn webhook receivers). Plain helpers are in ``tests/support``.

PostgreSQL: ``CAMPAIGN_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
Each test gets its own schema, dropped afterwards. Where the server is unreachable the
PostgreSQL variants skip, unless ``CAMPAIGN_TEST_REQUIRE_POSTGRES=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

import orchestrator  # noqa: F401  (first: sets OMP_WAIT_POLICY before scikit-learn loads its OpenMP runtime)
from orchestrator.customers.importer import import_customers
from orchestrator.db import engine as database
from orchestrator.demo.synthetic import write_csv
from orchestrator.execution import progress
from orchestrator.settings import DatabaseSettings, PathSettings, Settings, use_settings
from tests.smtp_server import SmtpServer
from tests.support import REPO
from tests.support.wave import CALLS_PER_DAY, VISITS_PER_REP, cycle_settings_for
from tests.webhook_receiver import TestReceiver

SHARED_DATASETS = REPO.parent / "shared" / "datasets"
BANK_CSV = SHARED_DATASETS / "bank-marketing" / "bank-additional-full.csv"

POSTGRES_URL = os.environ.get("CAMPAIGN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("CAMPAIGN_TEST_REQUIRE_POSTGRES") == "1"

_pg_reachable: bool | None = None


def _postgres_reachable() -> bool:
    global _pg_reachable
    if _pg_reachable is None:
        try:
            with sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3}).connect() as conn:
                conn.execute(sa.text("select 1"))
            _pg_reachable = True
        except Exception:  # noqa: BLE001
            _pg_reachable = False
    return _pg_reachable


@contextmanager
def fresh_database(kind: str, folder: Path, name: str = "engine") -> Iterator[str]:
    """The URL of an empty database: a SQLite file ``folder/<name>.db``, or a fresh PostgreSQL schema
    (dropped afterwards). PostgreSQL skips (fails on CI) where the server is unreachable."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{name}.db'}"
        database.dispose_all()
        return
    if not _postgres_reachable():
        message = f"PostgreSQL not reachable at {POSTGRES_URL}"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " (CAMPAIGN_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        database.dispose_all()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A database URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    """Settings pointing at the test database and a temp data folder, repo rules/templates."""
    return Settings(
        paths=PathSettings(rules_dir=REPO / "rules", templates_dir=REPO / "templates", data_dir=tmp_path / "var"),
        database=DatabaseSettings(url=db_url),
    )


@pytest.fixture
def engine(settings) -> sa.Engine:
    """The migrated engine database."""
    return database.connect(settings)


@pytest.fixture
def bank_csv() -> Path:
    if not BANK_CSV.exists():
        pytest.skip(f"dataset not present: {BANK_CSV}")
    return BANK_CSV


@pytest.fixture(scope="session")
def prefect_api_url():
    """A real temporary Prefect API for the whole session; its URL (for subprocesses too)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


# --- customers --------------------------------------------------------------------------------


@pytest.fixture
def make_customers(engine, tmp_path) -> Callable[..., sa.Engine]:
    """``make_customers(n, seed=...)``: ``n`` synthetic customers (``orchestrator.demo.synthetic``)
    imported into the engine database through a CSV file; the engine."""

    def make(n: int, *, seed: int) -> sa.Engine:
        import_customers(engine, write_csv(tmp_path / "customers.csv", n, seed=seed))
        return engine

    return make


@pytest.fixture
def customers(make_customers) -> sa.Engine:
    """3,000 synthetic customers (seed 11) in the engine database."""
    return make_customers(3000, seed=11)


# --- the campaign command ---------------------------------------------------------------------


@pytest.fixture
def make_cli(settings, monkeypatch):
    """``make_cli(app, *prefix, wide=modules)`` -> ``cli(*args)``: runs the Typer ``app`` in-process
    (CliRunner) as ``<prefix> <args>`` with the test's settings (``use_settings``: what the commands'
    ``get_settings()`` returns). The consoles (``console``, ``err``) of the modules in ``wide`` are
    250 columns wide, so table cells and messages are not wrapped."""
    runner = CliRunner()

    def make(app, *prefix: str, wide=()):
        for module in wide:
            for name in ("console", "err"):
                if hasattr(module, name):
                    monkeypatch.setattr(module, name, Console(stderr=name == "err", width=250))

        def invoke(*args):
            with use_settings(settings):
                return runner.invoke(app, [*prefix, *map(str, args)])

        return invoke

    yield make
    progress.disable()


# --- the servers a wave delivers to -------------------------------------------------------------


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def receivers():
    """The call center and field force task-list receivers (uvicorn, signatures verified)."""
    with TestReceiver(path="/call_center") as calls, TestReceiver(path="/field_force") as visits:
        yield calls, visits


# --- a cycle of several campaigns on several channels -----------------------------------------


@pytest.fixture
def workspace(tmp_path):
    """rules/ and templates/ of the repo, with a small capacity and a retention campaign."""
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    (rules / "capacity.yaml").write_text(
        f"call_center:\n  tasks_per_day: {CALLS_PER_DAY}\n"
        f"field_force:\n  visits_per_rep_per_day: {VISITS_PER_REP}\n  reps: reps.csv\n"
    )
    (rules / "reps.csv").write_text("rep_id,territory\nR1,T01\nR2,T01\nR3,T11\nR4,T21\n")
    return tmp_path


@pytest.fixture
def cycle_settings(settings, workspace):
    return settings.model_copy(
        update={
            "paths": settings.paths.model_copy(
                update={"rules_dir": workspace / "rules", "templates_dir": workspace / "templates"}
            )
        }
    )


@pytest.fixture
def cycle_customers(make_customers) -> sa.Engine:
    """3,000 synthetic customers (seed 5) for the cycle."""
    return make_customers(3000, seed=5)


@pytest.fixture
def run_settings(cycle_settings, smtp, receivers, cycle_customers, prefect_api_url) -> Settings:
    """The settings of the cycle under test: its workspace, the test SMTP server and receivers."""
    return cycle_settings_for(cycle_settings, smtp.port, *receivers)
