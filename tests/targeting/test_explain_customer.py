"""Why (not) contacted: one customer's path through the funnel (``campaign explain --customer``) and the
ledger's reason code for every selected customer not treated, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from orchestrator.ledger import reasons as ledger_reasons
from orchestrator.ledger.erasure import erase
from orchestrator.scoring import registry as model_registry
from orchestrator.scoring.response import train_response_model
from orchestrator.wave import stages
from orchestrator.wave.explain import explain_customer
from tests.support.targeting import (
    AUDIENCE_SQL,
    POLICY_SQL,
    WAVE,
    in_global_control,
    ledger_rows,
    sql_ids,
    write_rules,
)


@pytest.fixture
def settings(policy_settings):
    """The tests here run under the test contact policy (``tests.support.targeting.POLICY``)."""
    return policy_settings


def _scored_campaign(settings, customers):
    """A response model in the registry and a campaign taking the top 20% by its score; the model's
    scores of the customers (computed here, independently of the selection)."""
    with customers.connect() as conn:
        frame = pd.read_sql(
            sa.text("select customer_id, revenue_12m, recency_days from customers order by customer_id"), conn
        )
    logit = -1.0 + 1.5 * np.log(frame.revenue_12m / 500) - frame.recency_days / 100
    frame["responded"] = (np.random.default_rng(5).random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    trained = train_response_model(frame, "responded")
    model_registry.register(
        customers,
        settings,
        "response",
        trained.model,
        trained.metrics,
        trained.fingerprint,
        trained.target,
        trained.rows,
    )
    rules = write_rules(settings, "scored", scores={"model": "response", "top_percent": 20}, control={"share": 0.2})
    frame["score"] = trained.model.score_frame(frame)
    return rules, frame.set_index("customer_id")


def _record(settings, rules):
    """Select, plan and record the wave as a real run does (no sending)."""
    prepared = stages.prepare(settings, rules, WAVE)
    plan = stages.plan(settings, [prepared], [stages.select_candidates(settings, prepared)])[0]
    wave = stages.open_wave(settings, prepared)
    stages.record(settings, wave, plan, prepared.as_of)
    return wave


def test_every_selected_customer_not_treated_has_a_reason_and_explain_follows_one_customer(settings, customers):
    rules, scores = _scored_campaign(settings, customers)
    eligible = [cid for cid in sql_ids(customers, AUDIENCE_SQL + POLICY_SQL) if not in_global_control(cid)]
    ranked = scores.loc[eligible].reset_index().sort_values(["score", "customer_id"], ascending=[False, True])
    n_best = math.ceil(len(eligible) * 0.2)
    best, below = ranked.customer_id[:n_best].tolist(), ranked.customer_id[n_best:].tolist()
    no_consent = sql_ids(customers, AUDIENCE_SQL + ["not (consent_email = :yes)"])
    assert len(below) > 100 and no_consent

    wave = _record(settings, rules)

    # the ledger: treated and control recorded; every other selected customer has a reason, column-wise
    rows = ledger_rows(customers, wave.id)
    recorded = {r.customer_id: r.arm for r in rows}
    assert {cid for cid, arm in recorded.items() if arm != "global_control"} == set(best)
    assert ledger_reasons.counts(settings, wave.id) == {"below_score_cut": len(below)}
    kept = ledger_reasons.read(settings, wave.id)
    assert kept is not None and set(kept.customer_id) == set(below) and set(kept.detail) == {None}
    assert ledger_reasons.reasons_path(settings, wave.id).stat().st_mode & 0o777 == 0o600

    treated = next(cid for cid in best if recorded[cid] == "treatment")
    control = next(cid for cid in best if recorded[cid] == "control")
    paths = {
        cid: explain_customer(settings, [rules], cid, WAVE)[0] for cid in (treated, control, below[0], no_consent[0])
    }

    path = paths[treated]
    assert (path.outcome, path.reason) == ("treated", "treated on email")
    assert all(step.passed for step in path.steps if step.stage in ("audience", "policy"))
    assert [s.check for s in path.steps if s.stage == "ledger"] == [
        f"wave {WAVE} (recorded): recorded as treatment on email"
    ]

    path = paths[control]
    assert path.outcome == "control"
    assert [(s.stage, s.passed) for s in path.steps if s.stage == "control"] == [("control", False)]
    assert "recorded as control" in next(s.check for s in path.steps if s.stage == "ledger")

    path = paths[below[0]]
    assert (path.outcome, path.reason) == ("not treated", "below_score_cut")
    assert [(s.stage, s.check, s.passed) for s in path.steps if s.stage == "score"] == [
        ("score", "below_score_cut", False)
    ]
    assert next(s.note for s in path.steps if s.stage == "ledger") == "reason below_score_cut"

    path = paths[no_consent[0]]
    assert path.outcome == "not selected"
    assert path.reason == "policy: consent (consent_email)"
    stopped = [s for s in path.steps if s.passed is False]
    assert [(s.stage, s.check) for s in stopped] == [("policy", "consent (consent_email)")]
    assert all(s.passed for s in path.steps[: path.steps.index(stopped[0])])  # every audience condition held

    # erasure reaches the reasons file like every snapshot: the person's row is gone, the others stay
    erased = erase(customers, settings, [below[1]], actor="test")
    left = ledger_reasons.read(settings, wave.id)
    assert left is not None and set(left.customer_id) == set(below) - {below[1]}
    assert erased.counts["snapshot_rows_removed"] >= 1


def test_explain_customer_on_the_command_line(settings, customers, cli):
    rules = write_rules(settings, "plain")
    no_consent = sql_ids(customers, AUDIENCE_SQL + ["not (consent_email = :yes)"])[0]
    result = cli("explain", rules, "--wave", WAVE, "--customer", no_consent, "--json")
    assert result.exit_code == 0, result.output
    [path] = json.loads(result.output)
    assert (path["outcome"], path["reason"]) == ("not selected", "policy: consent (consent_email)")
    assert path["steps"][-1]["check"] == f"wave {WAVE}"  # the ledger: not run yet

    result = cli("explain", rules, "--wave", WAVE, "--customer", "no-such-customer")
    assert result.exit_code == 0 and "not in the customer table" in result.output
