"""The selection query reads the scoring model's features once: the score chunks score those columns
and never read the customer table again, with the same candidates, scores, reserve and score-cut
reasons as chunks that read each customer's features by id; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import sqlalchemy as sa

from orchestrator.db.engine import connect
from orchestrator.scoring import registry as model_registry
from orchestrator.scoring.customers import apply_score_rules, score_order
from orchestrator.scoring.response import train_response_model
from orchestrator.wave import stages
from tests.support.targeting import WAVE, write_rules


def _register_model(engine, settings) -> None:
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text("select customer_id, revenue_12m, recency_days, segment from customers"), conn)
    logit = -1.0 + 1.5 * np.log(frame.revenue_12m / 500) - frame.recency_days / 100
    frame["responded"] = (np.random.default_rng(7).random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    trained = train_response_model(frame.drop(columns=["customer_id"]), "responded")
    model_registry.register(
        engine, settings, "response", trained.model, trained.metrics, trained.fingerprint, trained.target, trained.rows
    )


def test_the_scores_read_no_features_again_and_match_the_chunks_by_id(policy_settings, customers):
    settings = policy_settings.model_copy(
        update={"execution": policy_settings.execution.model_copy(update={"chunk_size": 97})}
    )
    _register_model(customers, settings)
    rules = write_rules(settings, "scored", scores={"model": "response", "top": 150, "min_score": 0.3})
    prepared = stages.prepare(settings, rules, WAVE)
    filtered = stages.filter_candidates(settings, prepared)
    assert filtered.features is not None
    assert list(filtered.features.columns) == ["revenue_12m", "recency_days", "segment"]
    assert len(filtered.features) == len(filtered.ids) > 150

    engine = connect(settings)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        once = stages.score_candidates(settings, prepared, filtered)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "revenue_12m" in s], statements  # no second read of the features
    by_id = stages.score_candidates(settings, prepared, dataclasses.replace(filtered, features=None))

    assert once.features is None
    assert once.ids == by_id.ids and len(once.ids) > 0
    np.testing.assert_array_equal(once.scores, by_id.scores)
    assert once.extra.keys() == by_id.extra.keys()
    for key in once.extra:
        assert once.extra[key].tolist() == by_id.extra[key].tolist()
    assert (once.reserve is None) == (by_id.reserve is None)
    if once.reserve is not None:
        assert once.reserve.ids == by_id.reserve.ids
    assert sorted(once.below_min.tolist()) == sorted(by_id.below_min.tolist())
    assert len(once.below_min) > 0
    assert once.funnel == by_id.funnel


def test_score_order_is_apply_score_rules_as_positions():
    rng = np.random.default_rng(3)
    ids = np.array([f"C{i:03d}" for i in rng.permutation(200)], dtype=object)
    scores = np.round(rng.random(200), 1)  # many ties: broken by id
    scores[[3, 50, 77]] = np.nan
    for cut in [{}, {"min_score": 0.5}, {"top": 20}, {"top": 20, "min_score": 0.95}, {"top_percent": 30}]:
        order, n_ordered, n_kept = score_order(ids, scores, **cut)
        kept_ids, kept_scores = apply_score_rules(ids, scores, **cut)
        assert ids[order[:n_kept]].tolist() == kept_ids.tolist()
        np.testing.assert_array_equal(scores[order[:n_kept]], kept_scores)
        passing = apply_score_rules(ids, scores, min_score=cut.get("min_score"))[0]
        assert ids[order[:n_ordered]].tolist() == passing.tolist()
        assert len(order) == 197
