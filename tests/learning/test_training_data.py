"""Point-in-time snapshots and training sets (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from orchestrator.customers.importer import import_customers
from orchestrator.demo.synthetic import write_csv
from orchestrator.learning.training_data import features_of, split_by_time, training_frame
from orchestrator.ledger import contacts as ledger
from orchestrator.ledger.snapshots import ensure_snapshot, is_late, read_snapshot, snapshot_path, write_snapshot
from orchestrator.responses.conversions import import_conversions
from orchestrator.targeting.frame import ContactFrame


@pytest.fixture
def base(engine, tmp_path):
    import_customers(engine, write_csv(tmp_path / "customers.csv", 400, seed=2))
    return engine


def _wave(engine, settings, key: str, ids: list[str], *, campaign: str = "sim") -> int:
    wave = ledger.open_wave(engine, ledger.ensure_campaign(engine, campaign, None), key, "0" * 64)
    arms = np.array(["treatment" if i % 2 else "control" for i in range(len(ids))], dtype=object)
    ledger.record_contacts(
        engine, wave.id, ContactFrame.of(ids, arms, channel="email"), planned_for=date.fromisoformat(key)
    )
    write_snapshot(engine, settings, wave.id)
    return wave.id


def _ids(engine, n: int, offset: int = 0) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("select customer_id from customers order by customer_id")).scalars())[
            offset : offset + n
        ]


def test_snapshot_keeps_what_was_known_at_selection(base, settings):
    ids = _ids(base, 100)
    wave_id = _wave(base, settings, "2026-01-05", ids)
    with base.begin() as conn:
        conn.execute(sa.text("update customers set revenue_12m = -1"))
    snapshot = read_snapshot(settings, wave_id)
    assert sorted(snapshot["customer_id"]) == sorted(ids) and (snapshot["revenue_12m"] >= 0).all()
    assert not is_late(settings, wave_id)
    snapshot_path(settings, wave_id).unlink()
    ensure_snapshot(base, settings, wave_id)  # a run that died before writing it: taken now, flagged late
    assert is_late(settings, wave_id) and (read_snapshot(settings, wave_id)["revenue_12m"] == -1).all()


def test_training_frame_joins_snapshots_with_outcomes_and_leaves_open_windows_out(base, settings, tmp_path):
    first = _ids(base, 100)
    second = _ids(base, 100, offset=100)
    _wave(base, settings, "2026-01-05", first)
    _wave(base, settings, "2026-02-02", second)
    buyers = first[1::4] + second[::5]
    path = tmp_path / "conversions.csv"
    path.write_text(
        "customer_id,occurred_at,amount\n"
        + "".join(f"{cid},{'2026-01-10' if cid in first else '2026-02-10'},10\n" for cid in buyers)
    )
    import_conversions(base, path)

    result = training_frame(base, settings, ["sim"], as_of=date(2026, 3, 31))
    frame = result.frame
    assert len(frame) == 200 and not result.notes
    assert set(frame.loc[frame["outcome"] == 1, "customer_id"]) == set(buyers)
    assert frame["treatment"].sum() == 100
    assert {"age", "segment", "revenue_12m"} <= set(features_of(frame)) and "outcome" not in features_of(frame)
    train, validation = split_by_time(frame, 0.5)
    assert set(train["wave"]) == {"2026-01-05"} and set(validation["wave"]) == {"2026-02-02"}

    still_open = training_frame(base, settings, ["sim"], as_of=date(2026, 2, 20))
    assert set(still_open.frame["wave"]) == {"2026-01-05"}
    assert any("window is still open" in note for note in still_open.notes)


def test_a_single_wave_has_nothing_later_to_validate_on():
    frame = pd.DataFrame({"wave_date": pd.to_datetime(["2026-01-05"] * 3), "x": [1, 2, 3]})
    train, validation = split_by_time(frame)
    assert validation is None and len(train) == 3
