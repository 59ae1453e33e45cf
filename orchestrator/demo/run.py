"""``campaign demo``: the whole loop, on embedded defaults, in a few minutes.

1. A synthetic customer base (SQLite in the output folder) with hidden behaviour the engine
   never sees (``orchestrator.demo.simulation``): who buys anyway, and whom a contact moves.
2. Local servers on loopback: an SMTP sink writing every e-mail as ``.eml``; the reference
   webhook receiver standing in for the call center's and the field force's systems (every
   task list as ``.json``); the response API (``campaign api``) they and the e-mail links
   report to.
3. Three waves, 50 days apart, of ``retention-multichannel`` and ``winback-email`` run as one
   cycle in a Prefect flow (arbitration, allocation within ``capacity.yaml``, exactly-once
   dispatch; the first wave is run twice to show nothing is sent twice). After each wave the
   simulated call center and field force post signed outcomes for their tasks, some e-mail
   recipients click, and the customers' purchases are imported.
4. Between the waves two models are retrained on what the waves achieved: an uplift model
   (treated against control) for the win-back e-mail, and a channel uplift model (the effect of
   each channel against the control group, from the logged channels and their propensities:
   the retention campaign explores, ``learning: {explore: 0.1}``) for the retention campaign.
   Once they exist, the win-back campaign targets the customers the e-mail moves, and the
   retention campaign gives each customer the channel that moves them (or none). After every
   wave the demo sets the retention campaign's targeting against random targeting with the
   same contacts and an oracle that knows the world's true effects (expected extra buyers).
5. At the end: the success reports with lift and confidence intervals (terminal and HTML with
   charts) and the comparison of the model versions.

The demo works on a copy of ``rules/`` in the output folder, so the repository's rules stay
as they are. It needs a source checkout: an installed wheel ships the engine but not the
example ``rules/`` and ``templates/``, and there ``run_demo`` raises ``DemoFilesMissing`` naming
what is missing (``campaign demo`` prints it and exits 1) before it touches the output folder.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from orchestrator.demo.oracle import TargetingRatios
from orchestrator.demo.smtp_sink import SmtpSink, free_port
from orchestrator.demo.synthetic import write_csv
from orchestrator.execution import progress
from orchestrator.settings import ApiSource, Settings, WebhookEndpoint, get_settings

REPO = Path(__file__).resolve().parents[2]
DEMO_RULES = ("retention-multichannel.yaml", "winback-email.yaml")
TASK_CHANNELS = ("call_center", "field_force")
MODEL = "winback-uplift"
CHANNEL_MODEL = "retention-channels"
RETENTION = "retention-multichannel"
NOT_FEATURES = ("email", "phone", "first_name", "last_name", "consent_email", "consent_phone")
WAVE_GAP_DAYS = 50  # longer than the campaigns' attribution windows, so each retraining sees closed ones


class DemoFilesMissing(FileNotFoundError):
    """The example campaigns the demo runs are not there (an installed wheel ships the engine, not the examples)."""


def _demo_templates(base: Settings) -> Path:
    """The templates folder the demo renders: one configured in ``base``, else the checkout's."""
    return base.paths.templates_dir if "templates_dir" in base.paths.model_fields_set else REPO / "templates"


def _check_example_files(templates: Path) -> None:
    """The demo runs the checkout's ``rules/`` and ``templates/``; say which are missing before touching anything."""
    needed = [REPO / "rules" / name for name in DEMO_RULES] + [templates]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        raise DemoFilesMissing(
            f"campaign demo runs the example campaigns of a source checkout, and these are missing: "
            f"{', '.join(missing)}. An installed package ships the engine, not the example rules and "
            f"templates: run `scripts/demo` in a checkout of the repository."
        )


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def demo_settings(
    base: Settings, output: Path, smtp_port: int, receiver_url: str, api_port: int, keys: dict[str, str]
) -> Settings:
    """``base`` pointed at the demo folder and the local servers: the demo's own SQLite database, the SMTP
    sink without login, the receivers' endpoints and the response API's sources with the demo's secrets.
    A templates folder configured in ``base`` is kept; everything else of ``base`` (execution, limits) too."""
    paths = base.paths.model_copy(
        update={
            "data_dir": output / "var",
            "rules_dir": output / "rules",
            "templates_dir": _demo_templates(base),
        }
    )
    smtp = base.smtp.model_copy(
        update={"host": "127.0.0.1", "port": smtp_port, "security": "none", "username": None, "password": None}
    )
    endpoints = {c: WebhookEndpoint(url=f"{receiver_url}/{c}", secret=keys[f"out_{c}"]) for c in TASK_CHANNELS}
    sources = {c: ApiSource(secret=keys[f"in_{c}"]) for c in TASK_CHANNELS}
    return base.model_copy(
        update={
            "paths": paths,
            "database": base.database.model_copy(update={"url": None}),
            "smtp": smtp,
            "links": base.links.model_copy(update={"base_url": f"http://127.0.0.1:{api_port}"}),
            "webhooks": base.webhooks.model_copy(update={"endpoints": base.webhooks.endpoints | endpoints}),
            "api": base.api.model_copy(update={"sources": base.api.sources | sources}),
        }
    )


