"""Benchmark: the ledger's queries on a 1,000,000-contact ledger, with the indexes of two migrations.

    .venv/bin/python bench/ledger_query_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Setup (not timed), the same in two fresh schemas, one migrated to ``--before`` (default 0011_17:
indexes (wave_id, status) and (planned_for, channel)) and one to the newest revision (0012_17: neither,
a BRIN index on planned_for): a customer table of ``--customers`` rows; ``--waves`` waves of one
campaign, one day apart, of ``--per-wave`` contacts each (10% control, the treated on e-mail, call
center and field force 60/30/10), each recorded by ``record_contacts`` (the COPY) and then, but for
the last, sent (its treated contacts ``sent`` with one UPDATE), as a ledger grows wave after wave;
then ``VACUUM ANALYZE``.

Timed, ``--repeat`` rounds, the two schemas alternately in each: every query of the ledger by wave or
by day, through the engine's own function (the pending chunks of the send, joined with the customer
table; the id ranges and counts of the pending contacts; the counts per status, arm and channel; the
approver's sample; the customers of a cycle; the capacity used on a day; the frequency cap's
anti-join over the customer table), on the last wave (pending) and where it matters on an earlier one
(sent). Last in each round, timed too, 2,000 pending e-mails of the last wave marked ``sent``
(``mark_results``), so each round pages through fewer. Reported: the median seconds of each query per schema. With
``--explain``, the plan (``EXPLAIN ANALYZE``) of each SELECT the functions ran, after the rounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import stages  # noqa: E402 - bench/ is on sys.path when run as a script

FIRST_DAY = date(2026, 10, 1)
CHANNELS = ("email", "call_center", "field_force")
CAP = {"frequency_caps": [{"max": 2, "days": 30}]}
MARKED = "mark 2,000 e-mails sent (mark_results)"


def build(url: str, revision: str, args: argparse.Namespace) -> dict:
    """Migrate the schema of ``url`` to ``revision`` and fill it; what the queries need."""
    import numpy as np

    from orchestrator.customers.table import customer_table
    from orchestrator.db import engine as database
    from orchestrator.ledger import contacts as ledger
    from orchestrator.targeting.frame import ContactFrame

    engine = database.create_engine(url)
    database.upgrade(engine, revision)
    with engine.begin() as conn:
        if revision != "head":  # this code's COPY leaves the times to the defaults of 0012_17; indexes as migrated
            conn.exec_driver_sql(
                "ALTER TABLE contacts ALTER created_at SET DEFAULT now(), ALTER updated_at SET DEFAULT now()"
            )
        conn.exec_driver_sql(
            "CREATE TABLE customers (customer_id varchar(20) PRIMARY KEY, first_name text, email text, "
            "age integer, territory text)"
        )
        conn.exec_driver_sql(
            "INSERT INTO customers SELECT 'C' || lpad(i::text, 7, '0'), 'Name' || i, 'c' || i || '@example.com', "
            f"18 + mod(i, 60), 'T' || mod(i, 15) FROM generate_series(1, {args.customers}) AS i"
        )
    rng = np.random.default_rng(17)
    campaign = ledger.ensure_campaign(engine, "ledger-query-bench", None)
    waves = []
    for k in range(args.waves):
        day = FIRST_DAY + timedelta(days=k)
        wave = ledger.open_wave(engine, campaign, day.isoformat(), "0" * 64)
        picked = rng.choice(args.customers, args.per_wave, replace=False) + 1
        ids = np.array([f"C{i:07d}" for i in picked], dtype=object)
        control = rng.random(args.per_wave) < 0.1
        channel = np.array(CHANNELS, dtype=object)[rng.choice(3, args.per_wave, p=[0.6, 0.3, 0.1])]
        assignee = np.full(args.per_wave, None, dtype=object)
        assignee[channel == "field_force"] = "R01"
        frame = ContactFrame.of(
            ids,
            np.where(control, "control", "treatment"),
            channel=channel,
            assignee=assignee,
            score=rng.random(args.per_wave),
            expected_value=rng.random(args.per_wave) * 50,
        )
        ledger.record_contacts(engine, wave.id, frame, planned_for=day)
        if k < args.waves - 1:
            with engine.begin() as conn:
                conn.execute(
                    ledger.contacts.update()
                    .where(ledger.contacts.c.wave_id == wave.id, ledger.contacts.c.status == "pending")
                    .values(status="sent", attempts=1, sent_at=datetime(day.year, day.month, day.day, 10, tzinfo=UTC))
                )
        waves.append(wave)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return {"engine": engine, "customers": customer_table(engine), "waves": waves, "last_day": day}


def queries(ctx: dict) -> dict[str, Callable[[], object]]:
    """Each timed query: a name and the engine function that runs it."""
    import sqlalchemy as sa

    from orchestrator.delivery import sending
    from orchestrator.ledger import approvals
    from orchestrator.ledger import contacts as ledger
    from orchestrator.rules.policy_spec import PolicySpec
    from orchestrator.targeting.capacity import used_capacity
    from orchestrator.targeting.policy import policy_filters

    engine, customers, waves, day = ctx["engine"], ctx["customers"], ctx["waves"], ctx["last_day"]
    last, earlier = waves[-1], waves[len(waves) // 2]
    cap = policy_filters(PolicySpec.model_validate(CAP), channel="email", as_of=day, customer_table=customers)
    capped = sa.select(sa.func.count()).select_from(customers).where(*(condition for _, condition in cap))

    def chunks(channel: str | None = None) -> int:
        return sum(len(c) for c in ledger.pending_contacts(engine, last.id, customers, 5_000, channel=channel))

    def frequency_cap() -> int:
        with engine.connect() as conn:
            return conn.execute(capped).scalar_one()

    return {
        "pending chunks, last wave (all channels)": chunks,
        "pending chunks, last wave (email)": lambda: chunks("email"),
        "pending chunks, earlier wave (none left)": lambda: sum(
            len(c) for c in ledger.pending_contacts(engine, earlier.id, customers, 5_000)
        ),
        "pending id ranges (email)": lambda: sending._pending_ranges(engine, last.id, 5_000),
        "pending count (call_center)": lambda: sending._pending_count(engine, last.id, "call_center"),
        "waiting counts": lambda: ledger.waiting_counts(engine, last.id, datetime.now(UTC)),
        "wave counts, last wave": lambda: ledger.wave_counts(engine, last.id),
        "wave counts, earlier wave": lambda: ledger.wave_counts(engine, earlier.id),
        "arm counts": lambda: ledger.arm_counts(engine, last.id),
        "channel counts": lambda: ledger.channel_counts(engine, last.id),
        "approver's sample": lambda: approvals.treated_sample(engine, last.id, 3),
        "cycle customers": lambda: len(ledger.cycle_customers(engine, last.key)),
        "used capacity, last day": lambda: used_capacity(engine, day),
        "used capacity, earlier day": lambda: used_capacity(engine, day - timedelta(days=len(waves) // 2)),
        "frequency cap (30 days)": frequency_cap,
    }


def mark_some_sent(ctx: dict, n: int) -> None:
    from orchestrator.ledger import contacts as ledger

    chunk = next(ledger.pending_contacts(ctx["engine"], ctx["waves"][-1].id, ctx["customers"], n, channel="email"))
    outcomes = [ledger.Outcome(cid, "sent", message_id=f"m{cid}") for cid in chunk.contact_ids]
    ledger.mark_results(ctx["engine"], outcomes, "email")


def explain(ctx: dict, run: Callable[[], object]) -> list[str]:
    """The plans of the SELECTs ``run`` sends (``EXPLAIN ANALYZE``), in order."""
    import sqlalchemy as sa

    engine, seen = ctx["engine"], []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001, PLR0913
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    plans = []
    with engine.connect() as conn:
        for statement, parameters in seen[:2]:  # the first two: the pending chunks repeat one query
            rows = conn.connection.driver_connection.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
            plans.append("\n".join(r[0] for r in rows))
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", required=True)
    parser.add_argument("--before", default="0011_17", help="the revision to compare with the newest")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--waves", type=int, default=12)
    parser.add_argument("--per-wave", type=int, default=83_334)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()

    from orchestrator.db import engine as database

    schemas, contexts = [], {}
    try:
        for label, revision in (("before", args.before), ("after", "head")):
            schema, url = stages.fresh_schema(args.postgres, f"ledger_query_{label}")
            schemas.append(schema)
            started = time.perf_counter()
            contexts[label] = build(url, revision, args)
            print(f"{label}: {revision}, {time.perf_counter() - started:.0f} s to build", flush=True)
        timed = {label: queries(ctx) for label, ctx in contexts.items()}
        seconds: dict[str, dict[str, list[float]]] = {label: {} for label in contexts}
        for k in range(args.repeat):
            for label in ("before", "after") if k % 2 == 0 else ("after", "before"):
                for name, run in timed[label].items():
                    wall = time.perf_counter()
                    run()
                    seconds[label].setdefault(name, []).append(time.perf_counter() - wall)
                wall = time.perf_counter()
                mark_some_sent(contexts[label], 2_000)
                seconds[label].setdefault(MARKED, []).append(time.perf_counter() - wall)
            print(f"round {k + 1} done; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
        print(f"{'query':44s} {'before s':>9s} {'after s':>9s}")
        for name in [*timed["before"], MARKED]:
            before, after = (sorted(seconds[label][name])[args.repeat // 2] for label in ("before", "after"))
            print(f"{name:44s} {before:9.3f} {after:9.3f}")
        if args.explain:
            for name in timed["after"]:
                for label in ("before", "after"):
                    for plan in explain(contexts[label], timed[label][name]):
                        print(f"\n--- {name} ({label})\n{plan}")
    finally:
        for ctx in contexts.values():
            ctx["engine"].dispose()
        database.dispose_all()
        for schema in schemas:
            stages.drop_schema(args.postgres, schema)


if __name__ == "__main__":
    main()
