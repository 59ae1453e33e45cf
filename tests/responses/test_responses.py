"""Recording responses (``orchestrator.responses.ingest``) on SQLite and PostgreSQL, without the web layer."""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from orchestrator.delivery.tasks import outcome_signer, task_id
from orchestrator.responses.ingest import EventIn, ingest, read_unsubscribe_token, unsubscribe
from orchestrator.rules.outcomes import load_outcomes
from orchestrator.templates.links import ExpiredLinkToken, PreviewLinkToken, today_number
from tests.support.responses import make_ledger, stored, suppressed

WHEN = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def run(engine, settings, events, source="call_center", allowed=("call_center",)):
    return ingest(
        engine,
        source,
        events,
        settings=settings,
        outcomes=load_outcomes(settings.paths.rules_dir),
        allowed_channels=allowed,
    )


def test_batch_stored_once_and_linked_to_its_contact(engine, settings):
    book = make_ledger(engine, settings)
    events = [
        EventIn(event_id="a1", type="sale", occurred_at=WHEN, outcome_ref=book.ref("c1"), value=120.5),
        EventIn(event_id="a2", type="no_answer", occurred_at=WHEN + timedelta(hours=1), outcome_ref=book.ref("c2")),
    ]
    results = run(engine, settings, events)
    assert [(r.event_id, r.status, r.reason) for r in results] == [("a1", "accepted", None), ("a2", "accepted", None)]
    rows = stored(engine)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("call_center", "a1", book.ids["c1"], "sale", 120.5),
        ("call_center", "a2", book.ids["c2"], "no_answer", None),
    ]
    assert rows[0][5] == WHEN  # stored as UTC, read back aware

    # The same batch again, and a repeat inside one batch: acknowledged, stored once.
    again = run(engine, settings, [*events, events[0]])
    assert [r.status for r in again] == ["duplicate", "duplicate", "duplicate"]
    repeat = EventIn(event_id="a3", type="busy", occurred_at=WHEN, outcome_ref=book.ref("c3"))
    assert [r.status for r in run(engine, settings, [repeat, repeat])] == ["accepted", "duplicate"]
    assert len(stored(engine)) == 3


def test_bad_items_rejected_while_the_rest_is_stored(engine, settings):
    book = make_ledger(engine, settings)
    good = book.ref("c1")
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    signer = outcome_signer(settings)
    unknown = signer.sign(task_id(book.wave_id, 999_999)).decode()
    other_wave = signer.sign(task_id(book.wave_id + 1, book.ids["c2"])).decode()
    events = [
        EventIn(event_id="ok", type="interested", occurred_at=WHEN, outcome_ref=good),
        EventIn(event_id="tampered", type="sale", occurred_at=WHEN, outcome_ref=tampered),
        EventIn(event_id="unknown", type="sale", occurred_at=WHEN, outcome_ref=unknown),
        EventIn(event_id="wrong-wave", type="sale", occurred_at=WHEN, outcome_ref=other_wave),
        EventIn(event_id="typo", type="intrested", occurred_at=WHEN, outcome_ref=book.ref("c2")),
        EventIn(event_id="email-contact", type="sale", occurred_at=WHEN, outcome_ref=book.ref("e1")),
        EventIn(event_id="ok2", type="sale", occurred_at=WHEN, outcome_ref=book.ref("c3")),
    ]
    results = {r.event_id: r for r in run(engine, settings, events)}
    assert [r.status for r in results.values()] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert results["tampered"].reason.startswith("bad reference")
    assert results["unknown"].reason.startswith("unknown contact")
    assert results["wrong-wave"].reason.startswith("unknown contact")
    assert "did you mean 'interested'" in results["typo"].reason.lower()
    assert results["email-contact"].reason.startswith("contact of another channel")
    for r in results.values():  # no customer ids in reasons
        assert r.reason is None or not any(c in r.reason for c in ("c1", "c2", "e1"))
    assert [r[1] for r in stored(engine)] == ["ok", "ok2"]


