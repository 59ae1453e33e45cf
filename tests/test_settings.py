"""How settings reach code: ``get_settings()`` reads the environment each time unless ``use_settings`` set an object."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.settings import ExecutionSettings, Settings, SmtpSettings, get_settings, use_settings


def test_get_settings_reads_the_environment_each_time(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_SMTP_PORT", "2525")
    assert get_settings().smtp.port == 2525
    monkeypatch.setenv("CAMPAIGN_SMTP_PORT", "2526")  # no cache to clear
    assert get_settings().smtp.port == 2526


def test_use_settings_wins_over_the_environment_and_nests(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_SMTP_PORT", "2525")
    outer = Settings(smtp=SmtpSettings(port=1025))
    inner = Settings(smtp=SmtpSettings(port=1026))
    with use_settings(outer) as given:
        assert given is outer and get_settings() is outer
        with use_settings(inner):
            assert get_settings() is inner
        assert get_settings() is outer
    assert get_settings().smtp.port == 2525


def test_use_settings_is_undone_when_the_block_raises(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_SMTP_PORT", "2525")
    with pytest.raises(RuntimeError), use_settings(Settings(smtp=SmtpSettings(port=1025))):
        raise RuntimeError("boom")
    assert get_settings().smtp.port == 2525


def test_cli_execution_options_replace_the_configured_ones_on_a_copy():
    from orchestrator.cli.main import with_execution

    settings = Settings(execution=ExecutionSettings(workers=2, chunk_size=500))
    changed = with_execution(settings, task_runner="dask", workers=None, dask_address=None, chunk_size=97)
    assert changed.execution.task_runner == "dask" and changed.execution.chunk_size == 97
    assert changed.execution.workers == 2  # not given: the configured value
    assert settings.execution.task_runner == "threads" and settings.execution.chunk_size == 500
    assert changed.smtp is settings.smtp
    with pytest.raises(ValidationError, match="chunk_size"):
        with_execution(settings, chunk_size=0)
