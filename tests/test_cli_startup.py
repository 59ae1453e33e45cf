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


def test_every_command_says_something_before_it_loads_the_engine():
    """The console script's first line comes from ``launch`` (which imports only ``sys`` and ``time``)."""
    from orchestrator.cli.launch import first_line

    assert first_line(["validate", "rules/a.yaml"]) == "campaign validate: loading the engine ..."
    assert first_line(["models", "train", "--name", "m"]) == "campaign models train: loading the engine ..."
    assert first_line(["run", "rules/a.yaml", "--wave", "2026-11-24"]) == (
        "campaign run rules/a.yaml: loading the engine and starting Prefect ..."
    )
    assert first_line(["--help"]) is None and first_line(["validate", "--help"]) is None and first_line([]) is None
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import orchestrator.cli.launch"],
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not imported & {"typer", "rich", "pydantic", "orchestrator.settings"}


def test_help_shows_flags_as_flags_and_the_choices_of_options():
    def flags_with_a_value(text: str) -> list[str]:  # typer's own --help line keeps its <bool>
        return [line for line in text.splitlines() if "<bool>" in line and "--help" not in line]

    text = _probe("run", "--help")["output"]
    assert "--dry-run" in text and "--yes" in text and "<threads|dask>" in text and "<text|json>" in text
    assert flags_with_a_value(text) == []  # --dry-run, --yes, --json, --debug take no value
    for command in (["report", "--help"], ["models", "train", "--help"], ["dlq", "retry", "--help"]):
        assert flags_with_a_value(_probe(*command)["output"]) == [], command