def test_email_events_by_tracking_token_suppress(engine, settings):
    book = make_ledger(engine, settings)
    events = [
        EventIn(event_id="m1", type="unsubscribe", occurred_at=WHEN, tracking_token=book.tracking("e1")),
        EventIn(event_id="m2", type="complaint", occurred_at=WHEN, tracking_token=book.tracking("e2")),
        EventIn(event_id="m3", type="hard_bounce", occurred_at=WHEN, tracking_token=book.tracking("e3")),
        EventIn(event_id="m4", type="click", occurred_at=WHEN, tracking_token=book.tracking("e1")),
        EventIn(event_id="m5", type="open", occurred_at=WHEN, tracking_token=book.tracking("e1")[:-3]),
    ]
    results = run(engine, settings, events, source="esp", allowed=("email",))
    assert [r.status for r in results] == ["accepted"] * 4 + ["rejected"]
    assert suppressed(engine) == [
        ("e1", "email", "unsubscribed"),
        ("e2", "email", "complaint"),
        ("e3", "email", "hard_bounce"),
    ]
    assert [r.status for r in run(engine, settings, events[:3], source="esp", allowed=("email",))] == ["duplicate"] * 3
    assert len(suppressed(engine)) == 3


def test_unsubscribe_link_suppresses_and_records_once(engine, settings):
    book = make_ledger(engine, settings)
    token = book.unsubscribe_token("e2")
    assert read_unsubscribe_token(settings, token) == (book.wave_id, book.ids["e2"])
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert struct.pack(">QQ", book.wave_id, book.ids["e2"]) not in raw  # opaque: the ids are encrypted
    first = unsubscribe(engine, settings, token)
    assert first.suppressed and first.event.status == "accepted"
    second = unsubscribe(engine, settings, token)
    assert not second.suppressed and second.event.status == "duplicate"
    assert suppressed(engine) == [("e2", "email", "unsubscribed")]
    assert [(r[0], r[2], r[3]) for r in stored(engine)] == [("links", book.ids["e2"], "unsubscribe")]
    with pytest.raises(PreviewLinkToken):  # a preview's link changes nothing
        unsubscribe(engine, settings, book.unsubscribe_token("e3", preview=True))
    with pytest.raises(ExpiredLinkToken):  # older than links.unsubscribe_days (90 by default)
        unsubscribe(engine, settings, book.unsubscribe_token("e3", issued=today_number() - 91))
    assert unsubscribe(engine, settings, book.unsubscribe_token("e3", issued=today_number() - 89)).suppressed
    assert suppressed(engine) == [("e2", "email", "unsubscribed"), ("e3", "email", "unsubscribed")]
    with pytest.raises(ValueError, match="not valid"):
        unsubscribe(engine, settings, token[:-2])
    with pytest.raises(ValueError, match="not valid"):  # a tracking token is no unsubscribe token
        unsubscribe(engine, settings, book.tracking("e1"))


def test_event_model_checks_shape():
    with pytest.raises(ValidationError, match="timezone"):
        EventIn(event_id="x", type="sale", occurred_at=datetime(2026, 3, 2), outcome_ref="r")
    with pytest.raises(ValidationError, match="exactly one"):
        EventIn(event_id="x", type="sale", occurred_at=WHEN)
    with pytest.raises(ValidationError, match="exactly one"):
        EventIn(event_id="x", type="sale", occurred_at=WHEN, outcome_ref="r", tracking_token="t")
    with pytest.raises(ValidationError, match="500"):
        EventIn(event_id="x", type="sale", occurred_at=WHEN, outcome_ref="r", detail="x" * 501)
    with pytest.raises(ValidationError):
        EventIn(event_id="", type="sale", occurred_at=WHEN, outcome_ref="r")


def test_large_batch_with_repeats(engine, settings):
    """Large batches take the bulk path (PostgreSQL: COPY + INSERT ... SELECT); repeats still count once."""
    book = make_ledger(engine, settings)
    refs = [book.ref(c) for c in ("c1", "c2", "c3")]
    first = [
        EventIn(event_id=f"n{i}", type="reached", occurred_at=WHEN, outcome_ref=refs[i % 3], value=float(i))
        for i in range(300)
    ]
    assert {r.status for r in run(engine, settings, first)} == {"accepted"}
    second = first[150:] + [
        EventIn(event_id=f"n{i}", type="busy", occurred_at=WHEN, outcome_ref=refs[0]) for i in range(300, 450)
    ]
    results = run(engine, settings, second)
    assert [r.status for r in results] == ["duplicate"] * 150 + ["accepted"] * 150
    rows = stored(engine)
    assert len(rows) == 450 and rows[7][4] == 7.0 and rows[0][5] == WHEN
