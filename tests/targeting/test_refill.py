"""A cycle of campaigns with ``top:`` cuts fills what the cuts asked for: customers of a cut lost to a
campaign that wins the arbitration are replaced by the next best of the loser's reserve, so channel
capacity the cut was meant for is not left unused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator.rules.loader import load_campaign
from orchestrator.targeting.capacity import load_capacity
from orchestrator.targeting.planning import ELIGIBLE, plan_cycle
from orchestrator.targeting.selection import Candidates

N = 1000
CALLS = 100

CALL_RULES = """\
name: calls
control: {share: 0.1}
channels:
  call_center:
    template: retention
    phone_column: phone
    value: 60
    cost: 6
"""
MAIL_RULES = """\
name: mails
priority: 5
control: {share: 0.1}
channels:
  email:
    template: winback
    sender: "Acme Bank <offers@acme.example>"
    value: 10
    cost: 1
"""


def _spec(tmp_path: Path, name: str, text: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_campaign(path, columns=None)


def _cut(channel: str, order: np.ndarray, top: int, *, reserve: bool = True) -> Candidates:
    """Customers ``C<order>`` scored best first, the first ``top`` kept and the rest as the reserve."""
    ids = [f"C{i:04d}" for i in order]
    scores = np.linspace(1.0, 0.0, len(ids))
    extra = {ELIGIBLE + channel: np.ones(len(ids), dtype=np.int64)}

    def part(rows: slice) -> Candidates:
        return Candidates(ids[rows], scores[rows], [], extra={k: v[rows] for k, v in extra.items()})

    kept = part(slice(0, top))
    if reserve:
        kept.reserve = part(slice(top, None))
    return kept


@pytest.fixture
def cycle(tmp_path):
    (tmp_path / "capacity.yaml").write_text(f"call_center:\n  tasks_per_day: {CALLS}\n")
    calls = _spec(tmp_path, "calls", CALL_RULES)
    mails = _spec(tmp_path, "mails", MAIL_RULES)
    call_order = np.random.default_rng(3).permutation(N)
    # the e-mail campaign (priority 5) wants the call campaign's best 60 customers, then others far down its list
    mail_order = np.concatenate([call_order[:60], call_order[400:]])
    return calls, mails, call_order, mail_order, load_capacity(tmp_path)


def _treated_calls(plan) -> int:
    return int(np.count_nonzero(plan.contacts.treated & (plan.contacts.channel == "call_center")))


def test_customers_lost_to_arbitration_are_replaced_by_the_next_best(cycle):
    calls, mails, call_order, mail_order, capacity = cycle
    cut = int(CALLS / 0.9) + 2  # enough for the call center after the 10% control group
    call_plan, mail_plan = plan_cycle(
        [calls, mails],
        [_cut("call_center", call_order, cut), _cut("email", mail_order, 300)],
        capacity,
        {},
        with_funnel=True,
    )
    [step] = [s for s in call_plan.selection.funnel if s.stage == "arbitration"]
    assert step.label == "lost to mails (60); 60 next best after the score cut took their place"
    assert step.remaining == cut  # the cut is full again
    kept = set(call_plan.contacts.customer_id[call_plan.contacts.arm != "global_control"].tolist())
    best_60 = {f"C{i:04d}" for i in call_order[:60]}
    assert not kept & best_60  # they went to the e-mail campaign
    assert best_60 <= set(mail_plan.contacts.customer_id.tolist())
    # their places went to the next 60 of the call campaign's ranking, in order
    assert kept <= {f"C{i:04d}" for i in call_order[60 : cut + 60]}
    assert kept & {f"C{i:04d}" for i in call_order[cut : cut + 60]}
    assert _treated_calls(call_plan) == CALLS  # the call center is used in full
    assert call_plan.lost_to == {"mails": 60}


def test_without_a_reserve_the_losses_stay_unfilled(cycle):
    calls, mails, call_order, mail_order, capacity = cycle
    cut = int(CALLS / 0.9) + 2
    call_plan, _mail_plan = plan_cycle(
        [calls, mails],
        [_cut("call_center", call_order, cut, reserve=False), _cut("email", mail_order, 300)],
        capacity,
        {},
    )
    kept = set(call_plan.contacts.customer_id[call_plan.contacts.arm != "global_control"].tolist())
    assert kept <= {f"C{i:04d}" for i in call_order[60:cut]}
    assert _treated_calls(call_plan) < CALLS


def test_refilled_customers_can_be_lost_again_and_are_replaced_again(cycle):
    """The e-mail campaign also wants customers right after the call campaign's cut: the call campaign
    loses its first refill too and takes the next ones; every loss is counted once."""
    calls, mails, call_order, _mail_order, capacity = cycle
    cut = int(CALLS / 0.9) + 2
    wanted_by_mail = np.concatenate([call_order[:60], call_order[cut : cut + 40]])
    rest = call_order[400:]
    call_plan, _mail_plan = plan_cycle(
        [calls, mails],
        [_cut("call_center", call_order, cut), _cut("email", np.concatenate([wanted_by_mail, rest]), 300)],
        capacity,
        {},
    )
    kept = set(call_plan.contacts.customer_id[call_plan.contacts.arm != "global_control"].tolist())
    assert not kept & {f"C{i:04d}" for i in wanted_by_mail}
    assert kept <= {f"C{i:04d}" for i in call_order[: cut + 100]}
    assert _treated_calls(call_plan) == CALLS
    assert call_plan.lost_to == {"mails": 100}
