import os

import numpy as np
import pytest
import sqlalchemy as sa

from channels.base import DeliveryResult, report_all
from orchestrator.db.tables import WaveStatus
from orchestrator.ledger import contacts as ledger
from orchestrator.ledger.journal import SendJournal, WaveBusy
from orchestrator.targeting.frame import ContactFrame


def _customers(engine, n):
    meta = sa.MetaData()
    table = sa.Table(
        "customers", meta, sa.Column("customer_id", sa.Text, primary_key=True), sa.Column("email", sa.Text)
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"customer_id": f"C{i}", "email": f"c{i}@example.com"} for i in range(n)])
    return table


def _arms(control_mask):
    return np.where(control_mask, "control", "treatment").astype(object)


def _frame(ids, control_mask):
    return ContactFrame.of(ids, _arms(control_mask), channel="email")


def _wave(engine):
    campaign_id = ledger.ensure_campaign(engine, "spring", "test")
    return ledger.open_wave(engine, campaign_id, "2026-11-23", "0" * 64)


def test_record_contacts_writes_treatment_and_control_once(engine):
    wave = _wave(engine)
    ids = [f"C{i}" for i in range(1000)]
    mask = np.arange(1000) % 10 == 0
    assert ledger.record_contacts(engine, wave.id, _frame(ids, mask)) == (900, 100)
    # recording again is a no-op that reports the recorded counts
    assert ledger.record_contacts(engine, wave.id, _frame(ids[:5], mask[:5])) == (900, 100)
    counts = ledger.wave_counts(engine, wave.id)
    assert counts["pending"] == 900 and counts["control"] == 100
    assert ledger.wave_status(engine, wave.id) == WaveStatus.RECORDED
    assert ledger.open_wave(engine, wave.campaign_id, wave.key, "x").id == wave.id


def test_record_contacts_records_nothing_when_before_commit_raises(engine):
    """What ``before_commit`` does (the wave's reasons file) happens before the contacts commit, or nothing
    is recorded; 40,000 rows go to PostgreSQL's COPY in several parts."""
    wave = _wave(engine)
    ids = [f"C{i}" for i in range(40_000)]
    mask = np.arange(40_000) % 10 == 0

    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ledger.record_contacts(engine, wave.id, _frame(ids, mask), before_commit=fail)
    assert sum(ledger.wave_counts(engine, wave.id).values()) == 0
    assert ledger.wave_status(engine, wave.id) == WaveStatus.SELECTING
    called = []
    assert ledger.record_contacts(engine, wave.id, _frame(ids, mask), before_commit=lambda: called.append(1)) == (
        36_000,
        4_000,
    )
    assert called == [1] and ledger.wave_counts(engine, wave.id)["pending"] == 36_000
    # recorded before: nothing is written and before_commit is not called
    assert ledger.record_contacts(engine, wave.id, _frame(ids, mask), before_commit=fail) == (36_000, 4_000)


def test_record_contacts_reads_back_every_column_alike_on_each_database(engine):
    """PostgreSQL gets the rows as one COPY of pyarrow CSV, SQLite as executemany: the same values either way."""
    from datetime import UTC, date, datetime, timedelta

    wave = _wave(engine)
    frame = ContactFrame.of(
        ["C1", "C2", "C3", "C4"],
        np.array(["treatment", "treatment", "control", "global_control"], dtype=object),
        variant=["A", None, None, None],
        channel=["email", "field_force", "email", None],
        assignee=[None, "R01", None, None],
        score=[0.25, np.nan, 0.5, np.nan],
        expected_value=[1.75, 12.5, np.nan, np.nan],
        arm_propensity=[0.9, 0.9, 0.1, np.nan],
        channel_propensity=[1.0, 0.75, np.nan, np.nan],
        eligible=["email", "email,field_force", "email", None],
    )
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert ledger.record_contacts(engine, wave.id, frame, planned_for=date(2026, 11, 24)) == (2, 2)
    c = ledger.contacts.c
    columns = [c.customer_id, c.arm, c.variant, c.channel, c.assignee, c.score, c.expected_value]
    columns += [c.arm_propensity, c.channel_propensity, c.eligible_channels, c.status, c.attempts, c.planned_for]
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(*columns).order_by(c.customer_id))]
        stamps = conn.execute(sa.select(c.created_at, c.updated_at)).all()
    day = date(2026, 11, 24)
    assert rows == [
        ("C1", "treatment", "A", "email", None, 0.25, 1.75, 0.9, 1.0, "email", "pending", 0, day),
        ("C2", "treatment", None, "field_force", "R01", None, 12.5, 0.9, 0.75, "email,field_force", "pending", 0, day),
        ("C3", "control", None, "email", None, 0.5, None, 0.1, None, "email", "control", 0, day),
        ("C4", "global_control", None, None, None, None, None, None, None, None, "control", 0, day),
    ]
    for created, updated in stamps:
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        assert created == (updated if updated.tzinfo else updated.replace(tzinfo=UTC))
        assert before <= created <= datetime.now(UTC) + timedelta(seconds=1)


