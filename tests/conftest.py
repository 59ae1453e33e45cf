"""Shared fixtures: real databases (SQLite file and PostgreSQL), settings in a temp folder.

PostgreSQL: ``CAMPAIGN_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
Each test gets its own schema, dropped afterwards. Where the server is unreachable the
PostgreSQL variants skip, unless ``CAMPAIGN_TEST_REQUIRE_POSTGRES=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.db import engine as database
from orchestrator.settings import DatabaseSettings, PathSettings, Settings

REPO = Path(__file__).resolve().parent.parent
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
