"""Uplift models: a known heterogeneous effect is found, the scoring interface, errors, the metrics by hand."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from orchestrator.customers.importer import import_customers
from orchestrator.scoring import registry as model_registry
from orchestrator.scoring.customers import apply_score_rules, score_customers
from orchestrator.scoring.response import FeatureMismatch, ResponseModel, table_kinds
from orchestrator.scoring.uplift import (
    APPROACHES,
    UpliftModel,
    evaluate_uplift,
    parse_treatment,
    qini_auc_score,
    train_uplift_model,
    uplift_auc_score,
    uplift_by_decile,
)

AFFECTED_EFFECT = 0.30  # treated customers under 40 in segment gold respond this much more often
HARMED_EFFECT = -0.10  # treated customers of 60 or more in segment bronze respond this much less often


def customers(n: int, seed: int, treated_share: float = 0.5) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """``(X, treatment, y, true_effect)``: the response rate follows income and membership for everyone;
    the contact helps only young gold customers and puts old bronze customers off."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    segment = rng.choice(["gold", "silver", "bronze"], n, p=[0.3, 0.4, 0.3]).astype(object)
    income = rng.normal(0, 1, n)
    member = rng.random(n) < 0.5
    treatment = (rng.random(n) < treated_share).astype(np.int8)
    base = 1 / (1 + np.exp(-(-1.4 + 2.0 * income + 0.5 * member)))
    effect = np.where((age < 40) & (segment == "gold"), AFFECTED_EFFECT, 0.0)
    effect = effect + np.where((age >= 60) & (segment == "bronze"), HARMED_EFFECT, 0.0)
    y = (rng.random(n) < np.clip(base + treatment * effect, 0, 1)).astype(np.int8)
    age[rng.random(n) < 0.03] = np.nan
    X = pd.DataFrame(
        {
            "customer_id": [f"c{i:06d}" for i in range(n)],
            "age": age,
            "segment": segment,
            "income": income,
            "member": member,
        }
    )
    return X, treatment, y, effect


@pytest.fixture(scope="module")
def train():
    return customers(12_000, seed=1)


@pytest.fixture(scope="module")
def validation():
    return customers(8_000, seed=2)


@pytest.fixture(scope="module")
def fitted(train):
    X, t, y, _ = train
    return UpliftModel().fit(X, t, y)


# --- the learned uplift finds the customers the contact affects ----------------------------


@pytest.mark.parametrize("approach", APPROACHES)
@pytest.mark.parametrize("treated_share", [0.5, 0.8])
def test_uplift_ranks_the_affected_customers_first(approach, treated_share, validation):
    X, t, y, _ = customers(12_000, seed=1, treated_share=treated_share)
    X_val, t_val, y_val, effect_val = validation
    metrics = evaluate_uplift({"approach": approach}, X, t, y, validation=(X_val, t_val, y_val))

    random_qini = qini_auc_score(y_val, np.random.default_rng(0).random(len(y_val)), t_val)
    response = ResponseModel().fit(X.loc[t == 1], y[t == 1])  # who responds when contacted
    response_qini = qini_auc_score(y_val, response.score_frame(X_val), t_val)
    assert abs(random_qini) < 0.03
    assert metrics["qini_auc"] > 0.05
    assert metrics["qini_auc"] > response_qini + 0.02
    assert metrics["auuc"] > 0.04

    deciles = metrics["uplift_by_decile"]
    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert sum(d["treated"] + d["control"] for d in deciles) == metrics["n_validation"] == 8000
    uplifts = [d["uplift"] for d in deciles]
    assert uplifts[0] == max(uplifts) and uplifts[0] > 0.2  # the affected customers, about 10 % of all, first
    assert np.mean(uplifts[:3]) > np.mean(uplifts[-3:]) + 0.1
    assert np.corrcoef(np.arange(10), uplifts)[0, 1] < -0.5  # decreasing overall

    model = UpliftModel(approach=approach).fit(X, t, y)
    scores = model.score_frame(X_val)
    affected, harmed = effect_val > 0, effect_val < 0
    assert scores[affected].mean() > 0.1  # logistic models only approximate the true 0.30 of an interaction
    assert scores[affected].mean() > scores[~affected].mean() + 0.1
    assert scores[harmed].mean() < scores[effect_val == 0].mean()  # the contact puts them off
    assert scores.min() < 0  # uplift can be negative


