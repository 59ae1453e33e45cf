"""Conversions import and attribution, historical results import, and the contact-level frame of reports
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from orchestrator.db.tables import ResponseEvent, table_of
from orchestrator.errors import ValidationFailed
from orchestrator.ledger import contacts as ledger
from orchestrator.responses.conversions import attributed, import_conversions
from orchestrator.responses.results_import import import_results
from orchestrator.rules.outcomes import load_outcomes
from orchestrator.success.data import CampaignNotFound, Measure, contact_frame
from orchestrator.targeting.frame import ContactFrame

WAVE_DAY = date(2026, 11, 24)


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _wave(engine, campaign="c", key="2026-11-24"):
    campaign_id = ledger.ensure_campaign(engine, campaign, None)
    wave = ledger.open_wave(engine, campaign_id, key, "0" * 64)
    ids = ["A", "B", "C", "D"]
    arms = np.array(["treatment", "treatment", "control", "control"], dtype=object)
    channels = np.array(["call_center", "email", "call_center", "email"], dtype=object)
    ledger.record_contacts(engine, wave.id, ContactFrame.of(ids, arms, channel=channels), planned_for=WAVE_DAY)
    with engine.begin() as conn:
        conn.execute(ledger.contacts.update().where(ledger.contacts.c.arm == "treatment").values(status="sent"))
        contact_of = dict(conn.execute(sa.select(ledger.contacts.c.customer_id, ledger.contacts.c.id)).all())
    return wave, contact_of


def test_conversions_import_reports_bad_rows_by_line_and_is_idempotent(engine, tmp_path):
    path = _csv(
        tmp_path,
        "conv.csv",
        "customer_id,occurred_at,amount,product\n"
        "A,2026-11-25,100.5,deposit\n"
        'B,2026-11-26T10:30:00+01:00,"1,234.50",\n'
        "C,25.11.2026,10,deposit\n"  # line 4: not an ISO date
        "D,2026-11-27,ten,deposit\n"  # line 5: not a number
        ",2026-11-27,1,deposit\n"  # line 6: no customer
        'E,2026-11-28,"12,5",\n',
    )
    report = import_conversions(engine, path)
    assert (report.rows_read, report.imported, report.duplicates) == (6, 3, 0)
    assert [(p.line, p.message) for p in report.bad_rows] == [
        (4, "occurred_at is not a date or date-time like 2026-11-24 or 2026-11-24T10:30:00"),
        (5, "amount is not a number"),
        (6, "no customer_id"),
    ]
    with engine.connect() as conn:
        amounts = dict(conn.execute(sa.text("select customer_id, amount from conversions")).all())
    assert amounts == {"A": 100.5, "B": 1234.5, "E": 12.5}
    again = import_conversions(engine, path)
    assert (again.imported, again.duplicates) == (0, 3)
    with pytest.raises(ValidationFailed) as error:
        import_conversions(engine, path, strict=True)
    assert [p.line for p in error.value.problems] == [4, 5, 6]


def test_conversions_file_without_the_needed_columns_is_refused(engine, tmp_path):
    with pytest.raises(ValidationFailed, match="needs the columns occurred_at"):
        import_conversions(engine, _csv(tmp_path, "c.csv", "customer_id,amount\nA,1\n"))


def test_attribution_counts_treated_and_control_inside_the_window_only(engine, tmp_path):
    wave, contact_of = _wave(engine)
    import_conversions(
        engine,
        _csv(
            tmp_path,
            "conv.csv",
            "customer_id,occurred_at,amount\n"
            "A,2026-11-23T23:59:00,5\n"  # before the wave: not attributed
            "A,2026-11-25,10\nA,2026-12-01,20\n"
            "C,2026-12-23T23:00:00,7\n"  # control, last day of a 30-day window
            "D,2026-12-24T00:00:00,9\n",  # day 30: outside
        ),
    )
    result = attributed(engine, [(wave.id, WAVE_DAY)], 30)
    assert {cid: (n, amount) for cid, (n, amount, _first) in result.items()} == {
        contact_of["A"]: (2, 30.0),
        contact_of["C"]: (1, 7.0),
    }


def test_contact_frame_joins_outcomes_and_conversions(engine, tmp_path):
    wave, contact_of = _wave(engine)
    import_conversions(
        engine, _csv(tmp_path, "conv.csv", "customer_id,occurred_at,amount\nC,2026-11-30,40\nA,2026-11-27,15\n")
    )
    at = datetime(2026, 11, 25, 12, tzinfo=UTC)
    events = table_of(ResponseEvent)
    with engine.begin() as conn:
        conn.execute(
            events.insert(),
            [
                {
                    "source": "call_center",
                    "event_id": "1",
                    "contact_id": contact_of["A"],
                    "wave_id": wave.id,
                    "customer_id": "A",
                    "channel": "call_center",
                    "type": "interested",
                    "occurred_at": at,
                    "received_at": at,
                },
                {
                    "source": "links",
                    "event_id": "2",
                    "contact_id": contact_of["B"],
                    "wave_id": wave.id,
                    "customer_id": "B",
                    "channel": "email",
                    "type": "open",
                    "occurred_at": at,
                    "received_at": at,
                },
            ],
        )
    frame = contact_frame(
        engine,
        "c",
        load_outcomes(tmp_path),
        Measure(goal="conversion", window_days=30),
        costs={"call_center": 5.0, "email": 0.1},
    )
    rows = frame.set_index("customer_id")
    assert rows.loc["A", "responded"] and not rows.loc["B", "responded"]  # an open is not a response by default
    assert rows.loc["A", "converted"] and rows.loc["C", "converted"] and not rows.loc["D", "converted"]
    assert rows.loc["C", "revenue"] == 40.0 and rows.loc["A", "revenue"] == 15.0
    assert rows.loc["A", "days_to_response"] == pytest.approx(1.5)
    assert list(rows["cost"]) == [5.0, 0.1, 0.0, 0.0]
    assert set(frame["arm"]) == {"treatment", "control"} and set(frame["wave"]) == {"2026-11-24"}
    with pytest.raises(CampaignNotFound, match="did you mean 'c'"):
        contact_frame(engine, "cc", load_outcomes(tmp_path), Measure())


RESULTS = "customer_id,arm,visited,spend\n1,mens,1,10.5\n2,womens,0,0\n3,control,yes,0\n4,mens,no,0\n5,control,0,3\n"


def test_historical_results_become_a_wave_with_arms_and_outcome_events(engine, tmp_path):
    path = _csv(tmp_path, "hillstrom.csv", RESULTS)
    report = import_results(
        engine,
        path,
        campaign="mail-test",
        arm_column="arm",
        control_label="control",
        outcome_columns=["visited", "spend"],
        wave_date=date(2026, 3, 1),
    )
    assert report.customers == 5 and report.arms == {"control": 2, "mens": 2, "womens": 1}
    assert report.outcomes == {"visited": "binary", "spend": "monetary"} and report.events == 2 + 2
    with engine.connect() as conn:
        contacts = conn.execute(
            sa.text("select customer_id, arm, variant, status from contacts order by customer_id")
        ).all()
    assert [tuple(r) for r in contacts] == [
        ("1", "treatment", "mens", "sent"),
        ("2", "treatment", "womens", "sent"),
        ("3", "control", None, "control"),
        ("4", "treatment", "mens", "sent"),
        ("5", "control", None, "control"),
    ]
    again = import_results(
        engine, path, campaign="mail-test", arm_column="arm", control_label="control", outcome_columns=["visited"]
    )
    assert again.already_imported
    frame = contact_frame(engine, "mail-test", load_outcomes(tmp_path), Measure(outcome="visited", revenue="spend"))
    rows = frame.set_index("customer_id")
    assert list(rows["converted"]) == [True, False, True, False, False]
    assert list(rows["revenue"]) == [10.5, 0.0, 0.0, 0.0, 3.0]


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        (RESULTS, {"arm_column": "group"}, "arm column 'group' is not in the header"),
        (
            RESULTS,
            {"outcome_columns": ["visitd"]},
            "outcome column 'visitd' is not in the header, did you mean 'visited'?",
        ),
        (RESULTS.replace("4,mens,no,0", "4,mens,maybe,0"), {}, "hillstrom.csv:5: outcome 'visited' must be 0/1"),
        (RESULTS + "1,womens,0,0\n", {}, "hillstrom.csv:7: customer '1' is listed twice (first on line 2)"),
        (RESULTS, {"control_label": "ctrl"}, "no row has the control label 'ctrl'"),
    ],
)
def test_bad_results_files_import_nothing_and_say_where(engine, tmp_path, text, kwargs, expected):
    path = _csv(tmp_path, "hillstrom.csv", text)
    args = {
        "campaign": "t",
        "arm_column": "arm",
        "control_label": "control",
        "outcome_columns": ["visited", "spend"],
        **kwargs,
    }
    with pytest.raises(ValidationFailed) as error:
        import_results(engine, path, **args)
    assert expected in "\n".join(str(p) for p in error.value.problems).replace(str(tmp_path) + "/", "")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from contacts")).scalar_one() == 0
