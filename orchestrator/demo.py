"""``campaign demo``: the example campaigns, end to end, on embedded defaults.

Generates a synthetic customer base, imports it into a SQLite database in the output
folder, starts a local SMTP server on loopback that writes every message as an ``.eml``
file and local webhook receivers (the reference receiver, verifying signatures) that write
every call-center and field-force task list as a ``.json`` file, then runs
``rules/retention-multichannel.yaml`` and ``rules/winback-email.yaml`` as one cycle
(arbitration, channel allocation within ``rules/capacity.yaml``) as a Prefect flow, and runs
the same wave again to show that nothing is sent twice.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from orchestrator import progress
from orchestrator.settings import get_settings
from orchestrator.smtp_sink import SmtpSink
from orchestrator.synthetic import write_csv

REPO = Path(__file__).resolve().parent.parent
DEMO_RULES = ("retention-multichannel.yaml", "winback-email.yaml")
TASK_CHANNELS = ("call_center", "field_force")


def _configure(output: Path, smtp_port: int, receiver_url: str | None = None, secret: str | None = None) -> None:
    """Point the settings at the demo folder and the local servers (environment, like any deployment)."""
    os.environ["CAMPAIGN_PATHS_DATA_DIR"] = str(output / "var")
    os.environ.setdefault("CAMPAIGN_PATHS_RULES_DIR", str(REPO / "rules"))
    os.environ.setdefault("CAMPAIGN_PATHS_TEMPLATES_DIR", str(REPO / "templates"))
    os.environ.pop("CAMPAIGN_DATABASE_URL", None)
    os.environ["CAMPAIGN_SMTP_HOST"] = "127.0.0.1"
    os.environ["CAMPAIGN_SMTP_PORT"] = str(smtp_port)
    os.environ["CAMPAIGN_SMTP_SECURITY"] = "none"
    os.environ.pop("CAMPAIGN_SMTP_USERNAME", None)
    os.environ.pop("CAMPAIGN_SMTP_PASSWORD", None)
    if receiver_url is not None:
        for channel in TASK_CHANNELS:
            os.environ[f"CAMPAIGN_WEBHOOKS_ENDPOINTS__{channel.upper()}__URL"] = f"{receiver_url}/{channel}"
            os.environ[f"CAMPAIGN_WEBHOOKS_ENDPOINTS__{channel.upper()}__SECRET"] = secret
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


def _simulate_conversions(engine, path: Path, wave: str) -> Path:
    """Purchases in the 30 days after the wave: 4% of everyone, plus a campaign effect among the
    treated (1 point for e-mail, 6 for a call, 12 for a visit). The engine does not know these
    rates; success control has to find the effect from the random control groups."""
    import numpy as np
    import sqlalchemy as sa

    lift = {"email": 0.01, "call_center": 0.06, "field_force": 0.12}
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select customer_id, arm, channel from contacts where arm in ('treatment', 'control')")).all()
    rng = np.random.default_rng(2026)
    day = date.fromisoformat(wave)
    lines = ["customer_id,occurred_at,amount,product"]
    for customer_id, arm, channel in rows:
        p = 0.04 + (lift.get(channel, 0.0) if arm == "treatment" else 0.0)
        if rng.random() < p:
            when = day + timedelta(days=int(rng.integers(1, 30)))
            lines.append(f"{customer_id},{when.isoformat()}T12:00:00,{rng.gamma(2.0, 60.0):.2f},deposit")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_demo(output: Path, n_customers: int, console: Console) -> dict:
    import base64
    import secrets

    from channels.webhook_receiver import BatchStore, receiver_app, serve_receiver
    from orchestrator.cli import _prepare_cycle, print_channels, print_funnel, print_losses, print_summary, run_cycle
    from orchestrator.cli_report import build_campaign_report
    from orchestrator.conversions import import_conversions
    from orchestrator.customers import import_customers
    from orchestrator.database import connect
    from orchestrator.report_render import print_report, write_html

    output = output.resolve()
    if output.exists():
        shutil.rmtree(output)
    mail_dir, hooks_dir = output / "mail", output / "webhooks"
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()  # shared by sender and receivers only
    store = BatchStore(folder=hooks_dir)
    receivers = receiver_app({channel: secret for channel in TASK_CHANNELS}, store)
    with SmtpSink(mail_dir) as sink, serve_receiver(receivers) as receiver:
        _configure(output, sink.port, receiver.url, secret)
        settings = get_settings()
        rules = [settings.paths.rules_dir / name for name in DEMO_RULES]

        console.rule("1. A synthetic customer base")
        csv_path = write_csv(output / "customers.csv", n_customers)
        with progress.progress("import customers", n_customers) as advance:
            report = import_customers(connect(settings), csv_path, table=settings.database.customer_table, progress=advance)
        console.print(f"imported {report.rows_imported:,} customers from {csv_path}")

        wave = _open_day(settings)
        console.rule(f"2. Who the campaigns select on {wave}: audience, policy, arbitration, control group, channels")
        _settings, _prepared, plans = _prepare_cycle(rules, wave)
        for plan in plans:
            console.print(f"[bold]{plan.spec.name}[/] (priority {plan.spec.priority})")
            print_funnel([vars(step) for step in plan.selection.funnel])
            print_channels(plan)
        print_losses(plans)

        console.rule(
            f"3. The cycle as a Prefect flow (SMTP on 127.0.0.1:{sink.port}, task lists to {receiver.url}/call_center, /field_force)"
        )
        first = run_cycle(rules, wave=wave, dry_run=False)
        for summary in first:
            print_summary(summary)

        console.rule("4. The same wave again: the ledger makes it exactly once")
        second = run_cycle(rules, wave=wave, dry_run=False)
        for summary in second:
            print_summary(summary)

        console.rule("5. What came of it: simulated purchases, success control against the random control groups")
        conversions = _simulate_conversions(connect(settings), output / "conversions.csv", wave)
        imported = import_conversions(connect(settings), conversions)
        console.print(f"imported {imported.imported:,} purchases in the 30 days after the wave from {conversions}")
        reports = {}
        for path in rules:
            name = path.stem
            report = build_campaign_report(settings, name)
            print_report(report, console)
            reports[name] = write_html(report, output / "reports" / f"{name}.html")

    tasks = {channel: sum(store.tasks_per_customer("/" + channel).values()) for channel in TASK_CHANNELS}
    lines = []
    for summary in first:
        channels = ", ".join(f"{n:,} by {channel}" for channel, n in sorted(summary["channels"].items()))
        lines.append(
            f"{summary['campaign']}: {summary['treated']:,} treated ({channels}), {summary['control']:,} random control, "
            f"{summary['global_control']:,} global control" + (
                f"; lost {sum(summary['lost_to'].values()):,} to higher-priority campaigns" if summary["lost_to"] else ""
            )
        )
    lines += [
        f"sent {sum(s['sent_this_run'] for s in first):,} in the first run; the re-run sent {sum(s['sent_this_run'] for s in second)}",
        f"SMTP server received {sink.received:,} e-mails, one .eml file each: {mail_dir}",
        f"receivers accepted {tasks['call_center']:,} call tasks and {tasks['field_force']:,} visits "
        f"in {len(store.lists())} signed task lists: {hooks_dir}",
        "success reports with charts: " + ", ".join(str(p) for p in reports.values()),
        f"engine database (SQLite): {output / 'var' / 'campaign.db'}",
    ]
    console.print(Panel.fit(Text("\n".join(lines)), title="Demo finished"))
    return {"first": first, "second": second, "received": sink.received, "tasks": tasks, "mail_dir": str(mail_dir)}
