"""``campaign demo``: the example campaign, end to end, on embedded defaults.

Generates a synthetic customer base, imports it into a SQLite database in the output
folder, starts a local SMTP server on loopback that writes every message as an ``.eml``
file, validates and runs ``rules/winback-email.yaml`` as a Prefect flow, then runs the same
wave again to show that nothing is sent twice.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from orchestrator import progress
from orchestrator.settings import get_settings
from orchestrator.smtp_sink import SmtpSink
from orchestrator.synthetic import write_csv

REPO = Path(__file__).resolve().parent.parent
DEMO_RULES = "winback-email.yaml"


def _configure(output: Path, smtp_port: int) -> None:
    """Point the settings at the demo folder and the local SMTP server (environment, like any deployment)."""
    os.environ["CAMPAIGN_PATHS_DATA_DIR"] = str(output / "var")
    os.environ.setdefault("CAMPAIGN_PATHS_RULES_DIR", str(REPO / "rules"))
    os.environ.setdefault("CAMPAIGN_PATHS_TEMPLATES_DIR", str(REPO / "templates"))
    os.environ.pop("CAMPAIGN_DATABASE_URL", None)
    os.environ["CAMPAIGN_SMTP_HOST"] = "127.0.0.1"
    os.environ["CAMPAIGN_SMTP_PORT"] = str(smtp_port)
    os.environ["CAMPAIGN_SMTP_SECURITY"] = "none"
    os.environ.pop("CAMPAIGN_SMTP_USERNAME", None)
    os.environ.pop("CAMPAIGN_SMTP_PASSWORD", None)
    get_settings.cache_clear()


def _open_day(settings) -> str:
    """Today, or the next day the contact policy does not block (Sundays, holidays)."""
    from orchestrator.policy import blocked_day
    from orchestrator.policy_spec import load_policy

    day = date.today()
    path = settings.paths.rules_dir / "policy.yaml"
    policy = load_policy(path)[0] if path.exists() else None
    while policy is not None and blocked_day(policy, day):
        day += timedelta(days=1)
    return day.isoformat()


def run_demo(output: Path, n_customers: int, console: Console) -> dict:
    from orchestrator.cli import _prepare_selection, print_funnel, print_summary, run_campaign
    from orchestrator.customers import import_customers
    from orchestrator.database import connect

    output = output.resolve()
    if output.exists():
        shutil.rmtree(output)
    mail_dir = output / "mail"
    with SmtpSink(mail_dir) as sink:
        _configure(output, sink.port)
        settings = get_settings()
        rules = settings.paths.rules_dir / DEMO_RULES

        console.rule("1. A synthetic customer base")
        csv_path = write_csv(output / "customers.csv", n_customers)
        with progress.progress("import customers", n_customers) as advance:
            report = import_customers(connect(settings), csv_path, table=settings.database.customer_table, progress=advance)
        console.print(f"imported {report.rows_imported:,} customers from {csv_path}")

        wave = _open_day(settings)
        console.rule(f"2. Who {rules.name} selects on {wave}: audience, contact policy, control group")
        _settings, _prepared, selection = _prepare_selection(rules, wave)
        print_funnel([vars(step) for step in selection.funnel])

        console.rule(f"3. The campaign as a Prefect flow (SMTP server on 127.0.0.1:{sink.port})")
        first = run_campaign(rules, wave=wave, dry_run=False)
        print_summary(first)

        console.rule("4. The same wave again: the ledger makes it exactly once")
        second = run_campaign(rules, wave=wave, dry_run=False)
        print_summary(second)

    console.print(
        Panel.fit(
            f"selected {first['selected']:,}: {first['treated']:,} in the treatment group, "
            f"{first['control']:,} held out as random control group, "
            f"{first['global_control']:,} in the global control group\n"
            f"sent {first['sent_this_run']:,}, skipped {first.get('ledger_skipped', 0):,} (invalid or missing address), "
            f"failed {first.get('ledger_failed', 0):,}; the re-run sent {second['sent_this_run']}\n"
            f"SMTP server received {sink.received:,} messages, one .eml file each: {mail_dir}\n"
            f"engine database (SQLite): {output / 'var' / 'campaign.db'}",
            title="Demo finished",
        )
    )
    return {"first": first, "second": second, "received": sink.received, "mail_dir": str(mail_dir)}
