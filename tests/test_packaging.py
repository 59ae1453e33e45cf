"""The wheel works on its own: built from a copy of the checkout, installed into a fresh venv
outside it, and run from a folder that is not the checkout.

The fresh venv reuses this venv's installed dependencies through a ``.pth`` line naming this
venv's site-packages (a plain path line: the ``.pth`` files in there, among them the editable
install's finder, are not processed), and gets the wheel itself with ``--no-deps``. So the
test is offline and fast, and ``import orchestrator`` can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

import orchestrator.db.tables  # noqa: F401  (registers the tables in SQLModel.metadata)
from orchestrator.db import engine as database

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {".git", ".venv", "build", "dist", "var", "demo-output", "__pycache__", ".pytest_cache"}


def _copy_checkout(target: Path) -> Path:
    """The sources without venvs, build output and caches, so building never writes into the checkout."""

    def ignore(_folder: str, names: list[str]) -> set[str]:
        return {name for name in names if name in NOT_SHIPPED or name.endswith((".egg-info", ".pyc"))}

    shutil.copytree(CHECKOUT, target, ignore=ignore)
    return target


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _clean_env(tmp: Path, bin_dir: Path) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv, no CAMPAIGN_ setting of the test session; Prefect's home in tmp."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CAMPAIGN_", "PREFECT_", "PYTHON", "VIRTUAL_ENV")) and k != "PIP_REQUIRE_VIRTUALENV"
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PREFECT_HOME"] = str(tmp / "prefect-home")
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["COLUMNS"] = "400"  # rich wraps at 80 columns when not on a terminal; keep messages on one line
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = _copy_checkout(tmp / "src")
    out = tmp / "dist"
    result = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source)],
        cwd=tmp,
        env=dict(os.environ),
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(out.glob("campaign_orchestrator-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """A fresh venv outside the checkout with the wheel installed; its python, bin dir and site-packages."""
    tmp = tmp_path_factory.mktemp("installed")
    assert not tmp.resolve().is_relative_to(CHECKOUT), f"{tmp} is inside the checkout"
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    env = _clean_env(tmp, bin_dir)
    purelib = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp, env=env
        ).stdout.strip()
    )
    # The wheel first: with this venv's site-packages visible, pip would find the editable install's
    # metadata and call the same version already installed.
    result = _run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)], cwd=tmp, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ours = Path(sysconfig.get_path("purelib"))
    (purelib / "_test_venv_dependencies.pth").write_text(f"{ours}\n")
    return {"python": python, "bin": bin_dir, "site": purelib, "env": env, "cwd": tmp}


def test_wheel_contains_the_migrations_and_no_tests(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = sorted((CHECKOUT / "orchestrator/db/migrations/versions").glob("*.py"))
    assert versions, "no migrations in the checkout"
    expected = {
        "orchestrator/db/alembic.ini",
        "orchestrator/db/migrations/env.py",
        "orchestrator/db/migrations/script.py.mako",
        "orchestrator/py.typed",
        "orchestrator/cli/main.py",
        "channels/base.py",
        "flows/run.py",
        *(f"orchestrator/db/migrations/versions/{path.name}" for path in versions),
    }
    assert expected <= names, sorted(expected - names)
    assert not [name for name in names if name.startswith("tests/") or "/tests/" in name]
    assert not [name for name in names if name.startswith(("bench/", "rules/", "templates/", "docs/", "scripts/"))]


def test_orchestrator_is_imported_from_the_wheel(installed):
    result = _run(
        [
            str(installed["python"]),
            "-c",
            "import channels, flows, orchestrator, importlib.metadata as m;"
            "print(orchestrator.__file__); print(channels.__file__); print(flows.__file__);"
            "print(m.distribution('campaign-orchestrator').locate_file(''))",
        ],
        cwd=installed["cwd"],
        env=installed["env"],
    )
    assert result.returncode == 0, result.stderr
    site_packages = installed["site"].resolve()
    for line in result.stdout.split():
        path = Path(line).resolve()
        assert path.is_relative_to(site_packages), f"{path} is not in the new venv's {site_packages}"
        assert not path.is_relative_to(CHECKOUT)


def test_campaign_help_lists_the_commands(installed):
    result = _run([str(installed["bin"] / "campaign"), "--help"], cwd=installed["cwd"], env=installed["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    for command in ("db", "import", "validate", "run", "explain", "report", "api", "serve", "demo", "models", "dlq"):
        assert f" {command} " in result.stdout, f"{command!r} missing from campaign --help:\n{result.stdout}"


def test_campaign_db_upgrade_creates_the_schema(installed, tmp_path):
    db = tmp_path / "x.db"
    env = {**installed["env"], "CAMPAIGN_DATABASE_URL": f"sqlite:///{db}"}
    result = _run([str(installed["bin"] / "campaign"), "db", "upgrade"], cwd=installed["cwd"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    head = database.head_revision()
    assert f"database at revision {head}" in result.stdout
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        assert database.current_revision(engine) == head
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(SQLModel.metadata.tables) <= tables, sorted(set(SQLModel.metadata.tables) - tables)

    # The shipped alembic.ini drives the alembic command line against the same database.
    ini = installed["site"] / "orchestrator" / "db" / "alembic.ini"
    result = _run([str(installed["python"]), "-m", "alembic", "-c", str(ini), "current"], cwd=installed["cwd"], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{head} (head)" in result.stdout


def test_response_api_module_runs_standalone(installed):
    result = _run(
        [str(installed["python"]), "-m", "orchestrator.cli.api", "--help"], cwd=installed["cwd"], env=installed["env"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--host" in result.stdout and "--port" in result.stdout


def test_demo_from_the_wheel_names_what_is_missing(installed, tmp_path):
    output = tmp_path / "demo-output"
    output.mkdir()
    (output / "keep.txt").write_text("not emptied")
    result = _run(
        [str(installed["bin"] / "campaign"), "demo", "--customers", "100", "--output", str(output)],
        cwd=installed["cwd"],
        env=installed["env"],
    )
    assert result.returncode == 1, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "Traceback" not in result.stdout + result.stderr
    assert "error: campaign demo runs the example campaigns of a source checkout" in message
    assert "rules/retention-multichannel.yaml" in message and "templates" in message
    assert "scripts/demo" in message
    assert (output / "keep.txt").exists(), "the output folder was emptied before the check"
