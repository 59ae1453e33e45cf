"""Benchmark: do the report's 95% intervals for incremental successes cover the truth in 95% of waves?

    .venv/bin/python bench/coverage_bench.py                         # about 25 minutes on a busy 2-core machine
    .venv/bin/python bench/coverage_bench.py --replicates 100 --loops 1 --worlds lapsed   # quick look

Simulated worlds (``bench/worlds.py``: synthetic customers with a hidden base purchase probability
and a hidden effect per channel, which the engine never sees). Per wave the TRUE expected
incremental buyers are ``sum over treated contacts of P(buy | contacted on their channel) -
P(buy | not contacted)`` (probabilities clipped to [0, 1] as they are drawn); a wave's interval
"covers" when the report's 95% interval of incremental successes (absolute lift x treated,
Newcombe) contains it. The regression-adjusted interval (Lin, HC1, on the score and
``revenue_12m``, ``recency_days``) is checked alike.

Scenarios (the engine's own stages select and plan every wave: ``orchestrator.wave.stages``):

- ``single-channel``: an e-mail campaign, 10% control, no scores;
- ``multichannel``: e-mail, call center and field force with capacities (visits per territory),
  10% control mirrored onto the treated allocation per channel (exploring alike), no scores;
  ``--explore`` (default 0.1, the loop's) of the treated get a random eligible channel;
- ``multichannel-scored``: the same, targeted by a channel uplift model retrained on a first
  recorded wave (``scores:`` in the rules);
- these three redraw the control group (a new ``control.salt``) and the outcomes per replicate
  on the same customers, and build the report in memory (``build_report``) from the plan;
- ``retrained``: the closed loop of ``bench/learning_bench.py`` (waves recorded in the ledger,
  purchases imported, a channel uplift model retrained between waves), read back
  with ``build_campaign_report`` from the database; one loop per control salt.

Prints a table per scenario (waves, coverage of the plain and the adjusted interval, mean
estimate - truth, mean variance reduction) and a JSON line per scenario for machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bench.learning_bench as loop  # noqa: E402
from bench.worlds import CHANNELS, WORLDS, World  # noqa: E402

COVARIATES = ("revenue_12m", "recency_days")
SINGLE = "coverage-email"


@dataclass
class Tally:
    """Per scenario: one row per wave (truth, estimate, intervals)."""

    name: str
    rows: list[dict] = field(default_factory=list)

    def add(self, truth: float, report, wave_key: str | None = None) -> None:
        segment = report.overall() if wave_key is None else next(s for s in report.by("wave") if s.key == wave_key)
        plain, adjusted = segment.incremental_successes, segment.adjusted_incremental_successes
        self.rows.append(
            {
                "truth": truth,
                "estimate": plain.value,
                "low": plain.low,
                "high": plain.high,
                "adjusted": adjusted.value,
                "adjusted_low": adjusted.low,
                "adjusted_high": adjusted.high,
                "variance_reduction": segment.variance_reduction,
                "srm": bool(segment.flags and "sample ratio mismatch" in segment.flags),
            }
        )

    def summary(self) -> dict:
        frame = pd.DataFrame(self.rows)
        if not len(frame):
            return {"scenario": self.name, "waves": 0}
        covered = (frame["low"] <= frame["truth"]) & (frame["truth"] <= frame["high"])
        known = frame["adjusted_low"].notna()
        adjusted = (frame["adjusted_low"] <= frame["truth"]) & (frame["truth"] <= frame["adjusted_high"])
        return {
            "scenario": self.name,
            "waves": len(frame),
            "coverage": float(covered.mean()),
            "adjusted_waves": int(known.sum()),
            "adjusted_coverage": float(adjusted[known].mean()) if known.any() else None,
            "mean_truth": float(frame["truth"].mean()),
            "mean_error": float((frame["estimate"] - frame["truth"]).mean()),
            "mean_width": float((frame["high"] - frame["low"]).mean()),
            "mean_adjusted_width": float((frame["adjusted_high"] - frame["adjusted_low"])[known].mean())
            if known.any()
            else None,
            "mean_variance_reduction": float(frame["variance_reduction"].dropna().mean())
            if frame["variance_reduction"].notna().any()
            else None,
            "srm_flags": int(frame["srm"].sum()),
        }


def single_rules(control_share: float, salt: str) -> str:
    return f"""\
