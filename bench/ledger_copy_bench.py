"""Benchmark: what the contact ledger's constraints cost a wave's COPY on PostgreSQL.

    .venv/bin/python bench/ledger_copy_bench.py --rows 81111 --repeat 6

The same CSV rows (the columns ``record_contacts`` copies, one new wave per COPY) are copied into
tables of the ledger's columns, in a throwaway schema: ``ledger`` as the migrations make it (primary
key, unique (wave_id, customer_id), a BRIN index on planned_for and (batch_id) over the rows in a
task list only; the two times left out of the COPY to their default, the transaction's time: since
migration 0012_17); ``ledger_0011`` as it was before that migration (B-tree indexes (wave_id, status)
and (planned_for, channel), the times in the COPY as text); ``ledger_0010`` as it was before
migration 0011_17 (also the foreign key to ``waves`` and a (batch_id) index over every row);
``plain`` primary key and unique index only, the times in the COPY (the shape of the full-wave
bench's hand-written table). Reported per table: wall seconds and the CPU seconds of the PostgreSQL
backend (read from /proc, so the database must run on this machine), which a busy machine disturbs
far less than the wall time.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import time

SCHEMA = "ledger_copy_bench"
COLUMNS = (
    "wave_id", "customer_id", "arm", "variant", "channel", "score", "expected_value", "arm_propensity",
    "channel_propensity", "eligible_channels", "assignee", "planned_for", "status", "attempts", "created_at",
    "updated_at",
)  # fmt: skip
DDL = """CREATE TABLE {name} (id bigserial PRIMARY KEY, wave_id integer NOT NULL {fk},
 customer_id varchar(200) NOT NULL, arm varchar(20) NOT NULL, variant varchar(50), channel varchar(50),
 score float8, status varchar(20) NOT NULL, message_id varchar(250), detail varchar, attempts integer NOT NULL,
 created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, sent_at timestamptz, planned_for date,
 assignee varchar(100), expected_value float8, batch_id bigint, arm_propensity float8, channel_propensity float8,
 eligible_channels varchar(500), send_after timestamptz, UNIQUE (wave_id, customer_id))"""
SECONDARY = ["(wave_id, status)", "(planned_for, channel)", "(batch_id)"]
PARTIAL = ["(wave_id, status)", "(planned_for, channel)", "(batch_id) WHERE batch_id IS NOT NULL"]
BRIN = ["USING brin (planned_for) WITH (autosummarize = on)", "(batch_id) WHERE batch_id IS NOT NULL"]
# table -> (foreign key to waves, secondary indexes, the times in the COPY)
TABLES = {
    "ledger": (False, BRIN, False),
    "ledger_0011": (False, PARTIAL, True),
    "ledger_0010": (True, SECONDARY, True),
    "plain": (False, [], True),
}
TIMES = ",2026-11-24 10:00:00+00,2026-11-24 10:00:00+00"  # the last two columns of every row of rows_csv


def rows_csv(n: int) -> str:
    rnd = random.Random(1)
    channels = ["email", "call_center", "field_force"]
    out = io.StringIO()
    for k, c in enumerate(rnd.sample(range(1_000_000), n)):
        arm, status = ("control", "control") if k % 10 == 0 else ("treatment", "pending")
        out.write(
            f"{{wave}},C{c:07d},{arm},,{channels[k % 3]},{rnd.random()},{rnd.random() * 50},0.9,1.0,"
            f'"email,call_center",{"R01" if k % 3 == 2 else ""},2026-11-24,{status},0,'
            "2026-11-24 10:00:00+00,2026-11-24 10:00:00+00\n"
        )
    return out.getvalue()


def main() -> None:
    import psycopg

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rows", type=int, default=81_111)
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args()
    conn = psycopg.connect(args.url, autocommit=True)
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    conn.execute(f"SET search_path = {SCHEMA}")
    try:
        conn.execute("CREATE TABLE waves (id serial PRIMARY KEY, key text)")
        for name, (fk, secondary, _times) in TABLES.items():
            conn.execute(DDL.format(name=name, fk="REFERENCES waves (id)" if fk else ""))
            conn.execute(f"ALTER TABLE {name} ALTER created_at SET DEFAULT now(), ALTER updated_at SET DEFAULT now()")
            for k, columns in enumerate(secondary):
                conn.execute(f"CREATE INDEX ix_{name}_{k} ON {name} {columns}")
        backend = conn.execute("SELECT pg_backend_pid()").fetchall()[0][0]
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            fields = open(f"/proc/{backend}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        data = rows_csv(args.rows)
        without_times = data.replace(TIMES + "\n", "\n")
        seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in TABLES}
        for _ in range(args.repeat):
            for name, (_fk, _secondary, times) in TABLES.items():  # interleaved: a busy spell hits every table alike
                wave = conn.execute("INSERT INTO waves (key) VALUES ('x') RETURNING id").fetchall()[0][0]
                payload = (data if times else without_times).replace("{wave}", str(wave)).encode()
                columns = ", ".join(COLUMNS if times else COLUMNS[:-2])
                with conn.transaction():
                    wall, used = time.perf_counter(), cpu()
                    with conn.cursor().copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                        copy.write(payload)
                seconds[name].append((time.perf_counter() - wall, cpu() - used))
        print(f"{args.rows:,} rows per COPY, {args.repeat} COPYs per table; load average {os.getloadavg()}")
        for name, runs in seconds.items():
            walls, cpus = sorted(w for w, _ in runs), sorted(c for _, c in runs)
            print(
                f"{name:13s} wall {walls[0]:.2f} to {walls[-1]:.2f} s (median {walls[len(walls) // 2]:.2f}), "
                f"backend CPU {cpus[0]:.2f} to {cpus[-1]:.2f} s (median {cpus[len(cpus) // 2]:.2f})"
            )
    finally:
        conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


if __name__ == "__main__":
    main()