def _open_day(settings, day: date) -> date:
    """``day``, or the next day the contact policy does not block (Sundays, holidays)."""
    from orchestrator.rules.policy_spec import load_policy
    from orchestrator.targeting.policy import blocked_day

    path = settings.paths.rules_dir / "policy.yaml"
    policy = load_policy(path)[0] if path.exists() else None
    while policy is not None and blocked_day(policy, day):
        day += timedelta(days=1)
    return day


def _prepare_rules(output: Path) -> Path:
    """A copy of rules/ for the demo; the control groups are larger (a 20,000-customer demo has about 1,300
    retention customers per wave: half of them held out give the no-contact outcome enough buyers to learn
    from after one wave), and the retention campaign explores its channels (``learning:``)."""
    rules = output / "rules"
    shutil.copytree(REPO / "rules", rules)
    winback = rules / "winback-email.yaml"
    winback.write_text(winback.read_text().replace("  share: 0.1 ", "  share: 0.3 "))
    retention = rules / f"{RETENTION}.yaml"
    retention.write_text(
        retention.read_text().replace("  share: 0.1\n", "  share: 0.5\n")
        + "\nlearning:                     # added by the demo: a tenth of the treated get a random eligible channel\n"
        "  explore: 0.1\n"
    )
    return rules


def _target_by_channel_effects(rules: Path) -> None:
    """From now on the retention campaign values each channel by its predicted effect x value - cost."""
    retention = rules / f"{RETENTION}.yaml"
    retention.write_text(
        retention.read_text() + f"scores:                       # added by the demo after the first retraining\n"
        f"  model: {CHANNEL_MODEL}\n"
    )


def _ratios_table(rows: list[tuple[tuple[str, str], TargetingRatios]]) -> Table:
    """Expected extra buyers of the retention campaign's targeting per wave, against random and the oracle."""
    table = Table(
        title=f"{RETENTION}: expected extra buyers in the demo's world (its true effects)",
        caption="random: the same contacts per channel at random; oracle: today's capacity filled by true "
        "effect x value - cost, with no control group (the demo holds out half of the retention audience)",
    )
    for column in ("wave", "targeting", "engine", "random", "oracle", "engine / random", "engine / oracle"):
        table.add_column(column, justify="left" if column in ("wave", "targeting") else "right")
    for (wave, targeting), r in rows:
        to_random, to_oracle = r.to_random, r.to_oracle
        table.add_row(
            wave,
            targeting,
            f"{r.engine:,.1f}",
            f"{r.random:,.1f}",
            f"{r.oracle:,.1f}",
            "-" if to_random is None else f"{to_random:.2f}",
            "-" if to_oracle is None else f"{to_oracle:.2f}",
        )
    return table


def _target_by_uplift(rules: Path) -> None:
    """From now on the win-back campaign e-mails the half of its audience the model predicts it moves most."""
    winback = rules / "winback-email.yaml"
    winback.write_text(
        winback.read_text() + f"\nscores:                      # added by the demo after the first retraining\n"
        f"  model: {MODEL}\n  top_percent: 50\n"
    )