name: {SINGLE}
description: Coverage benchmark, one e-mail campaign.
audience:
  all:
    - age: {{gte: 18}}
    - email: {{is_null: false}}
    - consent_email: true
control:
  share: {control_share}
  salt: {salt}
channels:
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
success:
  goal: conversion
  window_days: 30
"""


def truth_of(truth: pd.DataFrame, ids: np.ndarray, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: purchase probability without a contact and with the contact on their channel (clipped)."""
    rows = truth.reindex(pd.Index(ids.astype(str)))
    base = rows["base"].to_numpy()
    effect = np.zeros(len(ids))
    for channel in CHANNELS:
        mask = channels == channel
        effect[mask] = rows[f"effect_{channel}"].to_numpy()[mask]
    return np.clip(base, 0, 1), np.clip(base + effect, 0, 1)


def frame_of(contacts, truth: pd.DataFrame, customers: pd.DataFrame, rng, campaign: str, day: date):
    """The report's contact frame for one planned wave with outcomes drawn from the truth; and the truth."""
    keep = np.isin(contacts.arm, ["treatment", "control"])
    ids = contacts.customer_id[keep].astype(str)
    arm = contacts.arm[keep]
    channel = np.array([c if isinstance(c, str) else "" for c in contacts.channel[keep]], dtype=object)
    treated = arm == "treatment"
    base, contacted = truth_of(truth, ids, np.where(treated, channel, ""))
    p = np.where(treated, contacted, base)
    bought = rng.random(len(ids)) < p
    features = customers.set_index("customer_id").reindex(pd.Index(ids))
    frame = pd.DataFrame(
        {
            "campaign": campaign,
            "wave": day.isoformat(),
            "wave_date": pd.Timestamp(day),
            "channel": channel,
            "variant": None,
            "arm": arm,
            "score": np.asarray(contacts.score[keep], dtype=float),
            "responded": bought,
            "converted": bought,
            "revenue": np.where(bought, 25.0, 0.0),
            "cost": 0.0,
            "days_to_response": np.where(bought, 3.0, np.nan),
            "arm_propensity": np.asarray(contacts.arm_propensity[keep], dtype=float),
            **{c: features[c].to_numpy(dtype=float) for c in COVARIATES},
        }
    )
    return frame, float((contacted - base)[treated].sum())


def in_memory(
    tally: Tally,
    settings,
    rules_path: Path,
    day: date,
    customers: pd.DataFrame,
    truth: pd.DataFrame,
    replicates: int,
    seed: int,
    advance: Callable[[], None],
) -> None:
    """Plan the wave ``replicates`` times with a new control salt each, draw outcomes, build the report."""
    from orchestrator.success.report import build_report
    from orchestrator.wave import stages

    prepared = stages.prepare(settings, rules_path, day.isoformat())
    candidates = stages.select_candidates(settings, prepared)
    rng = np.random.default_rng(seed)
    for r in range(replicates):
        spec = prepared.spec
        spec = spec.model_copy(update={"control": spec.control.model_copy(update={"salt": f"coverage-{seed}-{r}"})})
        [plan] = stages.plan(settings, [dataclasses.replace(prepared, spec=spec)], [candidates])
        frame, expected = frame_of(plan.contacts, truth, customers, rng, spec.name, day)
        covariates = (["score"] if frame["score"].notna().any() else []) + list(COVARIATES)
        report = build_report(frame, campaign=spec.name, goal="conversion", window_days=30, covariates=covariates)
        tally.add(expected, report)
        advance()


