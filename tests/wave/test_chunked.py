"""Chunked execution: scoring, rendering and sending as chunk tasks, in this process or on Dask.

The ledger a wave leaves must not depend on how it was cut into chunks or where the chunks
ran: a cycle (a scored multichannel campaign and an e-mail campaign) is run on two fresh
databases, once as one chunk and once as many (threads), and on PostgreSQL once in-process
and once on a local Dask cluster of two worker processes (prefect-dask); the ledgers are
compared row by row and every message and task arrives exactly once.

Real parts: SQLite and PostgreSQL, the Prefect API of the session, an aiosmtpd server,
uvicorn receivers on 127.0.0.1, a Dask LocalCluster.
"""

from __future__ import annotations

import itertools
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import sqlalchemy as sa

from channels.payloads import VisitList
from orchestrator.customers.importer import import_customers
from orchestrator.db.engine import connect
from orchestrator.db.tables import table_of
from orchestrator.demo.synthetic import customers as synthetic_customers
from orchestrator.demo.synthetic import write_csv
from orchestrator.execution import chunks
from orchestrator.ledger import contacts as ledger
from orchestrator.rules.kinds import channel_kind
from tests.conftest import REPO, fresh_database
from tests.smtp_server import SmtpServer
from tests.support.wave import RULES, cycle_settings_for, pause_rcpt, wave_environment, wave_ledger
from tests.webhook_receiver import TestReceiver

WAVE = "2026-11-24"
N_CUSTOMERS = 2500
MODEL = "chunk-response"


# --- the pieces -------------------------------------------------------------------------------


