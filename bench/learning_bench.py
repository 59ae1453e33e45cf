"""Benchmark: does the closed loop learn which channel moves each customer?

    .venv/bin/python bench/learning_bench.py                       # 3 worlds x 3 waves, small: about 10 s
    .venv/bin/python bench/learning_bench.py --customers 40000 --emails 10000 --calls 2000 --visits 400
    .venv/bin/python bench/learning_bench.py --worlds lapsed --waves 4 --postgres postgresql+psycopg://...

Per world (``bench/worlds.py``: synthetic customers with a hidden base purchase probability and a
hidden incremental effect per channel, which the engine never sees) one multichannel campaign
(e-mail, call center, field force with eligibility, values and costs, a random control group) runs
``--waves`` waves with per-wave budgets (``capacity.yaml`` and ``reps.csv`` in a temp folder), in
process with the engine's plain stages (``orchestrator.wave.stages``: prepare, select, plan, record;
treated contacts marked sent). Purchases are drawn from the hidden truth and imported with
``import_conversions``; between waves a model is retrained (``retrain``, docs/models.md) and from the
first version on the campaign targets by it (``scores: {model, top_percent}``, as the demo):
``--model channel_uplift`` (default) learns each channel's effect and the allocation values every
channel by ``effect x value - cost``; ``--model uplift`` learns one effect of a contact (the
baseline). ``--explore E`` writes ``learning: {explore: E}`` into the campaign.

Per wave it reports the EXPECTED incremental buyers (the sum of the true effect of the channel
each treated customer got: an expectation, not a draw) of

- ``engine``: the wave's plan;
- ``random``: the same number of treated contacts per channel (per territory for visits), drawn
  among the customers eligible for that channel (the whole audience, before any score cut), one
  channel per customer;
- ``oracle``: knows the true effects and fills the same budgets (the capacities) greedily by
  ``effect x value - cost``, only where that is positive, one channel per customer;

and the ratios engine/random and engine/oracle; a JSON line per world follows its table, and a
summary over the worlds closes the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
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

from bench.stages import drop_schema, fresh_schema  # noqa: E402
from bench.worlds import CHANNELS, WORLDS, World  # noqa: E402
from orchestrator.demo import oracle  # noqa: E402
from orchestrator.demo.oracle import expected_buyers, pool_of  # noqa: E402

CAMPAIGN = "learnbench"
MODEL = "learnbench-uplift"
NOT_FEATURES = ("email", "phone", "first_name", "last_name")  # contact data (the snapshots leave it out anyway)
FIRST_WAVE = date(2026, 1, 6)
WAVE_GAP_DAYS = 56  # longer than the attribution window, so each retraining sees the previous wave's outcomes
WINDOW_DAYS = 30

CHANNEL_RULES = {  # value, cost and eligibility per channel (modelled on rules/retention-multichannel.yaml)
    "field_force": {"value": 160.0, "cost": 40.0},
    "call_center": {"value": 60.0, "cost": 6.0},
    "email": {"value": 8.0, "cost": 0.05},
}


def rules_text(
    control_share: float,
    scores: str = "",
    explore: float = 0.0,
    cold_start: float | None = None,
    optimism: float | None = None,
) -> str:
    """The benchmark's campaign: everybody of age, three channels, a random control group and a
    ``learning:`` section (``explore`` share of the treated gets a random eligible channel; while no
    model gives channel effects ``cold_start``; ``optimism``; the engine's defaults where None)."""
    learning = f"learning:\n  explore: {explore}\n" + ("" if cold_start is None else f"  cold_start: {cold_start}\n")
    learning += "" if optimism is None else f"  optimism: {optimism}\n"
    ff, cc, em = (CHANNEL_RULES[c] for c in ("field_force", "call_center", "email"))
    return f"""\
name: {CAMPAIGN}
description: Learning benchmark, one multichannel campaign.
audience:
  all:
    - age: {{gte: 18}}
control:
  share: {control_share}
  salt: learnbench
channels:
  field_force:
    template: retention
    eligible: {{any: [{{segment: gold}}, {{revenue_12m: {{gt: 1500}}}}]}}
    name_columns: [first_name, last_name]
    territory_column: territory   # no address_columns: the synthetic customers have no street address, and a
                                  # column named as an address is contact data, left out of the snapshots
    cost: {ff["cost"]}
    value: {ff["value"]}
    due_days: 5
  call_center:
    template: retention
    eligible: {{all: [{{phone: {{is_null: false}}}}, {{consent_phone: true}}]}}
    phone_column: phone
    name_columns: [first_name, last_name]
    cost: {cc["cost"]}
    value: {cc["value"]}
    due_days: 3
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
    eligible: {{all: [{{email: {{is_null: false}}}}, {{consent_email: true}}]}}
    cost: {em["cost"]}
    value: {em["value"]}
allocation:
  overflow: fallback
success:
  goal: conversion
  window_days: {WINDOW_DAYS}
{learning}{scores}"""


@dataclass
class Budgets:
    """Contacts per wave: e-mails, calls and visits per territory (one rep per territory)."""

    emails: int
    calls: int
    visits_per_territory: dict[str, int]

    def pools(self) -> dict[str, int]:
        return {
            "email": self.emails,
            "call_center": self.calls,
            **{f"field_force:{t}": n for t, n in self.visits_per_territory.items()},
        }


def write_rules(folder: Path, territories: list[str], args: argparse.Namespace) -> Budgets:
    """The rules folder: the campaign, capacity.yaml and reps.csv (visits split over the territories)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{CAMPAIGN}.yaml").write_text(
        rules_text(args.control_share, explore=args.explore, optimism=args.optimism)
    )
    per_rep = max(1, args.visits // len(territories))
    (folder / "capacity.yaml").write_text(
        f"email:\n  per_day: {args.emails}\ncall_center:\n  tasks_per_day: {args.calls}\n"
        f"field_force:\n  visits_per_rep_per_day: {per_rep}\n  reps: reps.csv\n"
    )
    (folder / "reps.csv").write_text(
        "rep_id,territory\n" + "".join(f"R{i:03d},{t}\n" for i, t in enumerate(territories, start=1))
    )
    return Budgets(args.emails, args.calls, dict.fromkeys(territories, per_rep))


def net_value(truth: pd.DataFrame, ids: np.ndarray, channels: np.ndarray) -> float:
    """Expected net value of contacting ``ids`` through ``channels``: true effect x value - cost."""
    gain = effect_of(truth, ids, channels)
    value = np.array([CHANNEL_RULES[c]["value"] for c in channels.tolist()]) if len(channels) else np.zeros(0)
    cost = np.array([CHANNEL_RULES[c]["cost"] for c in channels.tolist()]) if len(channels) else np.zeros(0)
    return float((gain * value - cost).sum())


def _effects(truth: pd.DataFrame, ids: np.ndarray) -> dict[str, np.ndarray]:
    rows = truth.reindex(pd.Index(ids.astype(str)))
    return {c: rows[f"effect_{c}"].to_numpy() for c in CHANNELS}


def effect_of(truth: pd.DataFrame, ids: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """The true effect of the channel each customer got (0 without a channel)."""
    return expected_buyers(_effects(truth, ids), np.arange(len(ids)), channels)


def random_targeting(
    counts: dict[str, int],
    eligible: dict[str, np.ndarray],
    ids: np.ndarray,
    territory: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``counts`` contacts per pool drawn at random among the eligible (``orchestrator.demo.oracle``)."""
    positions, channels = oracle.random_targeting(counts, eligible, territory, rng)
    return ids[positions], channels


def oracle_targeting(
    budgets: dict[str, int],
    eligible: dict[str, np.ndarray],
    ids: np.ndarray,
    territory: np.ndarray,
    truth: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    """The budgets filled greedily by true ``effect x value - cost`` (positive only), one channel per customer."""
    values = {c: CHANNEL_RULES[c]["value"] for c in CHANNELS}
    costs = {c: CHANNEL_RULES[c]["cost"] for c in CHANNELS}
    positions, channels = oracle.oracle_targeting(budgets, eligible, territory, _effects(truth, ids), values, costs)
    return ids[positions], channels


@dataclass
class WaveResult:
    wave: int
    day: str
    targeting: str  # "all (no model)" or "model vN, top N%"
    contacts: dict[str, int]  # treated contacts of the engine per channel
    engine: float
    random: float
    oracle: float
    oracle_contacts: dict[str, int] = field(default_factory=dict)
    retrained: str = ""
    held_out_oracle: float = 0.0  # the oracle among the customers outside the engine's control group
    engine_value: float = 0.0  # expected net value: sum of true effect x value - cost
    oracle_value: float = 0.0
    explored: int = 0
    by_channel: dict[str, dict[str, float]] = field(default_factory=dict)  # expected buyers per channel

    def ratios(self) -> tuple[float | None, float | None]:
        """engine / random and engine / oracle; None where the divisor is not positive (random targeting
        that loses buyers: the engine then beats it by any factor as long as it gains some)."""
        return (
            self.engine / self.random if self.random > 0 else None,
            self.engine / self.oracle if self.oracle > 0 else None,
        )

    def value_ratio(self) -> float | None:
        return self.engine_value / self.oracle_value if self.oracle_value > 0 else None


@dataclass
class WorldRun:
    """One world's waves and the cost of exploring: the planned value of a wave with and without it."""

    waves: list[WaveResult]
    exploration: dict[str, dict[str, float]] = field(default_factory=dict)


def run_world(world: World, args: argparse.Namespace, folder: Path, url: str, advance) -> WorldRun:
    """The loop of one world: waves, outcomes, retraining; the measurements of each wave."""
    from orchestrator.customers.importer import import_customers
    from orchestrator.db import engine as database
    from orchestrator.demo.synthetic import write_csv
    from orchestrator.learning.retraining import NotEnoughData, retrain
    from orchestrator.responses.conversions import import_conversions
    from orchestrator.settings import DatabaseSettings, PathSettings, Settings
    from orchestrator.targeting.control import control_mask
    from orchestrator.targeting.planning import ELIGIBLE, TERRITORY
    from orchestrator.wave import stages

    settings = Settings(
        paths=PathSettings(rules_dir=folder / "rules", templates_dir=REPO / "templates", data_dir=folder / "var"),
        database=DatabaseSettings(url=url),
    )
    engine = database.connect(settings)
    import_customers(engine, write_csv(folder / "customers.csv", args.customers, seed=world.seed))
    with engine.connect() as conn:
        customers = pd.read_sql(sa.text("select * from customers"), conn)
    customers["customer_id"] = customers["customer_id"].astype(str)
    truth = world.truth(customers)
    territory_of = customers.set_index("customer_id")["territory"].astype(str)
    budgets = write_rules(settings.paths.rules_dir, sorted(territory_of.unique()), args)
    rules = settings.paths.rules_dir / f"{CAMPAIGN}.yaml"

    def write(scores: str = "", explore: float | None = None, cold_start: float | None = None) -> None:
        explore = args.explore if explore is None else explore
        cold_start = args.cold_start if cold_start is None else cold_start
        rules.write_text(rules_text(args.control_share, scores, explore, cold_start, args.optimism))

    def planned_value(day: date, **rules_args) -> tuple[float, float]:
        """Expected incremental buyers and net value of the wave the engine would plan on ``day`` (nothing
        recorded)."""
        write(scores_line, **rules_args)
        prepared = stages.prepare(settings, rules, day.isoformat())
        [plan] = stages.plan(settings, [prepared], [stages.select_candidates(settings, prepared)])
        contacts = plan.contacts
        chans = np.array([c if isinstance(c, str) else "" for c in contacts.channel], dtype=object)
        treated = (contacts.arm == "treatment") & (chans != "")
        ids = contacts.customer_id[treated].astype(str)
        return float(effect_of(truth, ids, chans[treated]).sum()), net_value(truth, ids, chans[treated])

    def exploring(name: str, day: date, explored: dict, not_explored: dict) -> None:
        (buyers, value), (buyers_0, value_0) = planned_value(day, **explored), planned_value(day, **not_explored)
        exploration[name] = {
            "explored": buyers,
            "not explored": buyers_0,
            "value": value,
            "value not explored": value_0,
        }

    rng = np.random.default_rng(world.seed)
    results: list[WaveResult] = []
    exploration: dict[str, dict[str, float]] = {}
    targeting, scores_line = "all (no model)", ""
    days = [FIRST_WAVE + timedelta(days=WAVE_GAP_DAYS * k) for k in range(args.waves)]
    none = {"explore": 0.0, "cold_start": 0.0}
    exploring(f"explore {args.explore:g}, wave 1", days[0], {"explore": args.explore, "cold_start": 0.0}, none)
    exploring("cold start (default), wave 1", days[0], {}, none)
    write()
    for number, day in enumerate(days, start=1):
        prepared = stages.prepare(settings, rules, day.isoformat())
        audience = stages.filter_candidates(settings, prepared)  # every eligible customer, before any score cut
        [plan] = stages.plan(settings, [prepared], [stages.select_candidates(settings, prepared)])
        wave = stages.open_wave(settings, prepared)
        stages.record(settings, wave, plan, prepared.as_of)
        with engine.begin() as conn:
            conn.execute(
                sa.text("update contacts set status = 'sent' where wave_id = :w and arm = 'treatment'"), {"w": wave.id}
            )
        contacts = plan.contacts
        channel = np.array([c if isinstance(c, str) else "" for c in contacts.channel], dtype=object)
        treated = (contacts.arm == "treatment") & (channel != "")
        ids, chans = contacts.customer_id[treated].astype(str), channel[treated]

        pool_ids = np.asarray(audience.ids, dtype=object).astype(str)
        territory = np.array([str(t) if t is not None else "" for t in audience.extra[TERRITORY]], dtype=object)
        eligible = {c: np.asarray(audience.extra[ELIGIBLE + c], dtype=float) > 0 for c in CHANNELS}
        eligible["field_force"] &= territory != ""
        territories = territory_of.reindex(pd.Index(ids)).to_numpy().astype(str)
        counts: dict[str, int] = {}
        for c, t in zip(chans.tolist(), territories.tolist(), strict=True):
            counts[pool_of(c, t)] = counts.get(pool_of(c, t), 0) + 1
        r_ids, r_channels = random_targeting(counts, eligible, pool_ids, territory, rng)
        o_ids, o_channels = oracle_targeting(budgets.pools(), eligible, pool_ids, territory, truth)
        outside = ~control_mask(list(pool_ids), args.control_share, CAMPAIGN)  # the engine's control group is stable
        h_ids, h_channels = oracle_targeting(
            budgets.pools(), {c: e & outside for c, e in eligible.items()}, pool_ids, territory, truth
        )

        # outcomes: every customer buys with the hidden probability, the treated with their channel's effect
        # (the control group and the customers the wave passed over at their base rate: the passed-over
        # are training rows of the no-contact arm, so they must buy as they would in the real world)
        lift = pd.Series(0.0, index=truth.index)
        lift[pd.Index(ids)] = effect_of(truth, ids, chans)
        p = np.clip(truth["base"].to_numpy() + lift.to_numpy(), 0.0, 1.0)
        buyers = truth.index.to_numpy()[rng.random(len(truth)) < p]
        path = folder / f"conversions-{day}.csv"
        when = (day + timedelta(days=3)).isoformat()
        path.write_text("customer_id,occurred_at,amount\n" + "".join(f"{cid},{when},25\n" for cid in buyers))
        import_conversions(engine, path)

        engine_effects, oracle_effects = effect_of(truth, ids, chans), effect_of(truth, o_ids, o_channels)
        result = WaveResult(
            number,
            day.isoformat(),
            targeting,
            {c: int((chans == c).sum()) for c in CHANNELS},
            float(engine_effects.sum()),
            float(effect_of(truth, r_ids, r_channels).sum()),
            float(oracle_effects.sum()),
            {c: int((o_channels == c).sum()) for c in CHANNELS},
            held_out_oracle=float(effect_of(truth, h_ids, h_channels).sum()),
            engine_value=net_value(truth, ids, chans),
            oracle_value=net_value(truth, o_ids, o_channels),
            explored=plan.explored,
            by_channel={
                c: {
                    "engine": round(float(engine_effects[chans == c].sum()), 1),
                    "oracle": round(float(oracle_effects[o_channels == c].sum()), 1),
                }
                for c in CHANNELS
            },
        )
        if number < len(days):  # retrain on what came back, as of the next wave's day
            try:
                trained = retrain(
                    engine,
                    settings,
                    MODEL,
                    campaigns=[CAMPAIGN],
                    kind=args.model,
                    estimator=args.estimator,
                    approach=args.approach,
                    exclude=NOT_FEATURES,
                    as_of=days[number],
                )
            except NotEnoughData as exc:
                result.retrained = f"not retrained: {str(exc).split(';')[0]}"
            else:
                result.retrained = f"v{trained.version} {trained.stage}"
                if trained.comparison is not None and trained.comparison.difference_dr is not None:
                    result.retrained += f" (vs champion {trained.comparison.difference_dr} per 1,000)"
                if trained.version == 1:
                    scores_line = f"scores: {{model: {MODEL}, top_percent: {args.top_percent}}}\n"
                    write(scores_line)
                if trained.promoted or trained.version == 1:
                    targeting = f"model v{trained.version}, top {args.top_percent:g}%"
        results.append(result)
        advance()
    if scores_line:  # the cost of exploring once a model targets: the next wave planned with and without it
        after = days[-1] + timedelta(days=WAVE_GAP_DAYS)
        exploring(f"explore {args.explore:g}, with the last model", after, {}, {"explore": 0.0})
    database.dispose_all()
    return WorldRun(results, exploration)


def fmt_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"


def world_table(world: World, results: list[WaveResult]) -> Table:
    table = Table(title=f"world {world.name}: {world.description}", title_justify="left")
    columns = (
        "wave",
        "targeting",
        "treated e/c/f",
        "explored",
        "engine",
        "random",
        "oracle",
        "oracle w/o control",
        "eng/rand",
        "eng/oracle",
        "value eng/oracle",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "targeting" else "right")
    table.add_column("retrained after", justify="left")
    for r in results:
        to_random, to_oracle = r.ratios()
        table.add_row(
            f"{r.wave} ({r.day})",
            r.targeting,
            "/".join(f"{r.contacts[c]:,}" for c in CHANNELS),
            f"{r.explored:,}",
            f"{r.engine:.1f}",
            f"{r.random:.1f}",
            f"{r.oracle:.1f}",
            f"{r.held_out_oracle:.1f}",
            fmt(to_random),
            fmt(to_oracle),
            fmt(r.value_ratio()),
            r.retrained,
        )
    return table


def exploration_table(runs: dict[str, WorldRun]) -> Table:
    table = Table(title="the cost of exploring: one wave planned with and without it", title_justify="left")
    columns = ("world", "when", "buyers explored", "not explored", "cost", "net value explored", "not explored", "cost")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < 2 else "right")
    for name, run in runs.items():
        for when, v in run.exploration.items():
            table.add_row(
                name,
                when,
                f"{v['explored']:,.1f}",
                f"{v['not explored']:,.1f}",
                _cost(v["explored"], v["not explored"]),
                f"{v['value']:,.0f}",
                f"{v['value not explored']:,.0f}",
                _cost(v["value"], v["value not explored"]),
            )
    return table


def _cost(explored: float, not_explored: float) -> str:
    """What exploring gives up, as a share of the wave without it ('-' where that is not positive)."""
    return f"{1 - explored / not_explored:.1%}" if not_explored > 0 else "-"


def summary_table(by_world: dict[str, list[WaveResult]]) -> Table:
    table = Table(title="summary over worlds (expected incremental buyers)", title_justify="left")
    columns = (
        "world",
        "first wave eng/rand",
        "last wave eng/rand",
        "last wave eng/oracle",
        "last wave value eng/oracle",
        "all waves eng/rand",
        "targets (>= 2x random, >= 0.8x oracle)",
    )
    for column in columns:
        table.add_column(column, justify="right" if column != "world" else "left")
    for name, results in by_world.items():
        total = sum(r.engine for r in results), sum(r.random for r in results)
        to_random, to_oracle = results[-1].ratios()
        last = results[-1]  # engine >= 2 x random also where random targeting loses buyers (a ratio is undefined)
        met = last.oracle > 0 and last.engine >= 2 * last.random and last.engine >= 0.8 * last.oracle
        table.add_row(
            name,
            fmt(results[0].ratios()[0]),
            fmt(to_random),
            fmt(to_oracle),
            fmt(results[-1].value_ratio()),
            fmt(total[0] / total[1] if total[1] > 0 else None),
            "met" if met else "NOT met",
        )
    return table


def write_chart(runs: dict[str, WorldRun], path: Path) -> Path:
    """Two panels: per world, the engine's share of the oracle wave by wave (the targets as lines), and
    the value a wave loses to exploration (cold start and with a model), so the trade-off is seen."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[1.3, 1])
    for name, run in runs.items():
        waves = [r.wave for r in run.waves]
        left.plot(waves, [r.ratios()[1] or 0 for r in run.waves], marker="o", label=name)
    ratios = [r.ratios()[1] or 0 for run in runs.values() for r in run.waves]
    left.axhline(0.8, color="grey", linestyle="--", linewidth=1)
    left.text(1, 0.81, "target 0.8", color="grey", fontsize=9)
    low, high = min(0.0, min(ratios, default=0) - 0.05), max(1.05, max(ratios, default=1) + 0.05)
    left.set(xlabel="wave", ylabel="expected extra buyers, engine / oracle", ylim=(low, high), xticks=waves)
    left.set_title("engine / oracle that knows the effects", fontsize=10)
    left.legend(fontsize=8, loc="lower right")
    names = list(runs)
    kinds = sorted({k for run in runs.values() for k in run.exploration})
    width = 0.8 / max(len(kinds), 1)
    for i, kind in enumerate(kinds):
        costs = []
        for name in names:
            v = runs[name].exploration.get(kind)
            costs.append(100 * (1 - v["explored"] / v["not explored"]) if v and v["not explored"] > 0 else 0.0)
        right.bar([j + i * width for j in range(len(names))], costs, width=width, label=kind)
    right.axhline(5, color="grey", linestyle="--", linewidth=1)
    right.set_xticks([j + width * (len(kinds) - 1) / 2 for j in range(len(names))], names, rotation=30, ha="right")
    right.set(ylabel="expected extra buyers of the wave given up, %")
    right.set_title("extra buyers a wave gives up to exploring", fontsize=10)
    right.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def main(argv: list[str] | None = None) -> dict[str, list[WaveResult]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=40_000, help="customers per world (default 40,000)")
    parser.add_argument("--emails", type=int, default=10_000, help="e-mails per wave (default 10,000)")
    parser.add_argument("--calls", type=int, default=2_000, help="call tasks per wave (default 2,000)")
    parser.add_argument("--visits", type=int, default=400, help="visits per wave, over 15 territories (default 400)")
    parser.add_argument("--waves", type=int, default=3, help="waves per world (default 3)")
    parser.add_argument(
        "--control-share",
        type=float,
        default=0.1,
        help="random control group share (default 0.1; the oracle keeps no control group, so a share s costs the "
        "engine up to s of the oracle where high-effect customers are scarce: see 'oracle w/o control')",
    )
    parser.add_argument(
        "--top-percent",
        type=float,
        default=None,
        help="scores: top_percent once a model exists (default 50 for uplift; 100 for channel_uplift, whose "
        "allocation leaves alone whoever no channel is worth contacting)",
    )
    parser.add_argument(
        "--model",
        default="channel_uplift",
        choices=["channel_uplift", "uplift"],
        help="what is retrained between waves: an effect per channel (default) or one effect of a contact",
    )
    parser.add_argument(
        "--estimator",
        default=None,
        choices=["logistic", "gradient_boosting"],
        help="the model's learner (default: the model kind's, see DEFAULTS in orchestrator/learning/retraining.py)",
    )
    parser.add_argument(
        "--approach",
        default=None,
        help="the meta-learner: t_learner, x_learner or pooled for channel_uplift; two_model, class_transformation "
        "for uplift (default: the kind's)",
    )
    parser.add_argument("--explore", type=float, default=0.1, help="learning: explore share of the treated (0.1)")
    parser.add_argument(
        "--cold-start",
        type=float,
        default=None,
        help="learning: cold_start share while no model gives channel effects (default: the engine's)",
    )
    parser.add_argument(
        "--optimism",
        type=float,
        default=None,
        help="learning: optimism, effect + optimism x spread where a pool has room (default: the engine's)",
    )
    parser.add_argument("--worlds", nargs="*", default=list(WORLDS), choices=list(WORLDS), help="default: all")
    parser.add_argument("--postgres", metavar="URL", help="run on PostgreSQL (a throwaway schema per world)")
    parser.add_argument("--chart", type=Path, metavar="PNG", help="also draw the results as a chart (PNG)")
    args = parser.parse_args(argv)
    if args.top_percent is None:
        args.top_percent = 100.0 if args.model == "channel_uplift" else 50.0
    console = Console(width=max(Console().width, 170))  # the tables are wide
    from orchestrator.execution import progress as engine_progress

    engine_progress.disable()  # one progress bar: the benchmark's
    by_world: dict[str, list[WaveResult]] = {}
    runs: dict[str, WorldRun] = {}
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("waves", total=len(args.worlds) * args.waves)
        for name in args.worlds:
            world = WORLDS[name]
            bar.update(task, description=f"world {name}")
            with tempfile.TemporaryDirectory(prefix=f"learnbench-{name}-") as tmp:
                folder = Path(tmp)
                schema = None
                if args.postgres:
                    schema, url = fresh_schema(args.postgres, f"learnbench_{name.replace('-', '_')}")
                else:
                    url = f"sqlite:///{folder / 'engine.db'}"
                try:
                    runs[name] = run_world(world, args, folder, url, lambda: bar.advance(task))
                    by_world[name] = runs[name].waves
                finally:
                    if schema is not None and args.postgres:
                        drop_schema(args.postgres, schema)
            console.print(world_table(world, by_world[name]))
            line = {
                "world": name,
                "seed": world.seed,
                "customers": args.customers,
                "budgets": {"emails": args.emails, "calls": args.calls, "visits": args.visits},
                "waves": [
                    {
                        "wave": r.wave,
                        "day": r.day,
                        "targeting": r.targeting,
                        "contacts": r.contacts,
                        "oracle_contacts": r.oracle_contacts,
                        "engine": round(r.engine, 2),
                        "random": round(r.random, 2),
                        "oracle": round(r.oracle, 2),
                        "oracle_without_control": round(r.held_out_oracle, 2),
                        "engine_to_random": r.ratios()[0],
                        "engine_to_oracle": r.ratios()[1],
                        "value_engine_to_oracle": r.value_ratio(),
                        "explored": r.explored,
                        "by_channel": r.by_channel,
                        "retrained": r.retrained,
                    }
                    for r in by_world[name]
                ],
                "exploration": {k: {x: round(y, 2) for x, y in v.items()} for k, v in runs[name].exploration.items()},
            }
            print(json.dumps(line), flush=True)  # one line per world, for machines
    console.print(exploration_table(runs))
    console.print(summary_table(by_world))
    if args.chart:
        console.print(f"chart: {write_chart(runs, args.chart)}")
    return by_world


if __name__ == "__main__":
    main()
