"""Benchmark: target-group selection at scale, engine (SQLite, PostgreSQL) against pandas by hand.

    .venv/bin/python bench/selection_bench.py
    .venv/bin/python bench/selection_bench.py --customers 100000 --contacts 500000   # a quick run
    .venv/bin/python bench/selection_bench.py --backends sqlite

The data: ``--customers`` synthetic customers (``orchestrator.demo.synthetic``), ``--contacts`` past
contacts with status ``sent`` in the ledger, spread over ``--waves`` waves of a past campaign in
the last 60 days (each wave contacts a different, propensity-weighted quarter of the base), and
a response model trained on 50,000 customers with a synthetic outcome driven by revenue_12m and
recency_days. The rules file has six audience conditions, a contact policy with only e-mail
consent and a frequency cap (at most 4 sent contacts in 30 days), and a score threshold
(the median score of the training sample, rounded).

Every part runs in its own process started by a parent that stays small (a child's
``ru_maxrss`` starts at its parent's peak), so each peak resident memory printed is that
part's own, imports included (the "process start" row):

- **setup** per backend (timed, not compared): import the customers, write the ledger
  (``bulk_insert`` into ``contacts``), train and register the model; PostgreSQL gets ``ANALYZE``.
- **engine** per backend: the stages of ``orchestrator.wave.stages`` -- ``prepare`` (validation),
  ``select_candidates`` (SQL filters incl. the frequency cap, then scoring of the candidates in
  batches and the threshold) and ``split_wave`` -- then, for the breakdown, the SQL part alone
  (the same rules without ``scores``) and the scoring part alone (``score_customers`` and
  ``apply_score_rules`` on those ids).
- **pandas**: the same selection by hand -- load the customers and the ledger (Parquet), apply the
  six conditions and consent, the frequency cap by a groupby count, ``predict_proba`` of the same
  model on the filtered frame, the threshold.

The selected ids of each engine run must equal the pandas ones (asserted). Results go to
``bench/out/selection_bench.json``. PostgreSQL runs in a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MODEL = "bench-response"
FEATURES = ["age", "segment", "revenue_12m", "recency_days"]
TRAINING_ROWS = 50_000
CAP_MAX, CAP_DAYS = 4, 30
HISTORY_DAYS = 60

RULES = """\
name: selection-bench
description: Six audience conditions, a frequency cap and a score threshold.
audience:
  all:
    - email: {{is_null: false}}
    - recency_days: {{between: [30, 540]}}
    - age: {{between: [21, 80]}}
    - any:
        - segment: {{in: [gold, silver]}}
        - revenue_12m: {{gt: 300}}
    - not:
        territory: {{in: [T41, T12]}}
    - region: {{in: [North, South, West, Central]}}
control:
  share: 0.1
  salt: selection-bench
channels:
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
    address_column: email
scores:
  model: {model}
  min_score: {min_score}
"""

POLICY = f"""\
consent:
  email: consent_email
frequency_caps:
  - {{max: {CAP_MAX}, days: {CAP_DAYS}}}
