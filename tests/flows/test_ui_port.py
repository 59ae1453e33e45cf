"""The Prefect UI on another port (docs/operations.md): ``prefect server start --port`` alone leaves
the UI talking to 127.0.0.1:4200 (a blank UI); ``PREFECT_UI_API_URL`` points it at the server. A real
``prefect server start`` in a subprocess, its ``/ui-settings`` read back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.smtp_server import free_port

TIMEOUT = float(os.environ.get("CAMPAIGN_TEST_PREFECT_SERVER_TIMEOUT", "180"))


def _ui_api_url(tmp_path: Path, **env: str) -> str:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environment |= {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **env}
    prefect = Path(sys.executable).with_name("prefect")
    command = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-services"]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert process.poll() is None, "prefect server start exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the Prefect server did not answer within {TIMEOUT:.0f} s"
            time.sleep(0.5)
        return httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10).raise_for_status().json()["api_url"]
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.slow
def test_the_ui_on_another_port_needs_prefect_ui_api_url(tmp_path):
    assert _ui_api_url(tmp_path) == "http://127.0.0.1:4200/api"  # what the UI calls: nobody there
    assert _ui_api_url(tmp_path, PREFECT_UI_API_URL="http://campaigns.internal:4300/api") == (
        "http://campaigns.internal:4300/api"
    )
