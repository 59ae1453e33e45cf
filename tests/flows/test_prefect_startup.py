"""Prefect's temporary API server on a slow machine: the engine waits as long as it is told, and says what to do.

The server's start is slowed on purpose: a ``sitecustomize`` on the subprocess's path sleeps
before the server imports anything, but only in the server process Prefect starts (it has
``PREFECT__SERVER_EPHEMERAL=1``), never in the command itself. Each test runs in a subprocess
without ``PREFECT_API_URL`` and with its own ``PREFECT_HOME``, as a newcomer's first command would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, STARTUP_TIMEOUT

SLOW_START = """
import os, time
if os.environ.get("PREFECT__SERVER_EPHEMERAL") == "1" and os.environ.get("TEST_SLOW_PREFECT_SECONDS"):
    time.sleep(float(os.environ["TEST_SLOW_PREFECT_SECONDS"]))
"""


def _environment(tmp_path: Path, *, delay: float, timeout: float, prefect_default: float | None = None) -> dict:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SLOW_START)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CAMPAIGN_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TEST_SLOW_PREFECT_SECONDS": str(delay),
        "CAMPAIGN_PREFECT_STARTUP_TIMEOUT": str(timeout),
        "CAMPAIGN_PATHS_DATA_DIR": str(tmp_path / "var"),
        "CAMPAIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'engine.db'}",
    }
    if prefect_default is not None:  # Prefect's own timeout, shorter than the slowed start
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = str(prefect_default)
    return env


FLOW_AFTER_START = """
from prefect import flow

from flows.prefect_api import ensure_prefect_api
from orchestrator.settings import Settings

url = ensure_prefect_api(Settings())


@flow
def answer() -> int:
    return 42


print("result", answer(), url)
"""


@pytest.mark.slow
def test_a_start_slower_than_prefects_default_waits_and_the_flow_runs(tmp_path):
    """Prefect alone would give up after 2 s here (its setting); the engine's timeout applies, says that it
    waits, and the flow then runs on the server it started (Prefect's client finds it running)."""
    env = _environment(tmp_path, delay=6, timeout=STARTUP_TIMEOUT, prefect_default=2)
    done = subprocess.run(
        [sys.executable, "-c", FLOW_AFTER_START],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT * 2,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "result 42 http://127.0.0.1:" in done.stdout
    assert "starting Prefect's temporary API server (waiting up to" in done.stderr
    assert "CAMPAIGN_PREFECT_STARTUP_TIMEOUT" in done.stderr
    assert "Prefect's temporary API server answered after" in done.stderr


def test_a_start_that_does_not_finish_in_time_ends_with_what_to_do(tmp_path):
    """A command that runs a flow (here ``campaign models retrain``) ends with one paragraph naming the
    setting to raise and how to use a running server: no traceback, exit status 1."""
    env = _environment(tmp_path, delay=STARTUP_TIMEOUT, timeout=2)
    command = "from orchestrator.cli.launch import main; main()"
    args = ["models", "retrain", "m", "--campaign", "c", "--kind", "uplift"]
    done = subprocess.run(
        [sys.executable, "-c", command, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    message = " ".join(done.stderr.split())
    assert "did not start within 2 s" in message
    assert "CAMPAIGN_PREFECT_STARTUP_TIMEOUT=600" in message and "PREFECT_API_URL=" in message
    assert "Traceback" not in done.stderr


def test_a_configured_api_url_is_used_as_is(tmp_path):
    """With ``PREFECT_API_URL`` set nothing is started (no server process, no message)."""
    env = _environment(tmp_path, delay=STARTUP_TIMEOUT, timeout=2) | {"PREFECT_API_URL": "http://127.0.0.1:9/api"}
    code = (
        "from flows.prefect_api import ensure_prefect_api\n"
        "from orchestrator.settings import Settings\n"
        "print(ensure_prefect_api(Settings()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=STARTUP_TIMEOUT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "http://127.0.0.1:9/api" and "starting" not in done.stderr