def test_pending_chunks_and_marks_move_forward_only(engine):
    table = _customers(engine, 250)
    wave = _wave(engine)
    ids = [f"C{i}" for i in range(250)]
    ledger.record_contacts(engine, wave.id, _frame(ids, np.zeros(250, dtype=bool)))
    seen = []
    for chunk in ledger.pending_contacts(engine, wave.id, table, 100):
        assert all(row["email"].endswith("@example.com") for row in chunk.customers)
        seen.extend(chunk.contact_ids)
        outcomes = [ledger.Outcome(cid, "sent", None, f"<m{cid}@x>") for cid in chunk.contact_ids[:-1]]
        outcomes.append(ledger.Outcome(chunk.contact_ids[-1], "permanent", "550 5.1.1 no such mailbox"))
        ledger.mark_results(engine, outcomes, "email")
    assert len(seen) == 250 and len(set(seen)) == 250
    counts = ledger.wave_counts(engine, wave.id)
    assert counts["sent"] == 247 and counts["failed"] == 3 and counts["pending"] == 0
    # a late "transient" for a sent contact does not move it back
    ledger.mark_results(engine, [ledger.Outcome(seen[0], "transient", "451")], "email")
    assert ledger.wave_counts(engine, wave.id)["sent"] == 247
    with engine.connect() as conn:
        tries = conn.execute(sa.select(sa.func.count()).select_from(ledger.attempts)).scalar_one()
    assert tries == 251


def test_transient_keeps_contact_pending_with_reason(engine):
    table = _customers(engine, 3)
    wave = _wave(engine)
    ledger.record_contacts(engine, wave.id, _frame(["C0", "C1", "C2"], np.zeros(3, dtype=bool)))
    chunk = next(ledger.pending_contacts(engine, wave.id, table, 10))
    ledger.mark_results(engine, [ledger.Outcome(chunk.contact_ids[0], "transient", "451 try later")], "email")
    again = next(ledger.pending_contacts(engine, wave.id, table, 10))
    assert len(again) == 3


def test_journal_survives_and_locks(tmp_path):
    path = tmp_path / "j" / "wave-1.log"
    with SendJournal(path) as journal:
        journal.append(DeliveryResult(7, "sent", provider_id="<a@b>"))
        journal.append(DeliveryResult(8, "permanent", detail="550"))
        try:
            with SendJournal(path):
                raise AssertionError("second opener must be refused")
        except WaveBusy:
            pass
    with open(path, "a") as f:
        f.write("9")  # a torn line from a killed process is ignored
    with SendJournal(path) as journal:
        assert journal.entries() == {7: "<a@b>"}
        journal.clear()
        assert journal.entries() == {}


def test_journal_takes_results_learnt_together_in_one_write(tmp_path, monkeypatch):
    path = tmp_path / "j" / "email-1.log"
    writes: list[bytes] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        writes.append(data)
        return real_write(fd, data)

    with SendJournal(path) as journal:
        monkeypatch.setattr(os, "write", counting_write)
        report_all(
            journal,
            [
                DeliveryResult(1, "sent", provider_id="<1@b>"),
                DeliveryResult(2, "permanent", detail="550"),
                DeliveryResult(3, "sent", provider_id="<3@b>"),
            ],
        )
        report_all(journal, [DeliveryResult(4, "transient", detail="451")])  # nothing to journal: no write
        journal(DeliveryResult(5, "sent", provider_id="<5@b>"))  # the journal is a callback too
        monkeypatch.undo()
        assert journal.entries() == {1: "<1@b>", 3: "<3@b>", 5: "<5@b>"}
    assert len(writes) == 2


def test_record_keeps_arm_variant_and_score(engine):
    wave = _wave(engine)
    arms = np.array(["treatment", "treatment", "control", "global_control"], dtype=object)
    variants = np.array(["a", "b", None, None], dtype=object)
    scores = np.array([0.9, 0.5, 0.7, np.nan])
    frame = ContactFrame.of(["C1", "C2", "C3", "C4"], arms, channel="email", variant=variants, score=scores)
    assert ledger.record_contacts(engine, wave.id, frame) == (2, 2)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                ledger.contacts.c.customer_id,
                ledger.contacts.c.arm,
                ledger.contacts.c.variant,
                ledger.contacts.c.score,
                ledger.contacts.c.status,
            ).order_by(ledger.contacts.c.customer_id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("C1", "treatment", "a", 0.9, "pending"),
        ("C2", "treatment", "b", 0.5, "pending"),
        ("C3", "control", None, 0.7, "control"),
        ("C4", "global_control", None, None, "control"),
    ]
    assert ledger.arm_counts(engine, wave.id) == {"treatment": 2, "control": 1, "global_control": 1}


def test_record_contacts_refuses_a_wave_that_does_not_exist(engine):
    """The ledger has no foreign key to waves (migration 0011_17): record_contacts is what refuses."""
    wave = _wave(engine)
    with pytest.raises(ValueError, match=f"no wave {wave.id + 1} to record"):
        ledger.record_contacts(engine, wave.id + 1, _frame(["C1", "C2"], np.array([False, True])))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger.contacts)).scalar_one() == 0
