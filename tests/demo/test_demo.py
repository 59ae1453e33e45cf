"""The README's demo, smaller: the whole loop runs on local servers and ends with reports."""

from __future__ import annotations

import pytest
from rich.console import Console

from orchestrator.settings import get_settings


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tmp_path, monkeypatch, prefect_api_url):
    from orchestrator.demo.run import run_demo

    for key in ("CAMPAIGN_PATHS_RULES_DIR", "CAMPAIGN_PATHS_TEMPLATES_DIR", "CAMPAIGN_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    console = Console(record=True, width=160)
    try:
        result = run_demo(tmp_path / "demo-output", 20_000, console)  # the README demo as it is
    finally:
        get_settings.cache_clear()
    output = console.export_text()
    assert len(result["waves"]) == 3 and "the re-run of wave 1 sent nothing" in output
    assert result["received"] > 0 and all(
        (tmp_path / "demo-output" / "reports" / f"{n}.html").exists()
        for n in ("winback-email", "retention-multichannel")
    )
    assert "outcomes posted to the response API" in output and "'accepted': 0," not in output
    assert "win-back lift per wave" in output and "Model versions of winback-uplift" in output
    assert "winback-uplift v1: the first version of this model" in output and "winback-uplift v2" in output
