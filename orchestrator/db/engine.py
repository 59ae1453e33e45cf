"""Engine database: connections and schema migrations.

``connect(settings)`` returns a SQLAlchemy engine for the configured URL (a SQLite file by
default, PostgreSQL via ``postgresql+psycopg://``) with the schema upgraded to the newest
Alembic revision on first use. ``upgrade(engine)`` is what ``campaign db upgrade`` runs.

On SQLite, ``REGEXP`` (rules' ``matches``) runs with RE2 (google-re2), in linear time.
Errors never show SQL parameters (``hide_parameters``: they hold customer data), and a SQLite
database file the engine creates is readable by its owner only (0600, its folder 0700; SQLite
gives its journal and WAL files the database file's permissions).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import re2
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from orchestrator.settings import Settings, private_dir, private_file

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_engines: dict[str, sa.Engine] = {}
_lock = threading.Lock()


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re2._Regexp:
    return re2.compile(pattern, _RE2_OPTIONS)


def _regexp(pattern: str | None, value: object) -> bool | None:
    """SQLite's ``value REGEXP pattern`` with RE2: linear in the value, whatever the pattern."""
    if pattern is None or value is None:
        return None
    return _compiled(pattern).search(value if isinstance(value, str) else str(value)) is not None


def _on_sqlite_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
    # replaces the REGEXP of SQLAlchemy's driver (Python's backtracking re: '^(.+)+@x$' took minutes)
    dbapi_connection.create_function("regexp", 2, _regexp, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """A SQLAlchemy engine with the engine's connection settings (no migration)."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            path = Path(database)
            if not path.parent.exists():
                private_dir(path.parent)
            if not path.exists():  # SQLite gives its journal and WAL files the same permissions
                private_file(path).close()
        engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 30}, hide_parameters=True)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return sa.create_engine(url, echo=echo, pool_pre_ping=True, hide_parameters=True)


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, f"no migrations found in {MIGRATIONS_DIR}"
    return head


def upgrade(engine: sa.Engine, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision``; returns the revision the database is at."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)
    return current_revision(engine)


def connect(settings: Settings, *, migrate: bool = True) -> sa.Engine:
    """The engine for ``settings``, created once per URL and upgraded to the newest schema."""
    url = settings.database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine(url, echo=settings.database.echo)
            if migrate and current_revision(engine) != head_revision():
                upgrade(engine)
            _engines[url] = engine
    return engine


def dispose_all() -> None:
    """Close every pooled connection (tests, forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