@pytest.mark.slow
def test_gradient_boosting_learns_the_interaction(train, validation):
    X, t, y, _ = train
    X_val, t_val, y_val, _ = validation
    metrics = evaluate_uplift(
        lambda: UpliftModel(estimator="gradient_boosting", approach="class_transformation"),
        X,
        t,
        y,
        validation=(X_val, t_val, y_val),
    )
    assert metrics["estimator"] == "gradient_boosting" and metrics["approach"] == "class_transformation"
    assert metrics["qini_auc"] > 0.05
    assert metrics["uplift_by_decile"][0]["uplift"] > 0.2


def test_evaluation_reports_counts_and_observed_uplift(train, validation):
    X, t, y, _ = train
    X_val, t_val, y_val, _ = validation
    metrics = evaluate_uplift(UpliftModel(), X, t, y, validation=(X_val, t_val, y_val))
    assert metrics["n_train"] == 12_000 and metrics["n_validation"] == 8_000
    assert metrics["train_treated"] + metrics["train_control"] == 12_000
    assert metrics["validation_treated"] == int(t_val.sum())
    observed = y_val[t_val == 1].mean() - y_val[t_val == 0].mean()
    assert metrics["validation_uplift"] == pytest.approx(observed)
    assert abs(metrics["mean_predicted_uplift"] - observed) < 0.03


# --- training ------------------------------------------------------------------------------


def as_frame(data, arms: bool = False) -> pd.DataFrame:
    X, t, y, _ = data
    frame = X.copy()
    frame["arm"] = np.where(t == 1, "treatment", "control") if arms else t
    frame["bought"] = np.where(y == 1, "yes", "no")
    return frame


def test_train_with_a_stratified_holdout(train):
    frame = as_frame(train, arms=True)
    frame.loc[:9, "bought"] = None  # no outcome yet
    frame.loc[10:14, "arm"] = None  # not in a wave
    steps = []
    result = train_uplift_model(frame, "bought", "arm", progress=steps.append)
    assert steps == [1, 1]
    assert result.model.features_ == ["age", "segment", "income", "member"]  # neither target nor treatment
    assert result.rows == 12_000 - 15 and result.metrics["refit_rows"] == result.rows
    assert result.metrics["rows_left_out"] == 15
    assert result.metrics["evaluation"] == "holdout"
    assert result.metrics["n_validation"] == pytest.approx(0.25 * result.rows, abs=2)
    t = (frame["arm"] == "treatment").to_numpy()
    # stratified by treatment and outcome
    assert result.metrics["validation_treated"] / result.metrics["n_validation"] == pytest.approx(
        t[15:].mean(), abs=0.002
    )
    assert result.metrics["qini_auc"] > 0.05
    assert result.target == "bought" and result.treatment == "arm" and len(result.fingerprint) == 64


def test_train_with_later_waves_as_validation(train, validation):
    result = train_uplift_model(
        as_frame(train),
        "bought",
        "arm",
        approach="class_transformation",
        exclude=["member"],
        validation_frame=as_frame(validation),
    )
    assert result.metrics["evaluation"] == "validation"
    assert result.metrics["n_train"] == 12_000 and result.metrics["n_validation"] == 8_000
    assert result.rows == 20_000  # refit on the training and the validation waves
    assert result.model.features_ == ["age", "segment", "income"]
    assert result.metrics["qini_auc"] > 0.05
    same = train_uplift_model(as_frame(train), "bought", "arm", validation_frame=as_frame(validation))
    assert same.fingerprint == result.fingerprint
    assert same.fingerprint != train_uplift_model(as_frame(train), "bought", "arm").fingerprint


