"""The README's demo, smaller: the whole loop runs on local servers and ends with reports."""

from __future__ import annotations

import pytest
from rich.console import Console


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tmp_path, monkeypatch, prefect_api_url):
    from orchestrator.demo.run import run_demo

    for key in ("CAMPAIGN_PATHS_RULES_DIR", "CAMPAIGN_PATHS_TEMPLATES_DIR", "CAMPAIGN_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    console = Console(record=True, width=160)
    result = run_demo(tmp_path / "demo-output", 20_000, console)  # the README demo as it is
    output = console.export_text()
    assert len(result["waves"]) == 3 and "the re-run of wave 1 sent nothing" in output
    assert result["received"] > 0 and all(
        (tmp_path / "demo-output" / "reports" / f"{n}.html").exists()
        for n in ("winback-email", "retention-multichannel")
    )
    assert "outcomes posted to the response API" in output and "'accepted': 0," not in output
    assert "win-back lift per wave" in output and "Model versions of winback-uplift" in output
    assert "winback-uplift v1: the first version of this model" in output and "winback-uplift v2" in output
    # the retention campaign learns its channels: a channel uplift model, and its targeting measured
    # against random and the oracle of the demo world after every wave
    assert "retention-channels v1: the first version of this model" in output
    assert "expected extra buyers in the demo's world" in output
    ratios = [r for _wave, r in result["ratios"]]
    assert len(ratios) == 3 and all(r.oracle > 0 and r.random > 0 for r in ratios)
    assert ratios[-1].to_random > ratios[0].to_random  # targeting by the model beats the cold start


def test_demo_settings_point_at_the_local_servers_without_touching_the_environment(tmp_path):
    import os

    from orchestrator.demo.run import REPO, TASK_CHANNELS, demo_settings
    from orchestrator.settings import DatabaseSettings, Settings, SmtpSettings

    base = Settings(
        database=DatabaseSettings(url="postgresql+psycopg://elsewhere/db"),
        smtp=SmtpSettings(host="relay.example", username="u", password="p", connections=2),
    )
    keys = {f"{d}_{c}": f"whsec_{d}{c}" for d in ("out", "in") for c in TASK_CHANNELS}
    before = dict(os.environ)
    settings = demo_settings(base, tmp_path, 2525, "http://127.0.0.1:9000", 8001, keys)
    assert dict(os.environ) == before
    assert settings.database_url == f"sqlite:///{(tmp_path / 'var' / 'campaign.db').resolve()}"
    assert settings.paths.rules_dir == tmp_path / "rules" and settings.paths.templates_dir == REPO / "templates"
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.username, settings.smtp.password) == (
        "127.0.0.1",
        2525,
        None,
        None,
    )
    assert settings.smtp.connections == 2  # the rest of the base settings is kept
    assert settings.links.base_url == "http://127.0.0.1:8001"
    for channel in TASK_CHANNELS:
        endpoint = settings.webhooks.endpoints[channel]
        assert endpoint.url == f"http://127.0.0.1:9000/{channel}"
        assert endpoint.secret.get_secret_value() == keys[f"out_{channel}"]
        assert settings.api.sources[channel].secret.get_secret_value() == keys[f"in_{channel}"]
    assert base.smtp.host == "relay.example" and base.webhooks.endpoints == {}