def run_demo(output: Path, n_customers: int, console: Console) -> dict:
    """The demo (see the module docstring): the settings of the environment, pointed at the demo's servers."""
    from flows.run import run_cycle
    from orchestrator.customers.importer import import_customers
    from orchestrator.db.engine import connect
    from orchestrator.demo.learning import Audience
    from orchestrator.demo.simulation import (
        WORLD_COLUMNS,
        HiddenWorld,
        SimulatedChannelSystem,
        purchases,
        simulate_email_reactions,
    )
    from orchestrator.demo.webhook_receiver import BatchStore, receiver_app, serve_receiver
    from orchestrator.learning.retraining import NotEnoughData, retrain
    from orchestrator.responses.api import create_app
    from orchestrator.responses.conversions import import_conversions
    from orchestrator.scoring.registry import compare
    from orchestrator.success.campaign import build_campaign_report
    from orchestrator.success.html_page import write_html
    from orchestrator.success.terminal import print_report
    from orchestrator.wave.console import print_channels, print_funnel, print_losses, print_summary
    from orchestrator.wave.stages import prepare_cycle

    base = get_settings()
    _check_example_files(_demo_templates(base))
    output = output.resolve()
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    rules = _prepare_rules(output)
    mail_dir, hooks_dir = output / "mail", output / "webhooks"
    keys = {f"{d}_{c}": _secret() for d in ("out", "in") for c in TASK_CHANNELS}  # shared with the local systems only
    store = BatchStore(folder=hooks_dir)
    receivers = receiver_app({channel: keys[f"out_{channel}"] for channel in TASK_CHANNELS}, store)
    api_port = free_port("127.0.0.1")
    rng = np.random.default_rng(2026)
    with SmtpSink(mail_dir) as sink, serve_receiver(receivers) as receiver:
        settings = demo_settings(base, output, sink.port, receiver.url, api_port, keys)
        engine = connect(settings)
        with serve_receiver(create_app(settings), port=api_port) as api:
            console.rule("1. A synthetic customer base, with behaviour the engine does not see")
            csv_path = write_csv(output / "customers.csv", n_customers)
            with progress.progress("import customers", n_customers) as advance:
                report = import_customers(engine, csv_path, table=settings.database.customer_table, progress=advance)
            with engine.connect() as conn:
                columns = ", ".join([*WORLD_COLUMNS, "email"])
                customers = pd.read_sql(sa.text(f"select {columns} from customers"), conn)
            world = HiddenWorld.from_customers(customers)
            address_of = {
                str(e).strip().lower(): str(c)
                for c, e in zip(customers["customer_id"], customers["email"], strict=True)
                if e
            }
            console.print(
                f"imported {report.rows_imported:,} customers; local systems: SMTP 127.0.0.1:{sink.port}, "
                f"task lists {receiver.url}, response API {api.url} (OpenAPI at {api.url}/docs)"
            )
            systems = {c: SimulatedChannelSystem(c, keys[f"in_{c}"], api.url, world, rng) for c in TASK_CHANNELS}
            seen_mail: set[str] = set()
            today = date.today()
            days = [_open_day(settings, today - timedelta(days=WAVE_GAP_DAYS * k)) for k in (2, 1, 0)]
            cycle = [rules / name for name in DEMO_RULES]
            waves: list[list[dict]] = []
            retrained = []
            ratios: list[tuple[tuple[str, str], TargetingRatios]] = []
            targeting = "no model: channels by value - cost"
            for number, day in enumerate(days, start=1):
                wave = day.isoformat()
                console.rule(f"{number + 1}. Wave {number} on {wave}: who is selected, on which channel")
                prepared, plans = prepare_cycle(settings, cycle, wave)
                audience = Audience.of(settings, next(p for p in prepared if p.spec.name == RETENTION))
                for plan in plans:
                    console.print(f"[bold]{plan.spec.name}[/] (priority {plan.spec.priority})")
                    print_funnel(console, [vars(step) for step in plan.selection.funnel])
                    print_channels(console, plan)
                print_losses(console, plans)
                summaries = run_cycle(settings, cycle, wave=wave, dry_run=False)
                for summary in summaries:
                    print_summary(console, {**summary, "funnel": []})  # the funnel was shown above
                waves.append(summaries)
                if number == 1:
                    console.rule("The same wave again: the ledger makes it exactly once")
                    again = run_cycle(settings, cycle, wave=wave, dry_run=False)
                    console.print(f"sent in the re-run: {sum(s['sent_this_run'] for s in again)}")

                console.rule(f"What came of wave {number}: outcomes, clicks and purchases flow back")
                for channel, system in systems.items():
                    counts = system.work(store.lists("/" + channel), day, channel)
                    console.print(f"{channel}: outcomes posted to the response API: {counts}")
                clicks = simulate_email_reactions(mail_dir, seen_mail, address_of, world, rng)
                console.print(f"e-mail: {clicks:,} tracked clicks recorded by the response API")
                with engine.connect() as conn:
                    contacts = pd.read_sql(
                        sa.text(
                            "select c.customer_id, c.arm, c.channel from contacts c join waves w on w.id = c.wave_id "
                            "where w.key = :k and c.arm in ('treatment', 'control')"
                        ),
                        conn,
                        params={"k": wave},
                    )
                imported = import_conversions(
                    engine, purchases(world, contacts, day, rng, output / f"purchases-{wave}.csv")
                )
                console.print(f"purchases in the 30 days after the wave: {imported.imported:,} imported")
                ratios.append(((wave, targeting), audience.ratios(settings, world, rng)))
                console.print(_ratios_table(ratios))

                if number < len(days):
                    console.rule(f"Retraining the uplift model on what the waves achieved (as of {days[number]})")
                    try:
                        result = retrain(
                            engine,
                            settings,
                            MODEL,
                            campaigns=["winback-email"],
                            kind="uplift",
                            exclude=NOT_FEATURES,
                            as_of=days[number],
                        )
                    except NotEnoughData as exc:
                        console.print(f"[yellow]not retrained: {exc}[/]")
                    else:
                        retrained.append(result)
                        console.print(f"{MODEL} v{result.version}: {result.reason}", highlight=False)
                        if result.version == 1:
                            _target_by_uplift(rules)
                            console.print(
                                "winback-email now e-mails the half of its audience the model predicts it moves most"
                            )
                    targeting = _retrain_channel_model(engine, settings, rules, days[number], console) or targeting

    console.rule("The result: success control against the random control groups")
    reports = {}
    for path in cycle:
        report = build_campaign_report(settings, path.stem)
        print_report(report, console)
        reports[path.stem] = write_html(report, output / "reports" / f"{path.stem}.html")
    table = Table(title=f"Model versions of {MODEL}")
    for column in ("version", "stage", "Qini (validation)", "rows", "window"):
        table.add_column(column)
    for row in compare(engine, MODEL) if retrained else []:
        score = row.get("validation_score")
        table.add_row(
            f"v{row['version']}",
            str(row["stage"]),
            "-" if score is None else f"{score:.4f}",
            f"{row['training_rows']:,}",
            f"{row.get('window_from') or ''} .. {row.get('window_to') or ''}",
        )
    console.print(table)

    winback = [next(s for s in wave if s["campaign"] == "winback-email") for wave in waves]
    by_wave = {s.key: s for s in build_campaign_report(settings, "winback-email").segments if s.dimension == "wave"}
    lifts = [by_wave.get(d.isoformat()) for d in days]
    lines = [
        "win-back lift per wave (treated vs control, 95% CI): "
        + "; ".join(f"{d.isoformat()} {_lift(seg)}" for d, seg in zip(days, lifts, strict=True)),
        f"{len(days)} waves ({', '.join(d.isoformat() for d in days)}); the re-run of wave 1 sent nothing",
        "win-back e-mails per wave: "
        + ", ".join(f"{s['treated']:,} treated / {s['control']:,} control" for s in winback),
        f"SMTP server received {sink.received:,} e-mails (one .eml file each): {mail_dir}",
        f"receivers accepted {sum(store.tasks_per_customer('/call_center').values()):,} call tasks and "
        f"{sum(store.tasks_per_customer('/field_force').values()):,} visits "
        f"in {len(store.lists())} signed task lists: {hooks_dir}",
        f"model {MODEL}: "
        + (
            ", ".join(f"v{row['version']} {row['stage']}" for row in compare(engine, MODEL))
            if retrained
            else "not trained"
        ),
        f"{RETENTION}, expected extra buyers per wave, engine / random / oracle: "
        + "; ".join(f"{wave} {r.engine:,.0f} / {r.random:,.0f} / {r.oracle:,.0f}" for (wave, _t), r in ratios),
        "success reports with charts: " + ", ".join(str(p) for p in reports.values()),
        f"engine database (SQLite): {output / 'var' / 'campaign.db'}",
    ]
    console.print(Panel.fit(Text("\n".join(lines)), title="Demo finished"))
    return {
        "waves": waves,
        "received": sink.received,
        "reports": {k: str(v) for k, v in reports.items()},
        "models": retrained,
        "ratios": [(wave, r) for (wave, _t), r in ratios],
    }