def test_train_refuses_bad_columns(train):
    frame = as_frame(train)
    with pytest.raises(ValueError, match="no treatment column 'armm'.*did you mean 'arm'"):
        train_uplift_model(frame, "bought", "armm")
    with pytest.raises(ValueError, match="'arm' cannot be a feature"):
        train_uplift_model(frame, "bought", "arm", features=["age", "arm"])
    with pytest.raises(ValueError, match="both the target and the treatment"):
        train_uplift_model(frame, "bought", "bought")
    with pytest.raises(ValueError, match="there is no target column"):
        train_uplift_model(frame, "baught", "arm")
    frame = frame.assign(arm=np.where(frame["arm"] == 1, "treatment", "maybe"))
    with pytest.raises(ValueError, match="'arm' must be binary"):
        train_uplift_model(frame, "bought", "arm")


# --- the scoring interface (as ResponseModel) ------------------------------------------------


def test_scoring_interface_matches_response_model(fitted, validation):
    X_val = validation[0]
    assert fitted.features_ == ["age", "segment", "income", "member"]
    assert fitted.feature_kinds_ == {"age": "number", "segment": "text", "income": "number", "member": "boolean"}
    assert fitted.ignored_ == {}
    scores = fitted.score_frame(X_val)
    assert scores.dtype == np.float64 and scores.shape == (len(X_val),)
    assert np.all((scores >= -1) & (scores <= 1))
    np.testing.assert_array_equal(fitted.predict_uplift(X_val), scores)

    extra = X_val[["member", "income", "segment", "age"]].assign(email="x@example.org", score=1.0)
    extra.index = extra.index + 1000
    np.testing.assert_array_equal(fitted.score_frame(extra), scores)  # column order, index and extras do not matter
    np.testing.assert_array_equal(fitted.score_frame(extra, check=False), scores)
    assert fitted.score_frame(X_val.iloc[:0]).shape == (0,)

    # what score_customers does: the table's kinds once, then chunks unchecked
    fitted.check_kinds(
        table_kinds(
            {"customer_id": "text", "age": "integer", "segment": "text", "income": "number", "member": "boolean"}
        )
    )


def test_scoring_refuses_missing_or_changed_features(fitted, validation):
    X_val = validation[0]
    with pytest.raises(FeatureMismatch, match="feature 'age' was a number at training, is text now"):
        fitted.score_frame(X_val.assign(age=X_val["age"].astype(str)))
    with pytest.raises(FeatureMismatch, match="feature 'segment' is missing"):
        fitted.score_frame(X_val.drop(columns=["segment"]))
    with pytest.raises(FeatureMismatch, match="feature 'segment' is missing, did you mean 'segmnt'"):
        fitted.score_frame(X_val.rename(columns={"segment": "segmnt"}), check=False)
    with pytest.raises(TypeError, match="frame must be a pandas DataFrame"):
        fitted.score_frame(X_val.to_numpy())
    with pytest.raises(FeatureMismatch, match="feature 'member' was a yes/no value at training, is text now"):
        fitted.check_kinds({"age": "number", "segment": "text", "income": "number", "member": "text"})


def test_registered_uplift_model_scores_the_customer_table(engine, settings, tmp_path):
    X, t, y, _ = customers(3000, seed=1)
    result = train_uplift_model(X.assign(arm=t, bought=y), "bought", "arm")
    X.to_csv(tmp_path / "customers.csv", index=False)
    import_customers(engine, tmp_path / "customers.csv")
    r = result
    model_registry.register(
        engine, settings, "uplift", r.model, r.metrics, r.fingerprint, r.target, r.rows, kind="uplift"
    )
    ids, scores = score_customers(engine, settings, "uplift", chunk_size=700)
    expected = dict(zip(X["customer_id"], r.model.score_frame(X), strict=True))
    np.testing.assert_allclose(scores, [expected[i] for i in ids], rtol=1e-9)
    kept, kept_scores = apply_score_rules(ids, scores, min_score=0.0)  # a predicted positive effect
    assert 0 < len(kept) < len(ids) and kept_scores.min() >= 0 and scores.min() < 0