"""


import stages  # noqa: E402
from stages import Stages  # noqa: E402 - bench/ is on sys.path when run as a script

# --- data shared by every part (generated once, in the parent) ---------------------------------


def make_data(work: Path, n_customers: int, n_contacts: int, n_waves: int, as_of: date) -> dict:
    """customers.csv (for the import), customers.parquet and ledger.parquet (for pandas and the ledger)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from orchestrator.demo.synthetic import customers

    table = customers(n_customers)
    pacsv.write_csv(table, work / "customers.csv")
    pq.write_table(table, work / "customers.parquet")

    rng = np.random.default_rng(11)
    per_wave = n_contacts // n_waves
    if per_wave > n_customers:
        raise ValueError(f"{n_contacts:,} contacts in {n_waves} waves need at least {per_wave:,} customers")
    propensity = np.log(rng.lognormal(0.0, 0.7, n_customers))  # some customers are contacted more often
    midnight = np.datetime64(as_of.isoformat(), "us")
    waves, idx, sent = [], [], []
    for w in range(n_waves):
        days_ago = 1 + (HISTORY_DAYS - 2) * w // max(n_waves - 1, 1)  # 1 .. 59 days before the wave date
        keys = propensity + rng.gumbel(size=n_customers)  # weighted sampling without replacement
        chosen = np.sort(np.argpartition(-keys, per_wave - 1)[:per_wave])
        offset = rng.integers(9 * 3600 * 10**6, 13 * 3600 * 10**6, per_wave)  # sent 09:00-13:00 UTC
        waves.append(np.full(per_wave, w, dtype=np.int16))
        idx.append(chosen)
        sent.append(midnight - np.timedelta64(days_ago, "D") + offset.astype("timedelta64[us]"))
    ids = table.column("customer_id").to_numpy()
    ledger = pa.table(
        {
            "wave": np.concatenate(waves),
            "customer_id": ids[np.concatenate(idx)],
            "status": pa.array(["sent"] * (per_wave * n_waves)),
            "sent_at": pa.array(np.concatenate(sent), type=pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(ledger, work / "ledger.parquet")
    return {"customers": n_customers, "contacts": ledger.num_rows, "waves": n_waves, "as_of": as_of.isoformat()}


def training_frame(customers_parquet: Path):
    """50,000 customers with a synthetic yes/no response driven by revenue_12m and recency_days."""
    import numpy as np
    import pyarrow.parquet as pq

    frame = pq.read_table(customers_parquet, columns=["customer_id", *FEATURES]).to_pandas()
    rng = np.random.default_rng(5)
    sample = frame.iloc[np.sort(rng.choice(len(frame), min(TRAINING_ROWS, len(frame)), replace=False))].reset_index(
        drop=True
    )
    logit = (
        -1.2
        + 0.9 * np.log1p(sample["revenue_12m"] / 500)
        - sample["recency_days"] / 150
        + rng.normal(0, 0.5, len(sample))
    )
    sample["responded"] = np.where(rng.random(len(sample)) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return sample


def settings_for(work: Path, url: str):
    from orchestrator.settings import DatabaseSettings, PathSettings, Settings

    return Settings(
        paths=PathSettings(rules_dir=work / "rules", templates_dir=REPO / "templates", data_dir=work / "var"),
        database=DatabaseSettings(url=url),
    )


# --- setup (one process per backend) ----------------------------------------------------------


def run_setup(data: Path, work: Path, url: str) -> dict:
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    from orchestrator.customers.importer import import_customers
    from orchestrator.db import engine as database
    from orchestrator.db.bulk import bulk_insert
    from orchestrator.ledger import contacts as ledger
    from orchestrator.scoring.registry import register
    from orchestrator.scoring.response import train_response_model

    settings = settings_for(work, url)
    engine = database.connect(settings)
    stages = Stages()
    stages("import customers", import_customers, engine, data / "customers.csv", table=settings.database.customer_table)

    def write_ledger() -> int:
        contacts = pq.read_table(data / "ledger.parquet")
        campaign_id = ledger.ensure_campaign(engine, "past-campaign", "Past waves for the selection benchmark")
        n_waves = int(pc.max(contacts.column("wave")).as_py()) + 1
        wave_ids = np.array(
            [ledger.open_wave(engine, campaign_id, f"past-{w:02d}", "0" * 64).id for w in range(n_waves)]
        )
        sqlite = engine.dialect.name == "sqlite"
        sent = np.datetime_as_string(contacts.column("sent_at").to_numpy().astype("datetime64[us]"), unit="us")
        # SQLite: the text SQLAlchemy stores (ledger._timestamp); PostgreSQL: text COPY parses it.
        sent = np.char.replace(sent, "T", " ")
        if not sqlite:
            sent = np.char.add(sent, "+00")
        sent_list = sent.tolist()
        wave_list = wave_ids[contacts.column("wave").to_numpy()].tolist()
        customer_list = contacts.column("customer_id").to_pylist()
        rows = (
            (w, c, "treatment", "email", "sent", 1, s, s, s)
            for w, c, s in zip(wave_list, customer_list, sent_list, strict=True)
        )
        columns = [
            "wave_id",
            "customer_id",
            "arm",
            "channel",
            "status",
            "attempts",
            "created_at",
            "updated_at",
            "sent_at",
        ]
        with engine.begin() as conn:
            count = bulk_insert(conn, "contacts", columns, rows)
            conn.execute(sa.text("UPDATE waves SET status = 'completed'"))
        return count

    written = stages("write ledger", write_ledger)

    def train() -> float:
        frame = training_frame(data / "customers.parquet")
        result = train_response_model(frame.drop(columns=["customer_id"]), "responded", features=FEATURES)
        register(engine, settings, MODEL, result.model, result.metrics, result.fingerprint, "responded", result.rows)
        # The threshold: the training sample's median score, rounded (the same on every backend).
        return round(float(np.median(result.model.score_frame(frame))), 2)

    min_score = stages("train + register model", train)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            stages("analyze", conn.execute, sa.text("ANALYZE"))
    rules_dir = work / "rules"
    rules_dir.mkdir(parents=True, exist_ok=True)
    (rules_dir / "policy.yaml").write_text(POLICY)
    (rules_dir / "selection-bench.yaml").write_text(RULES.format(model=MODEL, min_score=min_score))
    return {"database": engine.dialect.name, "contacts": written, "min_score": min_score, **vars(stages)}


# --- the engine's selection (one process per backend) ----------------------------------------


def run_engine(work: Path, url: str, as_of: str) -> dict:
    import dataclasses

    from orchestrator.customers.table import customer_table
    from orchestrator.db import engine as database
    from orchestrator.scoring.customers import apply_score_rules, score_customers
    from orchestrator.wave import stages as wave

    settings = settings_for(work, url)
    engine = database.connect(settings)
    stages = Stages()
    rules = work / "rules" / "selection-bench.yaml"
    prepared = stages("prepare", wave.prepare, settings, rules, as_of)
    candidates = stages("select_candidates", wave.select_candidates, settings, prepared)
    selection = stages("split_wave", wave.split_wave, prepared, candidates)

    # The breakdown of select_candidates: the SQL filters alone, then the scoring alone.
    unscored = dataclasses.replace(prepared, spec=prepared.spec.model_copy(update={"scores": None}))
    sql_only = stages("  of which SQL filters", wave.select_candidates, settings, unscored)
    scores = prepared.spec.scores
    table = customer_table(engine, settings.database.customer_table)

    def score() -> int:
        ids, values = score_customers(engine, settings, scores.model, sql_only.ids, table=table.name)
        kept, _ = apply_score_rules(ids, values, min_score=scores.min_score)
        return len(kept)

    kept = stages("  of which scoring + threshold", score)
    assert kept == len(candidates.ids), (kept, len(candidates.ids))
    (work / "engine_ids.txt").write_text("\n".join(candidates.ids))
    return {
        "database": engine.dialect.name,
        "after_sql_filters": len(sql_only.ids),
        "selected": len(candidates.ids),
        "control": selection.count("control"),
        **vars(stages),
    }


# --- the same selection by hand in pandas ------------------------------------------------------


def run_pandas(data: Path, model_file: Path, as_of: str, min_score: float) -> dict:
    import joblib
    import pandas as pd
    import pyarrow.parquet  # noqa: F401  (imported before "process start", as the engine's imports are)

    model = joblib.load(model_file)
    stages = Stages()
    cutoff = pd.Timestamp(date.fromisoformat(as_of) - timedelta(days=CAP_DAYS), tz="UTC")

    def load():
        return pd.read_parquet(data / "customers.parquet"), pd.read_parquet(data / "ledger.parquet")

    customers, contacts = stages("load customers + ledger", load)

    def conditions() -> pd.DataFrame:
        c = customers
        keep = (
            c["email"].notna()
            & c["recency_days"].between(30, 540)
            & c["age"].between(21, 80)
            & (c["segment"].isin(["gold", "silver"]) | (c["revenue_12m"] > 300))
            & ~c["territory"].isin(["T41", "T12"])
            & c["region"].isin(["North", "South", "West", "Central"])
            & c["consent_email"]
        )
        return c[keep]

    audience = stages("six conditions + consent", conditions)

    def frequency_cap() -> pd.DataFrame:
        recent = contacts[(contacts["status"] == "sent") & (contacts["sent_at"] >= cutoff)]
        counts = recent.groupby("customer_id").size()
        at_cap = counts.index[counts >= CAP_MAX]
        return audience[~audience["customer_id"].isin(at_cap)]

    capped = stages("frequency cap (groupby)", frequency_cap)
    scores = stages("score (predict_proba)", lambda: model.predict_proba(capped)[:, 1])
    selected = stages("threshold", lambda: capped["customer_id"][scores >= min_score])
    (data / "pandas_ids.txt").write_text("\n".join(selected.tolist()))
    return {
        "after_conditions": len(audience),
        "after_sql_filters": len(capped),
        "selected": len(selected),
        **vars(stages),
    }


# --- the parent: data, processes, comparison, table --------------------------------------------


def child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{args[:2]} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fresh_schema(url: str) -> tuple[str, str]:
    return stages.fresh_schema(url, "selection_bench")


drop_schema = stages.drop_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=5_000_000)
    parser.add_argument("--waves", type=int, default=20)
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--database-url", default=DEFAULT_PG, help="PostgreSQL server (a fresh schema is used)")
    parser.add_argument("--part", choices=["data", "setup", "engine", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--min-score", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--model-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.part == "data":
        info = make_data(args.data, args.customers, args.contacts, args.waves, date.fromisoformat(args.as_of))
        print(json.dumps(info))
        return
    if args.part == "setup":
        print(json.dumps(run_setup(args.data, args.work, args.url)))
        return
    if args.part == "engine":
        print(json.dumps(run_engine(args.work, args.url, args.as_of)))
        return
    if args.part == "pandas":
        print(json.dumps(run_pandas(args.data, args.model_file, args.as_of, args.min_score)))
        return

    from rich.console import Console

    console = Console(width=120)
    root = Path(tempfile.mkdtemp(prefix="selection-bench-"))
    data = root / "data"
    data.mkdir()
    as_of = datetime.now(UTC).date()
    start = time.perf_counter()
    # In a child too: a child process starts with its parent's peak RSS as its own floor.
    info = child(
        "--part",
        "data",
        "--data",
        str(data),
        "--as-of",
        as_of.isoformat(),
        "--customers",
        str(args.customers),
        "--contacts",
        str(args.contacts),
        "--waves",
        str(args.waves),
    )
    info["generate_seconds"] = round(time.perf_counter() - start, 2)
    console.print(f"data: {info}")

    results: dict[str, dict] = {}
    schema = None
    try:
        for backend in args.backends:
            work = root / backend
            if backend == "sqlite":
                url = f"sqlite:///{work / 'campaign.db'}"
            else:
                schema, url = fresh_schema(args.database_url)
            common = ["--data", str(data), "--work", str(work), "--url", url]
            setup = child("--part", "setup", *common)
            console.print(f"{backend} setup: {setup['seconds']}")
            engine = child("--part", "engine", *common, "--as-of", as_of.isoformat())
            console.print(f"{backend} engine: {engine['seconds']}")
            results[backend] = {"setup": setup, "engine": engine}
            if backend == "postgresql":
                drop_schema(args.database_url, schema)
                schema = None
    finally:
        if schema is not None:
            drop_schema(args.database_url, schema)

    min_scores = {r["setup"]["min_score"] for r in results.values()}
    assert len(min_scores) == 1, f"the backends chose different thresholds: {min_scores}"
    min_score = min_scores.pop()
    first = root / args.backends[0]
    pandas = child(
        "--part",
        "pandas",
        "--data",
        str(data),
        "--as-of",
        as_of.isoformat(),
        "--min-score",
        str(min_score),
        "--model-file",
        str(first / "var" / "models" / MODEL / "v1.joblib"),
    )
    expected = set((data / "pandas_ids.txt").read_text().split("\n")) - {""}
    for backend in args.backends:
        got = (root / backend / "engine_ids.txt").read_text().split("\n")
        got_set = set(got) - {""}
        assert len(got_set) == len(got) - (got[-1:] == [""]), f"{backend}: duplicate ids"
        assert got_set == expected, (
            f"{backend} selected {len(got_set):,} ids, pandas {len(expected):,}; "
            f"only engine {len(got_set - expected):,}, only pandas {len(expected - got_set):,}"
        )
    report(console, info, min_score, results, pandas)
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    summary = {
        "data": info,
        "min_score": min_score,
        "frequency_cap": {"max": CAP_MAX, "days": CAP_DAYS},
        **results,
        "pandas": pandas,
    }
    summary["ids_identical"] = True
    (out_dir / "selection_bench.json").write_text(json.dumps(summary, indent=2))
    console.print(f"wrote {out_dir / 'selection_bench.json'}; work files in {root}")


def report(console, info: dict, min_score: float, results: dict, pandas: dict) -> None:
    from rich.table import Table

    def cell(r: dict, name: str) -> str:
        return f"{r['seconds'][name]:.2f} s  ({r['peak'][name]:,} MiB)"

    backends = list(results)
    setup = Table(title=f"Setup (not compared): {info['customers']:,} customers, {info['contacts']:,} ledger contacts")
    setup.add_column("stage")
    for b in backends:
        setup.add_column(b, justify="right")
    for name in dict.fromkeys(k for r in results.values() for k in r["setup"]["seconds"]):
        setup.add_row(
            name,
            *(cell(results[b]["setup"], name) if name in results[b]["setup"]["seconds"] else "-" for b in backends),
        )
    setup.add_row("total", *(f"{sum(results[b]['setup']['seconds'].values()):.2f} s" for b in backends))
    console.print(setup)

    table = Table(
        title=(
            f"Selection: seconds per stage (peak RSS MiB so far); six conditions, cap {CAP_MAX} in {CAP_DAYS} days, "
            f"score >= {min_score}"
        )
    )
    table.add_column("stage")
    for b in backends:
        table.add_column(f"engine {b}", justify="right")
    table.add_row("process start (imports)", *(f"({results[b]['engine']['peak']['start']:,} MiB)" for b in backends))
    for name in results[backends[0]]["engine"]["seconds"]:
        table.add_row(name, *(cell(results[b]["engine"], name) for b in backends))
    table.add_row(
        "after SQL filters (incl. cap)", *(f"{results[b]['engine']['after_sql_filters']:,}" for b in backends)
    )
    table.add_row("selected", *(f"{results[b]['engine']['selected']:,}" for b in backends))
    console.print(table)

    hand = Table(title="The same selection by hand in pandas (one process)")
    hand.add_column("stage")
    hand.add_column("pandas", justify="right")
    hand.add_row("process start (imports)", f"({pandas['peak']['start']:,} MiB)")
    for name in pandas["seconds"]:
        hand.add_row(name, cell(pandas, name))
    hand.add_row("after conditions + consent", f"{pandas['after_conditions']:,}")
    hand.add_row("after frequency cap", f"{pandas['after_sql_filters']:,}")
    hand.add_row("selected", f"{pandas['selected']:,}")
    console.print(hand)

    compute = sum(v for k, v in pandas["seconds"].items() if not k.startswith("load"))
    with_load = sum(pandas["seconds"].values())
    ratio = Table(title="Engine / pandas (selected id sets identical)")
    ratio.add_column("")
    for b in backends:
        ratio.add_column(b, justify="right")
    selects = {b: results[b]["engine"]["seconds"]["select_candidates"] for b in backends}
    ratio.add_row("engine select_candidates", *(f"{selects[b]:.2f} s" for b in backends))
    ratio.add_row(f"vs pandas without load ({compute:.2f} s)", *(f"{selects[b] / compute:.2f}x" for b in backends))
    ratio.add_row(f"vs pandas with load ({with_load:.2f} s)", *(f"{selects[b] / with_load:.2f}x" for b in backends))
    ratio.add_row(
        f"peak RSS vs pandas ({max(pandas['peak'].values()):,} MiB)",
        *(f"{max(results[b]['engine']['peak'].values()):,} MiB" for b in backends),
    )
    console.print(ratio)
    for b in backends:
        results[b]["ratio_vs_pandas"] = {
            "without_load": round(selects[b] / compute, 3),
            "with_load": round(selects[b] / with_load, 3),
        }


if __name__ == "__main__":
    main()