def world_setup(world: World, args: argparse.Namespace, folder: Path):
    """A database with the world's customers, the rules folder and the settings."""
    from orchestrator.customers.importer import import_customers
    from orchestrator.db import engine as database
    from orchestrator.demo.synthetic import write_csv
    from orchestrator.settings import DatabaseSettings, PathSettings, Settings

    settings = Settings(
        paths=PathSettings(rules_dir=folder / "rules", templates_dir=REPO / "templates", data_dir=folder / "var"),
        database=DatabaseSettings(url=f"sqlite:///{folder / 'engine.db'}"),
    )
    engine = database.connect(settings)
    import_customers(engine, write_csv(folder / "customers.csv", args.customers, seed=world.seed))
    with engine.connect() as conn:
        customers = pd.read_sql(sa.text("select * from customers"), conn)
    customers["customer_id"] = customers["customer_id"].astype(str)
    return settings, engine, customers, world.truth(customers)


def planned_scenarios(world: World, args, tallies: dict[str, Tally], advance) -> None:
    """single-channel, multichannel and multichannel-scored on one world."""
    from orchestrator.db import engine as database

    with tempfile.TemporaryDirectory(prefix=f"coverage-{world.name}-") as tmp:
        folder = Path(tmp)
        settings, _engine, customers, truth = world_setup(world, args, folder)
        territories = sorted(customers["territory"].dropna().astype(str).unique())
        bench_args = _loop_args(args, control_share=0.1, waves=2)
        loop.write_rules(settings.paths.rules_dir, territories, bench_args)
        single = settings.paths.rules_dir / f"{SINGLE}.yaml"
        single.write_text(single_rules(0.1, "coverage"))
        day = date(2026, 1, 6)
        in_memory(tallies["single-channel"], settings, single, day, customers, truth, args.replicates, 1, advance)
        multi = settings.paths.rules_dir / f"{loop.CAMPAIGN}.yaml"
        in_memory(tallies["multichannel"], settings, multi, day, customers, truth, args.replicates, 2, advance)
        database.dispose_all()
    with tempfile.TemporaryDirectory(prefix=f"coverage-scored-{world.name}-") as tmp:
        # two waves of the closed loop record a wave and retrain a channel uplift model; the rules then score by it
        folder = Path(tmp)
        loop.run_world(world, bench_args, folder, f"sqlite:///{folder / 'engine.db'}", lambda: None)
        settings, _engine, customers, truth = _reopen(world, folder)
        later = loop.FIRST_WAVE + timedelta(days=loop.WAVE_GAP_DAYS * 3)
        rules = settings.paths.rules_dir / f"{loop.CAMPAIGN}.yaml"
        in_memory(tallies["multichannel-scored"], settings, rules, later, customers, truth, args.replicates, 3, advance)
        database.dispose_all()


def retrained(world: World, args, tally: Tally, advance) -> None:
    """The closed loop with retraining, once per control salt; every wave's report from the ledger."""
    from orchestrator.db import engine as database
    from orchestrator.success.campaign import build_campaign_report

    original = loop.rules_text
    for k in range(args.loops):
        salt = f"learnbench-{k}"

        def salted(*a, _salt=salt, **kw):
            return original(*a, **kw).replace("salt: learnbench", f"salt: {_salt}")

        loop.rules_text = salted
        try:
            with tempfile.TemporaryDirectory(prefix=f"coverage-loop-{world.name}-") as tmp:
                folder = Path(tmp)
                bench_args = _loop_args(args, control_share=0.3, waves=args.waves)
                loop.run_world(world, bench_args, folder, f"sqlite:///{folder / 'engine.db'}", lambda: None)
                settings, engine, _customers, truth = _reopen(world, folder)
                report = build_campaign_report(settings, loop.CAMPAIGN, covariates=list(COVARIATES))
                with engine.connect() as conn:
                    ledger = pd.read_sql(
                        sa.text(
                            "select w.key, c.customer_id, c.channel from contacts c join waves w on w.id = c.wave_id "
                            "where c.arm = 'treatment'"
                        ),
                        conn,
                    )
                for key, rows in ledger.groupby("key"):
                    base, contacted = truth_of(
                        truth, rows["customer_id"].to_numpy(dtype=object), rows["channel"].to_numpy(dtype=object)
                    )
                    tally.add(float((contacted - base).sum()), report, wave_key=str(key))
                database.dispose_all()
        finally:
            loop.rules_text = original
        advance()


