"""The learning benchmark's baselines (bench/learning_bench.py): random targeting with the engine's
contact counts, the oracle that fills the budgets by true net value; and one small run of the loop."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.learning_bench import main, oracle_targeting, random_targeting
from bench.worlds import CHANNELS, WORLDS


def _truth(effects: dict[str, list[float]]) -> pd.DataFrame:
    n = len(effects["email"])
    frame = pd.DataFrame({"base": np.full(n, 0.05)}, index=[f"C{i}" for i in range(n)])
    for channel in CHANNELS:
        frame[f"effect_{channel}"] = effects[channel]
    return frame


def test_the_oracle_fills_budgets_by_true_net_value_one_channel_per_customer():
    truth = _truth(
        {
            "email": [0.5, 0.2, 0.001, 0.3],  # 0.001 x 8 - 0.05 < 0: never worth an e-mail
            "call_center": [0.5, 0.0, 0.0, 0.2],
            "field_force": [0.0, 0.0, 0.0, 0.0],
        }
    )
    ids = truth.index.to_numpy(dtype=object)
    eligible = {c: np.ones(4, dtype=bool) for c in CHANNELS}
    territory = np.array(["T01"] * 4, dtype=object)
    budgets = {"email": 2, "call_center": 1, "field_force:T01": 1}
    who, which = oracle_targeting(budgets, eligible, ids, territory, truth)
    # C0's call (0.5 x 60 - 6 = 24) beats everything; C3's call would be next but the one call is gone
    assert dict(zip(who.tolist(), which.tolist(), strict=True)) == {"C0": "call_center", "C3": "email", "C1": "email"}


def test_random_targeting_uses_the_counts_among_the_eligible_only():
    n = 1000
    ids = np.array([f"C{i}" for i in range(n)], dtype=object)
    territory = np.where(np.arange(n) % 2 == 0, "T01", "T02").astype(object)
    eligible = {
        "email": np.ones(n, dtype=bool),
        "call_center": np.arange(n) < 300,
        "field_force": np.arange(n) % 3 == 0,
    }
    counts = {"email": 200, "call_center": 100, "field_force:T01": 20}
    who, which = random_targeting(counts, eligible, ids, territory, np.random.default_rng(1))
    assert len(set(who.tolist())) == len(who) == 320
    index = np.array([int(c[1:]) for c in who])
    assert (index[which == "call_center"] < 300).all() and (which == "call_center").sum() == 100
    visits = index[which == "field_force"]
    assert len(visits) == 20 and (visits % 3 == 0).all() and (visits % 2 == 0).all()


def test_a_small_run_measures_every_wave_within_the_budgets(capsys):
    name = next(iter(WORLDS))
    small = ["--customers", "8000", "--emails", "2000", "--calls", "400", "--visits", "90", "--control-share", "0.3"]
    [results] = main(["--worlds", name, "--waves", "2", *small]).values()
    assert [r.wave for r in results] == [1, 2]
    assert results[0].targeting == "all (no model)" and results[1].targeting.startswith("model v1")
    for r in results:
        assert r.contacts["email"] <= 2000 and r.contacts["call_center"] <= 400 and r.contacts["field_force"] <= 90
        assert r.oracle_contacts["email"] <= 2000 and r.oracle > 0 and r.random > 0
    assert f'"world": "{name}"' in capsys.readouterr().out
