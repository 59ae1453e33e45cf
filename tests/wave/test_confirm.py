"""``campaign run`` asks before a real send: at a terminal (a real pseudo-terminal, the command in a
subprocess against the session's Prefect API and a real SMTP server) "n" records and sends nothing
and "y" sends; without a terminal it refuses unless given ``--yes``."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from orchestrator.cli import main as cli_main
from orchestrator.cli import output as cli_output
from orchestrator.ledger import contacts as ledger
from tests.support.wave import RULES, wave_environment, wave_ledger

PROMPT = re.compile(r"send ([\d,]+) contacts through 1 channel\? \[y/N\]")
TIMEOUT = float(os.environ.get("CAMPAIGN_TEST_CONFIRM_TIMEOUT", "300"))


def _waves(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(ledger.waves)).scalar_one()


def test_without_a_terminal_a_real_send_needs_yes(settings, customers, make_cli):
    cli = make_cli(cli_main.app, wide=[cli_output])
    result = cli("run", RULES, "--wave", "2026-12-14")
    assert result.exit_code == 1
    assert "there is no terminal to ask at" in result.output and "pass --yes" in result.output
    assert _waves(customers) == 0 and wave_ledger(customers) == []


def _answer(command: list[str], env: dict, cwd, answer: bytes) -> tuple[int, str, str]:
    """Run ``command`` with a pseudo-terminal as stdin; answer the prompt when it shows on stderr."""
    master, slave = pty.openpty()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while not PROMPT.search(seen.decode(errors="replace")):
            assert time.monotonic() < deadline, f"no prompt within {TIMEOUT:.0f} s: {seen.decode(errors='replace')}"
            chunk = os.read(process.stderr.fileno(), 4096)
            assert chunk or process.poll() is None, f"exited without asking: {seen.decode(errors='replace')}"
            seen += chunk
        os.write(master, answer + b"\n")
        out, rest = process.communicate(timeout=TIMEOUT)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return process.returncode, out.decode(), (seen + rest).decode(errors="replace")


@pytest.mark.slow
def test_at_a_terminal_no_sends_nothing_and_yes_sends(settings, customers, smtp, prefect_api_url, tmp_path):
    env = {**os.environ, **wave_environment(settings, smtp.port), "PREFECT_API_URL": prefect_api_url}
    command = [sys.executable, "-c", "from orchestrator.cli.main import app; app()", "run", str(RULES)]
    command += ["--wave", "2026-12-15"]

    code, _out, err = _answer(command, env, tmp_path, b"n")
    assert code == 1, err
    assert "nothing was recorded or sent" in err
    assert smtp.received == [] and wave_ledger(customers) == []

    code, out, err = _answer(command, env, tmp_path, b"y")
    assert code == 0, err
    asked = int(PROMPT.search(err).group(1).replace(",", ""))
    treated = [r for r in wave_ledger(customers) if r.arm == "treatment"]
    assert asked == len(treated) > 300
    assert 0 < len(smtp.received) <= asked and "sent in this run" in out