def _reopen(world: World, folder: Path):
    from orchestrator.db import engine as database
    from orchestrator.settings import DatabaseSettings, PathSettings, Settings

    settings = Settings(
        paths=PathSettings(rules_dir=folder / "rules", templates_dir=REPO / "templates", data_dir=folder / "var"),
        database=DatabaseSettings(url=f"sqlite:///{folder / 'engine.db'}"),
    )
    engine = database.connect(settings)
    with engine.connect() as conn:
        customers = pd.read_sql(sa.text("select * from customers"), conn)
    customers["customer_id"] = customers["customer_id"].astype(str)
    return settings, engine, customers, world.truth(customers)


def _loop_args(args: argparse.Namespace, *, control_share: float, waves: int) -> argparse.Namespace:
    return argparse.Namespace(
        customers=args.customers,
        emails=args.emails,
        calls=args.calls,
        visits=args.visits,
        waves=waves,
        control_share=control_share,
        top_percent=100.0,
        model="channel_uplift",
        estimator=None,  # the model kind's default, as bench/learning_bench.py
        approach=None,
        explore=args.explore,
        cold_start=None,  # the engine's default
        optimism=None,  # the engine's default
        worlds=[],
        postgres=None,
    )


SCENARIOS = ("single-channel", "multichannel", "multichannel-scored", "retrained")
WORLD_DEFAULT = ["young-valued", "regional", "lapsed"]


def run(args: argparse.Namespace, advance=lambda: None) -> dict[str, dict]:
    """Every scenario on every world; the summaries by scenario."""
    from orchestrator.execution import progress as engine_progress

    engine_progress.disable()
    tallies = {name: Tally(name) for name in SCENARIOS}
    for name in args.worlds:
        world = WORLDS[name]
        planned_scenarios(world, args, tallies, advance)
        if args.loops:
            retrained(world, args, tallies["retrained"], advance)
    return {name: tally.summary() for name, tally in tallies.items()}


def _fmt(x: float | None, pattern: str = "{:.3f}") -> str:
    return "-" if x is None else pattern.format(x)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=8000, help="customers per world (default 8,000)")
    parser.add_argument("--emails", type=int, default=2000, help="e-mails per wave (multichannel; default 2,000)")
    parser.add_argument("--calls", type=int, default=400, help="call tasks per wave (default 400)")
    parser.add_argument("--visits", type=int, default=90, help="visits per wave over 15 territories (default 90)")
    parser.add_argument("--replicates", type=int, default=100, help="control draws per scenario, world (100)")
    parser.add_argument("--loops", type=int, default=2, help="closed loops (control salts) per world (default 2)")
    parser.add_argument("--waves", type=int, default=4, help="waves per closed loop (default 4)")
    parser.add_argument("--explore", type=float, default=0.1, help="learning: explore share (0.1, the loop's default)")
    parser.add_argument("--worlds", nargs="*", default=WORLD_DEFAULT, choices=list(WORLDS), help="default: 3 worlds")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 140))
    total = len(args.worlds) * (3 * args.replicates + args.loops)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("waves", total=total)
        results = run(args, lambda: bar.advance(task))
    table = Table(title="Coverage of the 95% intervals of incremental successes", title_justify="left")
    for column in ("scenario", "waves", "coverage", "adjusted coverage", "mean truth", "mean est. - truth"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for column in ("mean width", "adjusted width", "variance reduction", "SRM flags"):
        table.add_column(column, justify="right")
    for name, s in results.items():
        if not s.get("waves"):
            continue
        table.add_row(
            name,
            str(s["waves"]),
            _fmt(s["coverage"]),
            _fmt(s["adjusted_coverage"]),
            _fmt(s["mean_truth"], "{:.1f}"),
            _fmt(s["mean_error"], "{:+.2f}"),
            _fmt(s["mean_width"], "{:.1f}"),
            _fmt(s["mean_adjusted_width"], "{:.1f}"),
            _fmt(s["mean_variance_reduction"], "{:.1%}"),
            str(s["srm_flags"]),
        )
    console.print(table)
    for s in results.values():
        print(json.dumps(s), flush=True)
    return results


if __name__ == "__main__":
    main()
