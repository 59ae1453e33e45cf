"""``campaign --help`` loads no heavy library: Prefect, scikit-learn, pandas, matplotlib, NumPy and SQLAlchemy
are imported by the commands that use them, not by the command line itself (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO, STARTUP_TIMEOUT

HEAVY = ("prefect", "sklearn", "pandas", "matplotlib", "numpy", "sqlalchemy", "scipy", "pyarrow")

PROBE = """
import json, sys
from typer.testing import CliRunner
from orchestrator.cli.main import app
result = CliRunner().invoke(app, sys.argv[1:])
print(json.dumps({"exit": result.exit_code, "output": result.output,
                  "loaded": sorted(m for m in HEAVY if m in sys.modules)}))
""".replace("HEAVY", repr(HEAVY))


def _probe(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_loads_none_of_the_heavy_libraries():
    probe = _probe("--help")
    assert probe["exit"] == 0 and "validate" in probe["output"]
    assert probe["loaded"] == []


def test_a_commands_help_loads_none_of_them_either():
    for command in (["run", "--help"], ["validate", "--help"], ["models", "--help"]):
        probe = _probe(*command)
        assert probe["exit"] == 0, probe["output"]
        assert probe["loaded"] == [], (command, probe["loaded"])
