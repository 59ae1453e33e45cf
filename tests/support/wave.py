"""Helpers of the wave and cycle tests (``tests/wave``, ``tests/learning``): the settings a
deployment has in its environment, running a cycle of rules files, reading the ledger back, and
holding an SMTP conversation at a chosen RCPT."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import sqlalchemy as sa

from orchestrator.ledger import contacts as ledger
from orchestrator.settings import Settings, WebhookEndpoint
from tests.smtp_server import SmtpServer
from tests.support import REPO
from tests.webhook_receiver import SECRET, TestReceiver

RULES = REPO / "rules" / "winback-email.yaml"
WAVE = "2026-11-24"  # a Tuesday: rules/policy.yaml blocks Sundays and holidays
CALLS_PER_DAY = 60  # the capacity of the cycle workspace (the ``workspace`` fixture)
VISITS_PER_REP = 3


def wave_environment(settings, smtp_port: int, **extra: str) -> dict[str, str]:
    """The settings of a wave (database, folders, SMTP) as environment variables."""
    return {
        "CAMPAIGN_DATABASE_URL": settings.database_url,
        "CAMPAIGN_DATABASE_CHUNK_SIZE": "100",
        "CAMPAIGN_PATHS_DATA_DIR": str(settings.paths.data_dir),
        "CAMPAIGN_PATHS_RULES_DIR": str(settings.paths.rules_dir),
        "CAMPAIGN_PATHS_TEMPLATES_DIR": str(settings.paths.templates_dir),
        "CAMPAIGN_SMTP_HOST": "127.0.0.1",
        "CAMPAIGN_SMTP_PORT": str(smtp_port),
        "CAMPAIGN_SMTP_TIMEOUT": "5",
        "CAMPAIGN_SMTP_MAX_RETRIES": "1",
        "CAMPAIGN_SMTP_RETRY_WAIT": "0.01",
        **extra,
    }


def cycle_environment(settings, smtp_port: int, calls: TestReceiver, visits: TestReceiver) -> dict[str, str]:
    """``wave_environment`` plus the two webhook endpoints (call center, field force)."""
    return {
        **wave_environment(settings, smtp_port),
        "CAMPAIGN_WEBHOOKS_ENDPOINTS__CALL_CENTER__URL": calls.url,
        "CAMPAIGN_WEBHOOKS_ENDPOINTS__CALL_CENTER__SECRET": SECRET,
        "CAMPAIGN_WEBHOOKS_ENDPOINTS__FIELD_FORCE__URL": visits.url,
        "CAMPAIGN_WEBHOOKS_ENDPOINTS__FIELD_FORCE__SECRET": SECRET,
        "CAMPAIGN_WEBHOOKS_BATCH_SIZE": "7",
        "CAMPAIGN_WEBHOOKS_TIMEOUT": "2",
        "CAMPAIGN_WEBHOOKS_MAX_ATTEMPTS": "3",
        "CAMPAIGN_WEBHOOKS_RETRY_WAIT": "0.01",
        "CAMPAIGN_WEBHOOKS_RETRY_WAIT_MAX": "0.05",
        "CAMPAIGN_WEBHOOKS_CONCURRENCY": "3",
    }


def wave_settings_for(settings: Settings, smtp_port: int) -> Settings:
    """The settings ``wave_environment`` gives a process, as the object in-process callers pass."""
    return settings.model_copy(
        update={
            "database": settings.database.model_copy(update={"chunk_size": 100}),
            "smtp": settings.smtp.model_copy(
                update={"host": "127.0.0.1", "port": smtp_port, "timeout": 5.0, "max_retries": 1, "retry_wait": 0.01}
            ),
        }
    )


def cycle_settings_for(settings: Settings, smtp_port: int, calls: TestReceiver, visits: TestReceiver) -> Settings:
    """The settings ``cycle_environment`` gives a process, as the object in-process callers pass."""
    base = wave_settings_for(settings, smtp_port)
    endpoints = {
        "call_center": WebhookEndpoint(url=calls.url, secret=SECRET),
        "field_force": WebhookEndpoint(url=visits.url, secret=SECRET),
    }
    webhooks = {
        "endpoints": endpoints,
        "batch_size": 7,
        "timeout": 2.0,
        "max_attempts": 3,
        "retry_wait": 0.01,
        "retry_wait_max": 0.05,
        "concurrency": 3,
    }
    return base.model_copy(update={"webhooks": base.webhooks.model_copy(update=webhooks)})


def cycle_rules(settings, *names: str) -> list[Path]:
    """The rules files ``<name>.yaml`` of the settings' rules folder."""
    return [settings.paths.rules_dir / f"{name}.yaml" for name in names]


def run_cycle(settings, *names: str, wave: str = WAVE, dry_run: bool = False) -> list[dict]:
    """Run the cycle flow over the rules files ``names``; the summaries, one per campaign."""
    from flows.run import run_cycle as run

    return run(settings, cycle_rules(settings, *names), wave=wave, dry_run=dry_run)


def wave_ledger(engine):
    """``(customer_id, arm, status)`` of every contact in the ledger."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(ledger.contacts.c.customer_id, ledger.contacts.c.arm, ledger.contacts.c.status)
        ).all()


def pause_rcpt(server: SmtpServer, at: int) -> tuple[threading.Event, threading.Event]:
    """Make the server hold the ``at``-th RCPT until released (the client is mid-conversation)."""
    reached, release = threading.Event(), threading.Event()
    assert server._controller is not None, "the server is not running"
    handler = server._controller.handler
    original = handler.handle_RCPT
    calls = 0

    async def handle_RCPT(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == at:
            reached.set()
            while not release.is_set():
                await asyncio.sleep(0.01)
            return "451 4.3.0 connection gone"
        return await original(*args, **kwargs)

    handler.handle_RCPT = handle_RCPT
    return reached, release