@pytest.mark.parametrize("approach", APPROACHES)
def test_pickle_and_joblib_round_trip(approach, train, validation, tmp_path):
    X, t, y, _ = train
    model = UpliftModel(approach=approach).fit(X, t, y)
    scores = model.score_frame(validation[0])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).score_frame(validation[0]), scores)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.score_frame(validation[0]), scores)
    assert loaded.features_ == model.features_ and loaded.feature_kinds_ == model.feature_kinds_


def test_estimator_api(train):
    model = UpliftModel(exclude=("member",), approach="class_transformation", random_state=3)
    assert model.get_params() == {
        "features": None,
        "exclude": ("member",),
        "estimator": "logistic",
        "approach": "class_transformation",
        "random_state": 3,
    }
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError, match="fit\\(X, treatment, y\\)"):
        model.score_frame(train[0])
    X, t, y, _ = train
    assert model.fit(X, t, y) is model
    assert model.features_ == ["age", "segment", "income"]
    with pytest.raises(
        ValueError,
        match=(
            "The 'approach' parameter of UpliftModel must be one of two_model, class_transformation. "
            "Got 'meta' instead."
        ),
    ):
        UpliftModel(approach="meta").fit(X, t, y)
    with pytest.raises(ValueError, match="The 'estimator' parameter"):
        UpliftModel(estimator="forest").fit(X, t, y)


def test_treatment_values():
    np.testing.assert_array_equal(
        parse_treatment(["treatment", "Control", "treated", "yes", 0, True]), [1, 0, 1, 1, 0, 1]
    )
    with pytest.raises(ValueError, match="'treatment' must be binary"):
        parse_treatment(["treatment", "holdout"])


# --- errors --------------------------------------------------------------------------------


NEEDS_BOTH = "an uplift model needs both treated and control customers with outcomes"


def test_errors_without_both_groups_or_outcomes(train):
    X, t, y, _ = train
    with pytest.raises(ValueError, match=f"{NEEDS_BOTH}.*0 treated and 12000 control"):
        UpliftModel().fit(X, np.zeros_like(t), y)
    with pytest.raises(ValueError, match=f"{NEEDS_BOTH}.*12000 treated and 0 control"):
        UpliftModel().fit(X, np.ones_like(t), y)
    with pytest.raises(ValueError, match=f"{NEEDS_BOTH}.*0 responder\\(s\\) and 12000 non-responder"):
        UpliftModel().fit(X, t, np.zeros_like(y))
    with pytest.raises(ValueError, match="X has 12000 rows, treatment 11999 and y 12000"):
        UpliftModel().fit(X, t[1:], y)


def test_errors_with_too_few_customers(train):
    X, t, y, _ = train
    control = np.flatnonzero(t == 0)
    keep = np.concatenate([np.flatnonzero(t == 1)[:500], control[:40]])
    with pytest.raises(ValueError, match="too few customers.*500 treated and 40 control; at least 50 of each"):
        UpliftModel().fit(X.iloc[keep], t[keep], y[keep])
    # enough customers, too few control responders for a response model per group
    keep = np.concatenate(
        [
            np.flatnonzero(t == 1)[:500],
            np.flatnonzero((t == 0) & (y == 0))[:80],
            np.flatnonzero((t == 0) & (y == 1))[:5],
        ]
    )
    with pytest.raises(ValueError, match="the control customers have 5 responder\\(s\\) and 80 non-responder"):
        UpliftModel().fit(X.iloc[keep], t[keep], y[keep])
    UpliftModel(approach="class_transformation").fit(X.iloc[keep], t[keep], y[keep])  # z has both classes


def test_evaluation_needs_both_groups_in_the_validation_data(train, validation):
    X, t, y, _ = train
    X_val, t_val, y_val, _ = validation
    with pytest.raises(ValueError, match=f"{NEEDS_BOTH}.*the validation data has 8000 treated and 0 control"):
        evaluate_uplift(UpliftModel(), X, t, y, validation=(X_val, np.ones_like(t_val), y_val))
    with pytest.raises(TypeError, match="must return an UpliftModel"):
        evaluate_uplift(ResponseModel, X, t, y, validation=(X_val, t_val, y_val))


