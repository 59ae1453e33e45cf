"""The plan of a cycle, pinned: random cycles planned as the code at 5399f88 planned them.

Each case is a cycle of one to three campaigns (e-mail, calls, visits by territory) over overlapping
customers, drawn from a seed: scores rounded to few values (many ties in value and in gain), channels
whose cost exceeds their value (all values negative), zero and binding capacities, reps with no
visits left, a score cut's reserve, exploration. The digest covers every column of every plan's
contacts, the counts, the funnel, the reasons of the customers not recorded and the passed-over ids.
``EXPECTED`` was computed by the planning code before its speed-ups of issue 17 (commit 5399f88):
a change of any allocation, count, control group or reason fails here. Change ``EXPECTED`` only
with a change of the plan that is meant and tested on its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from orchestrator.rules.loader import load_campaign
from orchestrator.targeting.capacity import load_capacity
from orchestrator.targeting.planning import ELIGIBLE, TERRITORY, plan_cycle
from orchestrator.targeting.selection import Candidates

TERRITORIES = ["T1", "T2", "T3", "T4"]

CAMPAIGN = """\
name: {name}
priority: {priority}
control: {{share: {share}, salt: {name}}}
channels:
  field_force:
    template: retention
    name_columns: [first_name, last_name]
    address_columns: [region, territory]
    territory_column: territory
    value: {ff_value}
    cost: 40
  call_center:
    template: retention
    phone_column: phone
    value: 60
    cost: {call_cost}
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
    value: 8
    cost: 0.5
allocation:
  overflow: {overflow}
{learning}"""


def _cycle(tmp_path: Path, seed: int):
    rng = np.random.default_rng(seed)
    n_campaigns = 1 + seed % 3
    specs, candidates = [], []
    for k in range(n_campaigns):
        text = CAMPAIGN.format(
            name=f"c{k}",
            priority=int(rng.integers(0, 2)),
            share=[0.0, 0.1, 0.3][int(rng.integers(0, 3))],
            ff_value=[160, 30][int(rng.integers(0, 2))],  # 30: visits never cover their cost
            call_cost=[6, 6, 100][int(rng.integers(0, 3))],  # 100: calls never either
            overflow=["fallback", "fallback", "wait"][int(rng.integers(0, 3))],
            learning="learning: {explore: 0.2}\n" if rng.random() < 0.3 else "",
        )
        path = tmp_path / f"c{k}.yaml"
        path.write_text(text)
        specs.append(load_campaign(path, columns=None))
        n = int(rng.integers(50, 400))
        picked = np.sort(rng.choice(600, n, replace=False))
        ids = [f"C{i:04d}" for i in picked]
        scores = np.round(rng.random(n), 1)  # ten values: ties everywhere
        flags = object if seed % 2 else np.int64  # as the selection query's frame gives them, or as objects
        extra = {
            ELIGIBLE + "field_force": (rng.random(n) < 0.4).astype(np.int64).astype(flags),
            ELIGIBLE + "call_center": (rng.random(n) < 0.6).astype(np.int64).astype(flags),
            ELIGIBLE + "email": (rng.random(n) < 0.8).astype(np.int64).astype(flags),
            TERRITORY: np.array([*TERRITORIES, None], dtype=object)[rng.integers(0, 5, n)],
        }
        cand = Candidates(ids, scores, [], extra=extra)
        if rng.random() < 0.3:  # a score cut: the last customers are its reserve
            cut = int(rng.integers(0, n))
            cand = Candidates(
                ids[:cut],
                scores[:cut],
                [],
                extra={key: v[:cut] for key, v in extra.items()},
                reserve=Candidates(ids[cut:], scores[cut:], [], extra={key: v[cut:] for key, v in extra.items()}),
            )
        candidates.append(cand)
    calls, emails, visits = (int(rng.integers(0, 60)), int(rng.integers(0, 200)), int(rng.integers(0, 4)))
    (tmp_path / "capacity.yaml").write_text(
        f"call_center:\n  tasks_per_day: {calls}\n"
        + (f"email:\n  per_day: {emails}\n" if seed % 4 else "")  # every fourth case: e-mail unlimited
        + f"field_force:\n  visits_per_rep_per_day: {visits}\n  reps: reps.csv\n"
    )
    (tmp_path / "reps.csv").write_text(
        "rep_id,territory,name,visits_per_day\n"
        + "".join(
            f"R{t}{r},{t},R{t}{r},{'0' if t == 'T4' else ''}\n" for t in TERRITORIES[:-1] + ["T4"] for r in (1, 2)
        )
    )
    return specs, candidates, load_capacity(tmp_path)


def _digest(plans) -> str:
    h = hashlib.sha256()

    def add(label: str, values) -> None:
        h.update(label.encode() + b"\x00" + repr(values).encode() + b"\x01")

    for plan in plans:
        contacts = plan.contacts
        for f in fields(contacts):
            column = getattr(contacts, f.name)
            add(f.name, [None if v is None else (round(v, 9) if isinstance(v, float) else v) for v in column.tolist()])
        add("counts", (plan.channel_counts, plan.waiting, plan.explored, sorted(plan.lost_to.items())))
        add("funnel", [(s.stage, s.label, s.remaining, s.removed) for s in plan.selection.funnel])
        add("passed_over", plan.passed_over.tolist())
        nt = plan.not_treated
        add("not_treated", (nt.customer_id.tolist(), nt.reason.tolist(), nt.detail.tolist()))
    return h.hexdigest()[:16]


def plan_digest(tmp_path: Path, seed: int) -> str:
    specs, candidates, capacity = _cycle(tmp_path, seed)
    used: dict[tuple[str, str | None], int] = {("call_center", None): 3} if seed % 5 == 0 else {}
    taken = {"C0003": "earlier", "C0010": "c0"} if seed % 6 == 1 else None
    plans = plan_cycle(specs, candidates, capacity, used, taken=taken, with_funnel=True, wave_key="2026-11-24")
    return _digest(plans)


EXPECTED = {
    0: "f1baeb95fe7cc035",
    1: "5dabb23412b3494f",
    2: "48d1246e0712027e",
    3: "a3c3a5ebb1b6187a",
    4: "6219120c7453e2ec",
    5: "65e56f65df58bbe1",
    6: "fbaebf8561ffa208",
    7: "00b756521872630f",
    8: "a84ac7ea01d551ba",
    9: "fd4be48b209dfc1c",
    10: "06d42bb058c36ba5",
    11: "c97b168665391195",
    12: "a8189e53d260725a",
    13: "9f2b9f78bef20f84",
    14: "426eb1358831a1ab",
    15: "f780dbbddd4ca637",
    16: "e15d4cfae5e05205",
    17: "c891c2c1e3ee0c36",
    18: "29dc94520b455072",
    19: "04cfff657714091a",
    20: "40f8d443268faeda",
    21: "827cb0f7dc6b95d2",
    22: "75cfa1341f335d97",
    23: "63e295b69ee0371c",
}


@pytest.mark.parametrize("seed", range(24))
def test_the_plan_is_the_plan_before_the_speed_ups(tmp_path, seed):
    assert plan_digest(tmp_path, seed) == EXPECTED[seed]