def _retrain_channel_model(engine, settings: Settings, rules: Path, as_of: date, console: Console) -> str | None:
    """Retrain the retention campaign's channel uplift model; the targeting it now uses, if it changed."""
    from orchestrator.learning.retraining import NotEnoughData, retrain

    console.rule(f"Retraining the channel uplift model of {RETENTION} (as of {as_of})")
    try:
        result = retrain(
            engine,
            settings,
            CHANNEL_MODEL,
            campaigns=[RETENTION],
            kind="channel_uplift",
            exclude=NOT_FEATURES,
            as_of=as_of,
        )
    except NotEnoughData as exc:
        console.print(f"[yellow]not retrained: {exc}[/]", highlight=False)
        return None
    console.print(f"{CHANNEL_MODEL} v{result.version}: {result.reason}", highlight=False)
    for channel, support in (result.lineage.get("support") or {}).items():
        console.print(
            f"  {channel}: {support['treated']:,} treated ({support['treated_responders']:,} bought) against "
            f"{support['control']:,} control customers; {support['estimate']}",
            highlight=False,
        )
    if result.version == 1:
        _target_by_channel_effects(rules)
        console.print(f"{RETENTION} now gives each customer the channel the model says moves them most, or none")
    return f"{CHANNEL_MODEL} v{result.version}" if result.promoted else None


def _lift(segment) -> str:
    if segment is None or segment.absolute_lift.value is None:
        return "not measured"
    lift = segment.absolute_lift
    return f"{100 * lift.value:+.1f} points [{100 * lift.low:+.1f}, {100 * lift.high:+.1f}]"