# --- the metrics, by hand -------------------------------------------------------------------

# Six customers, best predicted uplift first: treated responder, control non-responder, treated
# non-responder, control responder, treated responder, control non-responder.
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
TREATED = [1, 0, 1, 0, 1, 0]
OUTCOME = [1, 0, 0, 1, 1, 0]


def test_qini_coefficient_by_hand():
    # Qini curve Q(k) = Y_T(k) - Y_C(k) N_T(k) / N_C(k) at k = 0..6: 0, 1, 1, 1, 0, 0.5, 1;
    # area (trapezoids) 4, the diagonal to (6, 1) 3.
    # Perfect order: the two treated responders, then the three non-responders, the control
    # responder last: (0, 0), (2, 2), (5, 2), (6, 1); area 9.5.
    # Qini coefficient = (4 - 3) / (9.5 - 3) = 2 / 13.
    assert qini_auc_score(OUTCOME, SCORES, TREATED) == pytest.approx(2 / 13)
    reverse = [-s for s in SCORES]
    # Worst first: Q(k) at k = 0..6: 0, 0, 1, 0.5, 0, 1/3, 1; area 7/3. (7/3 - 3) / 6.5 = -4/39.
    assert qini_auc_score(OUTCOME, reverse, TREATED) == pytest.approx(-4 / 39)


def test_auuc_by_hand():
    # Uplift curve U(k) = (Y_T/N_T - Y_C/N_C) k at k = 0..6: 0, 1, 2, 1.5, 0, 5/6, 2;
    # area 6 1/3, the diagonal to (6, 2) 6.
    # Perfect curve (sklift: treated responders, then control non-responders, then treated
    # non-responders, control responders last): (0, 0), (2, 2), (4, 4), (5, 10/3), (6, 2); area 14 1/3.
    # AUUC = (6 1/3 - 6) / (14 1/3 - 6) = 1 / 25.
    assert uplift_auc_score(OUTCOME, SCORES, TREATED) == pytest.approx(1 / 25)


def test_uplift_by_decile_by_hand():
    # 20 customers, pairs of one treated and one control customer per decile, best first.
    treated_outcome = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    control_outcome = [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    y = [v for pair in zip(treated_outcome, control_outcome, strict=True) for v in pair]
    t = [1, 0] * 10
    scores = np.linspace(1, 0, 20)
    deciles = uplift_by_decile(y, scores, t)
    assert [d["uplift"] for d in deciles] == [1, 1, 0, 0, 0, 1, 0, -1, 0, 0]
    assert deciles[0] == {
        "decile": 1,
        "treated": 1,
        "control": 1,
        "treated_rate": 1.0,
        "control_rate": 0.0,
        "uplift": 1.0,
    }
    # a decile without control customers has no control rate and no uplift
    t_first = [1, 1] + t[2:]
    first = uplift_by_decile(y, scores, t_first)[0]
    assert first == {"decile": 1, "treated": 2, "control": 0, "treated_rate": 0.5, "control_rate": None, "uplift": None}


def test_metric_input_errors():
    with pytest.raises(ValueError, match="need both treated and control customers; got 6 treated and 0 control"):
        qini_auc_score(OUTCOME, SCORES, [1] * 6)
    with pytest.raises(ValueError, match="all 6 outcomes are 0"):
        uplift_auc_score([0] * 6, SCORES, TREATED)
    with pytest.raises(ValueError, match="uplift is missing \\(NaN\\) for 1 row"):
        qini_auc_score(OUTCOME, [np.nan, *SCORES[1:]], TREATED)
    with pytest.raises(ValueError, match="6 row\\(s\\) cannot be split into 10 groups"):
        uplift_by_decile(OUTCOME, SCORES, TREATED)