def test_split_keeps_order_and_covers_everything():
    parts = chunks.split(list(range(10)), 4)
    assert parts == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert chunks.split([], 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        chunks.split([1], 0)


@pytest.mark.parametrize("size", [1, 3, 7, 50, 1000])
def test_id_ranges_are_disjoint_and_cover_every_id_once(engine, size):
    meta = sa.MetaData()
    table = sa.Table("ids", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("keep", sa.Boolean))
    meta.create_all(engine)
    rng = np.random.default_rng(size)
    ids = np.sort(rng.choice(10_000, 103, replace=False)) + 1
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": int(i), "keep": bool(i % 3)} for i in ids])
    query = sa.select(table.c.id).where(table.c.keep)
    kept = [int(i) for i in ids if i % 3]
    with engine.connect() as conn:
        ranges = chunks.id_ranges(conn, query, size)
        assert chunks.id_ranges(conn, query.where(table.c.id < 0), size) == []
    covered = [i for first, last in ranges for i in kept if first <= i <= last]
    assert covered == kept  # every id once, in order
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    per_range = [sum(first <= i <= last for i in kept) for first, last in ranges]
    assert all(n == size for n in per_range[:-1]) and 0 < per_range[-1] <= size


def test_chunk_results_arrive_in_call_order_in_process():
    assert list(chunks.in_process(pow, [(2, 3), (3, 2), (5, 0)])) == [8, 9, 1]


def test_a_template_travels_to_other_processes_by_its_files_and_refuses_changed_files(tmp_path):
    import pickle

    from orchestrator.errors import ValidationFailed
    from orchestrator.templates.loader import TemplateSet

    shutil.copytree(REPO / "templates", tmp_path / "templates")
    template = TemplateSet.load(tmp_path / "templates", "call_center", "retention", channel_kind("call_center").layout)
    copy = pickle.loads(pickle.dumps(template))
    context = {name: 1 for name in template.variables()} | {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "segment": "gold",
    }
    assert copy.digest == template.digest and copy.render(context) == template.render(context)
    script = next(iter(template.files.values()))
    script.write_text(script.read_text() + "\nchanged")
    with pytest.raises(ValidationFailed, match="changed while the wave was running"):
        pickle.loads(pickle.dumps(template))


# --- the same ledger however the wave is cut and wherever it runs ------------------------------


@pytest.fixture(scope="module")
def response_model():
    """A response model of the synthetic customers, trained once; every database registers the same one."""
    from orchestrator.scoring.response import train_response_model

    frame = synthetic_customers(4000, seed=3).to_pandas()
    rng = np.random.default_rng(3)
    odds = (frame["segment"] == "gold") * 1.5 + (frame["age"] < 40) * 1.0 - 1.5
    frame["responded"] = np.where(rng.random(len(frame)) < 1 / (1 + np.exp(-odds)), "yes", "no")
    features = ["age", "segment", "region", "revenue_12m"]
    return train_response_model(frame[["customer_id", *features, "responded"]], "responded", features=features)


@pytest.fixture
def scored_workspace(workspace):
    """The cycle tests' rules and templates, with the retention campaign selecting by a model's score."""
    path = workspace / "rules" / "retention-multichannel.yaml"
    path.write_text(
        path.read_text().replace(
            "control:\n", f"scores:\n  model: {MODEL}\n  top_percent: 70\n\ncontrol:\n  stratify_by_score: true\n"
        )
    )
    return workspace


def _run_on_fresh_database(kind, tmp_path, name, workspace, model, **execution) -> dict:
    """Import the customers and the model into a fresh database, run the cycle, return what it left."""
    from flows.run import run_cycle
    from orchestrator.scoring.registry import register
    from orchestrator.settings import DatabaseSettings, PathSettings, Settings

    with (
        fresh_database(kind, tmp_path, name) as url,
        SmtpServer() as smtp,
        TestReceiver(path="/call_center") as calls,
        TestReceiver(path="/field_force") as visits,
    ):
        settings = Settings(
            paths=PathSettings(
                rules_dir=workspace / "rules", templates_dir=workspace / "templates", data_dir=tmp_path / name
            ),
            database=DatabaseSettings(url=url),
        )
        settings = cycle_settings_for(settings, smtp.port, calls, visits)
        settings = settings.model_copy(update={"execution": settings.execution.model_copy(update=execution)})
        engine = connect(settings)
        import_customers(engine, write_csv(tmp_path / "customers.csv", N_CUSTOMERS, seed=8))
        register(engine, settings, MODEL, model.model, model.metrics, model.fingerprint, model.target, model.rows)
        rules = [workspace / "rules" / "retention-multichannel.yaml", workspace / "rules" / "winback-email.yaml"]
        summaries = run_cycle(settings, rules, wave=WAVE, dry_run=False)
        return {
            "summaries": [{k: v for k, v in s.items() if k not in ("wave_id", "funnel")} for s in summaries],
            "ledger": _ledger(engine),
            "emails": Counter((m["To"], m["Subject"]) for m in smtp.messages),
            "calls": calls.tasks_per_customer(),
            "visits": visits.tasks_per_customer(),
            "visit_lists": _visit_lists(visits),
        }


def _visit_lists(visits: TestReceiver) -> list[tuple[str, list[str]]]:
    """Each visit list the receiver accepted: its rep and the customers to visit."""
    lists = list(visits.batches.values())
    assert all(isinstance(b, VisitList) for b in lists), "the field-force receiver got another kind of list"
    return sorted((b.rep_id, sorted(v.customer_id for v in b.visits)) for b in lists if isinstance(b, VisitList))


def _ledger(engine) -> dict:
    """The ledger without what differs by nature between two databases (row ids, clocks, Message-IDs)."""
    c, w, k, b = ledger.contacts, ledger.waves, ledger.campaigns, ledger.contacts.metadata.tables["dispatch_batches"]
    with engine.connect() as conn:
        contacts = conn.execute(
            sa.select(
                k.c.name,
                c.c.customer_id,
                c.c.arm,
                c.c.variant,
                c.c.channel,
                c.c.score,
                c.c.status,
                c.c.detail,
                c.c.attempts,
                c.c.planned_for,
                c.c.assignee,
                c.c.expected_value,
                b.c.seq,
                sa.case((c.c.channel == "email", c.c.message_id), else_=c.c.message_id.is_(None).cast(sa.String)),
            )
            .join_from(c, w, w.c.id == c.c.wave_id)
            .join(k, k.c.id == w.c.campaign_id)
            .outerjoin(b, b.c.id == c.c.batch_id)
            .order_by(k.c.name, c.c.customer_id)
        ).all()
        batches = conn.execute(
            sa.select(b.c.channel, b.c.seq, b.c.assignee, b.c.size, b.c.status, b.c.attempts).order_by(
                b.c.channel, b.c.seq
            )
        ).all()
        losses = conn.execute(sa.select(table_of(ledger.ArbitrationLoss)).order_by(sa.text("1"))).all()
        waves = conn.execute(
            sa.select(k.c.name, w.c.key, w.c.status).join_from(w, k, k.c.id == w.c.campaign_id).order_by(k.c.name)
        ).all()
    return {
        "contacts": [tuple(row) for row in contacts],
        "batches": [tuple(row) for row in batches],
        "losses": sorted(tuple(row)[1:-1] for row in losses),  # without the id and the clock
        "waves": [tuple(row) for row in waves],
    }


def _assert_same_and_delivered_once(one: dict, other: dict) -> None:
    assert one["ledger"]["waves"] == other["ledger"]["waves"]
    assert all(status == "completed" for _name, _key, status in one["ledger"]["waves"])
    assert len(one["ledger"]["contacts"]) == len(other["ledger"]["contacts"]) > 0
    for a, b in zip(one["ledger"]["contacts"], other["ledger"]["contacts"], strict=True):
        assert a == b
    for key in ("batches", "losses"):
        assert one["ledger"][key] == other["ledger"][key]
    assert one["summaries"] == other["summaries"]
    for run in (one, other):
        contacts = run["ledger"]["contacts"]
        sent = Counter(
            channel for _n, _c, arm, _v, channel, _s, status, *_ in contacts if arm == "treatment" and status == "sent"
        )
        assert set(sent) == {"email", "call_center", "field_force"}
        assert sum(run["emails"].values()) == sent["email"] and max(run["emails"].values()) == 1
        assert sum(run["calls"].values()) == sent["call_center"] and max(run["calls"].values()) == 1
        assert sum(run["visits"].values()) == sent["field_force"] and max(run["visits"].values()) == 1
        assert any(score is not None for _n, _c, _a, _v, _ch, score, *_ in contacts)  # the scored campaign
    assert one["emails"] == other["emails"] and one["calls"] == other["calls"]
    assert one["visit_lists"] == other["visit_lists"]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
@pytest.mark.slow
def test_many_small_chunks_leave_the_same_ledger_as_one_chunk(
    kind, tmp_path, scored_workspace, response_model, prefect_api_url
):
    whole = _run_on_fresh_database(kind, tmp_path, "whole", scored_workspace, response_model, chunk_size=1_000_000)
    cut = _run_on_fresh_database(kind, tmp_path, "cut", scored_workspace, response_model, chunk_size=97, workers=3)
    _assert_same_and_delivered_once(whole, cut)


@pytest.mark.postgres
@pytest.mark.parametrize("cluster", ["local", "address"])
@pytest.mark.slow
def test_a_dask_cluster_leaves_exactly_the_ledger_of_the_in_process_run(
    cluster, tmp_path, scored_workspace, response_model, prefect_api_url
):
    """``local``: prefect-dask starts a cluster of two worker processes for the run; ``address``:
    the run is sent to a cluster that was already running (a scheduler and two workers)."""
    from distributed import LocalCluster

    here = _run_on_fresh_database("postgresql", tmp_path, "threads", scored_workspace, response_model, chunk_size=300)
    if cluster == "local":
        with _messages_of("prefect.task_runner.dask") as messages:
            dask = _run_on_fresh_database(
                "postgresql",
                tmp_path,
                "dask",
                scored_workspace,
                response_model,
                chunk_size=300,
                task_runner="dask",
                workers=2,
            )
        assert any("Creating a new Dask cluster" in m for m in messages), messages
    else:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as running:
            dask = _run_on_fresh_database(
                "postgresql",
                tmp_path,
                "dask",
                scored_workspace,
                response_model,
                chunk_size=300,
                task_runner="dask",
                dask_address=running.scheduler_address,
            )
            assert running.scheduler.transition_counter > 0, "no chunk went through the running cluster"
    _assert_same_and_delivered_once(here, dask)


@contextmanager
def _messages_of(name: str) -> Iterator[list[str]]:
    """The messages logger ``name`` logs inside the block (Prefect's loggers do not all reach caplog)."""
    messages: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


# --- a killed run with several e-mail chunks in flight ------------------------------------------


@pytest.mark.slow
def test_killed_while_chunks_send_resumes_with_exactly_the_unsent(settings, tmp_path, prefect_api_url):
    """SIGKILL while three e-mail chunks send at once (three threads, one SMTP connection each)
    and one of them waits at RCPT. The next run first marks every chunk journal's messages sent,
    then cuts the still-pending contacts into new chunks: nobody is lost, and only a message the
    server accepted in the instant before the kill, before its chunk could journal it, can go
    out again (at most one per other chunk in flight), with the same Message-ID."""
    import os
    import signal
    import subprocess
    import sys

    engine = connect(settings)
    import_customers(engine, write_csv(tmp_path / "customers.csv", 3000, seed=11))
    workers = 3
    env = {**os.environ, **wave_environment(settings, 0), "PREFECT_API_URL": prefect_api_url}
    env |= {
        "CAMPAIGN_SMTP_CONNECTIONS": "1",
        "CAMPAIGN_EXECUTION_CHUNK_SIZE": "120",
        "CAMPAIGN_EXECUTION_WORKERS": str(workers),
    }
    command = [
        sys.executable,
        "-c",
        "from orchestrator.cli.main import app; app()",
        "run",
        str(RULES),
        "--wave",
        "2026-11-26",
        "--yes",
    ]
    journals = settings.paths.data_dir / "journal"
    with SmtpServer() as server:
        env["CAMPAIGN_SMTP_PORT"] = str(server.port)
        reached, release = pause_rcpt(server, at=300)
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert reached.wait(120), process.stdout.read().decode() if process.poll() is not None else "no RCPT 300"
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        finally:
            release.set()
        left_behind = list(journals.glob("wave-*/email-*.log"))
        assert len(left_behind) >= 2, "several chunks were sending when the run was killed"
        assert len(server.received) >= 290
        second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stdout + second.stderr
        counts = Counter(server.recipients)
        by_message_id = Counter(m["Message-ID"] for m in server.messages)
    rows = wave_ledger(engine)
    sent = [r for r in rows if r.status == "sent"]
    twice = sum(n - 1 for n in counts.values())
    assert twice <= workers - 1, f"{twice} messages sent twice with {workers} chunks in flight"
    assert sum(n - 1 for n in by_message_id.values()) == twice  # a repeat is the same message
    assert len(counts) == len(sent) > 300
    assert not [r for r in rows if r.status == "pending"]
    assert not list(journals.glob("wave-*/email-*.log")), "every chunk journal was recovered and removed"


# --- choosing the task runner ---------------------------------------------------------------------


def test_the_execution_settings_choose_the_task_runner():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.chunk_runner import task_runner
    from orchestrator.settings import ExecutionSettings

    threads = task_runner(ExecutionSettings(workers=3))
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3
    remote = task_runner(ExecutionSettings(task_runner="dask", dask_address="tcp://127.0.0.1:8786"))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://127.0.0.1:8786"
    local = task_runner(ExecutionSettings(task_runner="dask", workers=2))
    assert local.address is None and local.cluster_kwargs["n_workers"] == 2 and local.cluster_kwargs["processes"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--task-runner", "spark"], "'spark' is not one of 'threads', 'dask'"),
        (["--chunk-size", "0"], "--chunk-size:"),
    ],
)
def test_run_refuses_bad_execution_options_before_anything_runs(option, message, settings):
    from typer.testing import CliRunner

    from orchestrator.cli.main import app
    from orchestrator.settings import use_settings

    with use_settings(settings):
        result = CliRunner().invoke(app, ["run", str(REPO / "rules" / "winback-email.yaml"), *option])
    assert result.exit_code == (2 if "spark" in option else 1), result.output  # 2: wrong usage (click)
    assert message in " ".join(result.output.replace("│", " ").split()), result.output
    from orchestrator.db.engine import connect as engine_of

    with engine_of(settings).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger.waves)).scalar_one() == 0
