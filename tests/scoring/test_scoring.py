"""Scoring models: the estimator, holdout metrics, the registry, scoring the customer table, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from orchestrator.customers.files import read_customer_file
from orchestrator.customers.importer import import_customers
from orchestrator.scoring import registry as model_registry
from orchestrator.scoring.customers import apply_score_rules, score_customers
from orchestrator.scoring.response import (
    FeatureMismatch,
    ResponseModel,
    evaluate,
    fingerprint,
    parse_target,
    split_target,
    train_response_model,
)
from tests.support.scoring import synthetic_customers


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_customers()


@pytest.fixture(scope="module")
def trained(frame):
    return train_response_model(frame, "responded", exclude=["call_seconds"])


# --- the estimator ------------------------------------------------------------------------


def test_model_learns_a_known_signal_with_missing_values(trained, frame):
    model, metrics = trained.model, trained.metrics
    assert model.features_ == ["age", "segment", "member", "noise"]  # no id, target or excluded column
    assert model.feature_kinds_ == {"age": "number", "segment": "text", "member": "boolean", "noise": "number"}
    assert metrics["evaluation"] == "holdout"
    assert metrics["roc_auc"] > 0.75
    assert metrics["pr_auc"] > metrics["base_rate"]
    assert metrics["lift_top_decile"] > 1.5
    assert metrics["holdout_rows"] == 750 and metrics["train_rows"] == 2250 and metrics["rows"] == 3000
    assert abs(metrics["holdout_base_rate"] - metrics["base_rate"]) < 0.01  # stratified
    calibration = metrics["calibration"]
    assert len(calibration) == 10
    assert sum(row["rows"] for row in calibration) == 750
    assert [row["mean_predicted"] for row in calibration] == sorted(row["mean_predicted"] for row in calibration)
    json.dumps(metrics)  # stored as JSON
    assert trained.rows == 3000  # the stored model is refit on every row
    scores = model.score_frame(frame)
    assert scores.shape == (3000,) and np.all((scores > 0) & (scores < 1))
    proba = model.predict_proba(frame)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], scores)


@pytest.mark.slow
def test_estimator_api(frame):
    X, y, dropped = split_target(frame, "responded")
    assert dropped == 0 and "responded" not in X.columns
    model = ResponseModel(exclude=("call_seconds",), estimator="gradient_boosting", random_state=3)
    assert model.get_params() == {
        "features": None,
        "exclude": ("call_seconds",),
        "estimator": "gradient_boosting",
        "random_state": 3,
    }
    assert not hasattr(model, "features_")
    with pytest.raises(NotFittedError):
        model.score_frame(X)
    assert model.fit(X, y) is model
    assert list(model.classes_) == [0, 1]
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "pipeline_")
    assert evaluate(ResponseModel(exclude=("call_seconds",), estimator="gradient_boosting"), X, y)["roc_auc"] > 0.7
    with pytest.raises(
        ValueError,
        match=(
            "The 'estimator' parameter of ResponseModel must be one of logistic, gradient_boosting. "
            "Got 'forest' instead"
        ),
    ):
        ResponseModel(estimator="forest").fit(X, y)


def test_leakage_column_only_when_not_excluded(frame):
    leaky = train_response_model(frame, "responded")
    assert "call_seconds" in leaky.model.features_
    assert leaky.metrics["roc_auc"] > 0.99  # why --exclude exists


def test_explicit_features_and_bad_names(frame):
    X, y, _ = split_target(frame, "responded")
    model = ResponseModel(features=["age", "segment"]).fit(X, y)
    assert model.features_ == ["age", "segment"]
    with pytest.raises(
        ValueError, match="cannot exclude 'call_second': there is no such column, did you mean 'call_seconds'"
    ):
        ResponseModel(exclude=["call_second"]).fit(X, y)
    with pytest.raises(ValueError, match="no feature column 'sgment', did you mean 'segment'"):
        ResponseModel(features=["sgment"]).fit(X, y)
    with pytest.raises(ValueError, match="'customer_id' cannot be a feature"):
        ResponseModel(features=["customer_id"]).fit(X, y)
    with pytest.raises(ValueError, match="no target column 'respnded', did you mean 'responded'"):
        split_target(frame, "respnded")


def test_dates_and_empty_columns_are_ignored(frame):
    extra = frame.assign(joined=pd.Timestamp("2024-01-01"), empty=np.nan)
    model = train_response_model(extra, "responded", exclude=["call_seconds"]).model
    assert "joined" not in model.features_ and "empty" not in model.features_
    assert set(model.ignored_) == {"joined", "empty"}


def test_unseen_categories_and_missing_values_score(trained):
    model = trained.model
    new = pd.DataFrame(
        {"age": [np.nan, 30.0], "segment": ["platinum", None], "member": [True, None], "noise": [0.0, np.nan]}
    )
    scores = model.score_frame(new)
    assert np.all(np.isfinite(scores))


def test_scoring_refuses_missing_or_changed_features(trained, frame):
    model = trained.model
    with pytest.raises(FeatureMismatch, match="feature 'segment' is missing"):
        model.score_frame(frame.drop(columns=["segment"]))
    with pytest.raises(FeatureMismatch, match="feature 'age' was a number at training, is text now"):
        model.score_frame(frame.assign(age=frame["age"].astype(str)))
    with pytest.raises(FeatureMismatch, match="feature 'member' was a yes/no value at training, is a number now"):
        model.score_frame(frame.assign(member=frame["member"].astype(int)))
    # A column that is empty in this batch has no kind to clash with.
    assert np.all(np.isfinite(model.score_frame(frame.head(5).assign(segment=None))))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["yes", "No", " YES "], [1, 0, 1]),
        (["true", "false", "True"], [1, 0, 1]),
        ([1, 0, 1], [1, 0, 1]),
        ([1.0, 0.0], [1, 0]),
        (["1", "0"], [1, 0]),
        ([True, False], [1, 0]),
    ],
)
def test_parse_target(values, expected):
    assert parse_target(values).tolist() == expected


def test_target_errors(frame):
    with pytest.raises(
        ValueError, match=r"target 'y' must be binary .* found 3 value\(s\): 'a' \(2\), 'b' \(1\), 'c' \(1\)"
    ):
        parse_target(["a", "b", "a", "c"], "y")
    X, _y, _ = split_target(frame, "responded")
    with pytest.raises(ValueError, match=r"a single value, 0 \(no\), in all 3000 rows"):
        ResponseModel().fit(X, pd.Series(["no"] * len(X), name="responded"))
    few = np.array(["no"] * len(X), dtype=object)
    few[:5] = "yes"
    with pytest.raises(ValueError, match="5 positive and 2995 negative row.*at least 20 of each"):
        ResponseModel().fit(X, few)


def test_rows_without_target_are_left_out(frame):
    partial = frame.assign(responded=frame["responded"].where(frame.index % 10 != 0, None))
    result = train_response_model(partial, "responded", exclude=["call_seconds"])
    assert result.metrics["rows_without_target"] == 300
    assert result.rows == 2700


def test_fingerprint_is_stable_and_sensitive(frame):
    assert fingerprint(frame) == fingerprint(frame.copy())
    assert fingerprint(frame) == fingerprint(frame.set_index("customer_id", drop=False))
    changed = frame.copy()
    changed.loc[17, "age"] = 99.0
    assert fingerprint(changed) != fingerprint(frame)
    assert fingerprint(frame.rename(columns={"age": "years"})) != fingerprint(frame)


# --- apply_score_rules --------------------------------------------------------------------


def test_apply_score_rules():
    ids = np.array(["d", "b", "a", "c", "e", "f"], dtype=object)
    scores = np.array([0.5, 0.9, 0.5, 0.1, np.nan, 0.5])
    kept, kept_scores = apply_score_rules(ids, scores)
    assert kept.tolist() == ["b", "a", "d", "f", "c"]  # best first, ties by id, no score left out
    assert kept_scores.tolist() == [0.9, 0.5, 0.5, 0.5, 0.1]
    assert apply_score_rules(ids, scores, min_score=0.5)[0].tolist() == ["b", "a", "d", "f"]
    assert apply_score_rules(ids, scores, top=2)[0].tolist() == ["b", "a"]
    assert apply_score_rules(ids, scores, top=2, min_score=0.95)[0].tolist() == []
    assert apply_score_rules(ids, scores, top_percent=40)[0].tolist() == ["b", "a"]  # 40 % of 5, rounded up
    assert apply_score_rules(ids, scores, top_percent=100)[0].tolist() == ["b", "a", "d", "f", "c"]
    assert apply_score_rules(ids[:0], scores[:0], top=3)[0].tolist() == []
    with pytest.raises(ValueError, match="give top or top_percent, not both"):
        apply_score_rules(ids, scores, top=1, top_percent=10)
    with pytest.raises(ValueError, match="top_percent must be more than 0"):
        apply_score_rules(ids, scores, top_percent=0)


# --- registry -----------------------------------------------------------------------------


def _register(engine, settings, result, name="response"):
    return model_registry.register(
        engine, settings, name, result.model, result.metrics, result.fingerprint, result.target, result.rows
    )


def test_registry_round_trip(engine, settings, trained, frame):
    first = _register(engine, settings, trained)
    second = _register(engine, settings, trained)
    other = _register(engine, settings, trained, name="winback")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert second.artefact == "models/response/v2.joblib"
    assert (settings.paths.data_dir / second.artefact).is_file()
    assert second.features == [
        {"name": "age", "kind": "number"},
        {"name": "segment", "kind": "text"},
        {"name": "member", "kind": "boolean"},
        {"name": "noise", "kind": "number"},
    ]
    assert second.metrics["roc_auc"] == pytest.approx(trained.metrics["roc_auc"])
    assert second.training_rows == 3000 and second.target == "responded" and second.stage == "champion"
    assert second.data_fingerprint == fingerprint(frame)

    latest = model_registry.get(engine, "response")
    assert latest.version == 2
    assert model_registry.get(engine, "response", 1).id == first.id
    loaded = model_registry.load(settings, latest)
    np.testing.assert_allclose(loaded.score_frame(frame), trained.model.score_frame(frame))
    assert [(r.name, r.version) for r in model_registry.list_models(engine)] == [
        ("response", 1),
        ("response", 2),
        ("winback", 1),
    ]
    challenger = model_registry.register(
        engine, settings, "response", trained.model, {}, "0" * 64, "responded", 10, stage="challenger"
    )
    assert challenger.version == 3 and model_registry.get(engine, "response").version == 2

    with pytest.raises(
        model_registry.ModelNotFound,
        match=r"there is no model 'respnse', did you mean 'response'\? \(registered: response, winback\)",
    ):
        model_registry.get(engine, "respnse")
    with pytest.raises(
        model_registry.ModelNotFound,
        match=r"model 'response' has no version 7; versions: 1 \(champion\), 2 \(champion\), 3 \(challenger\)",
    ):
        model_registry.get(engine, "response", 7)
    with pytest.raises(ValueError, match="model name 'Bad Name' is not allowed"):
        _register(engine, settings, trained, name="Bad Name")
    (settings.paths.data_dir / first.artefact).unlink()
    with pytest.raises(model_registry.ModelNotFound, match="the file of model 'response' version 1 is missing"):
        model_registry.load(settings, first)


def test_get_without_any_model(engine):
    with pytest.raises(model_registry.ModelNotFound, match="no model is registered yet"):
        model_registry.get(engine, "response")


# --- scoring the customer table -----------------------------------------------------------


def _import(engine, frame, tmp_path, name="customers.csv"):
    path = tmp_path / name
    frame.drop(columns=["responded", "call_seconds"]).to_csv(path, index=False)
    return import_customers(engine, path)


def test_score_customers_from_the_customer_table(engine, settings, trained, frame, tmp_path):
    report = _import(engine, frame, tmp_path)
    assert report.columns["member"] == "boolean"
    _register(engine, settings, trained)
    expected = dict(zip(frame["customer_id"], trained.model.score_frame(frame), strict=True))

    calls = []
    ids, scores = score_customers(engine, settings, "response", chunk_size=700, progress=calls.append)
    assert calls == [700, 700, 700, 700, 200]  # keyset chunks, one query each
    assert sorted(ids) == sorted(frame["customer_id"])
    np.testing.assert_allclose(scores, [expected[i] for i in ids], rtol=1e-9)

    wanted = ["c00010", "c02999", "nobody", "c00001"]
    ids, scores = score_customers(engine, settings, "response", wanted, version=1, chunk_size=2)
    assert sorted(ids) == ["c00001", "c00010", "c02999"]  # an id not in the table is left out
    np.testing.assert_allclose(scores, [expected[i] for i in ids], rtol=1e-9)

    kept, kept_scores = apply_score_rules(*score_customers(engine, settings, "response"), top_percent=10)
    assert len(kept) == 300 and kept_scores[0] == max(expected.values())


def test_score_customers_refuses_a_table_that_does_not_fit(engine, settings, frame, tmp_path):
    _import(engine, frame, tmp_path)
    as_text = train_response_model(frame.assign(age=frame["age"].astype(str)), "responded", exclude=["call_seconds"])
    _register(engine, settings, as_text, name="text-age")
    with pytest.raises(
        FeatureMismatch,
        match=(
            "model 'text-age' cannot score customer table 'customers': "
            "feature 'age' was text at training, is a number now"
        ),
    ):
        score_customers(engine, settings, "text-age")
    extra = train_response_model(frame, "responded")  # learnt from call_seconds, not in the table
    _register(engine, settings, extra, name="leaky")
    with pytest.raises(FeatureMismatch, match="feature 'call_seconds' is missing"):
        score_customers(engine, settings, "leaky", ["c00001"])


# --- command line -------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_train_list_show(cli, engine, frame, tmp_path):
    data = tmp_path / "outcomes.csv"
    frame.rename(columns={"call_seconds": "call.seconds"}).to_csv(data, index=False)
    result = cli(
        "train", "--name", "response", "--data", str(data), "--target", "responded", "--exclude", "call.seconds"
    )
    assert result.exit_code == 0, result.output
    assert "registered model response version 1" in result.output
    assert "ROC AUC (holdout)" in result.output and "Calibration on the holdout" in result.output
    record = model_registry.get(engine, "response")
    assert "call_seconds" not in [f["name"] for f in record.features]  # the file's spelling was accepted
    assert record.metrics["roc_auc"] > 0.75

    frame.drop(columns=["call_seconds"]).to_csv(tmp_path / "customers.csv", index=False)
    import_customers(engine, tmp_path / "customers.csv")  # outcomes kept in the customer table
    result = cli(
        "train",
        "--name",
        "response",
        "--data",
        "table:customers",
        "--target",
        "responded",
        "--estimator",
        "gradient_boosting",
    )
    assert result.exit_code == 0, result.output
    assert "registered model response version 2" in result.output
    assert model_registry.get(engine, "response").metrics["estimator"] == "gradient_boosting"

    result = cli("list")
    assert result.exit_code == 0, result.output
    assert result.output.count("response") >= 2

    result = cli("show", "response", "--version", "1")
    assert result.exit_code == 0, result.output
    assert "Model response version 1" in result.output and "segment" in result.output

    result = cli("show", "respose")
    assert result.exit_code == 1
    assert "did you mean 'response'" in result.output

    result = cli("train", "--name", "x", "--data", str(data), "--target", "segment")
    assert result.exit_code == 1
    assert "target 'segment' must be binary" in result.output


def test_cli_train_from_a_missing_file(cli, tmp_path):
    result = cli("train", "--name", "x", "--data", str(tmp_path / "nope.csv"), "--target", "y")
    assert result.exit_code == 1
    assert "file not found" in result.output


# --- bank marketing -----------------------------------------------------------------------


@pytest.mark.slow
def test_bank_marketing_holdout_auc(bank_csv):
    source = read_customer_file(bank_csv, delimiter=None, header=None, id_column=None)
    bank = source.table.rename_columns(source.names()).to_pandas()
    assert "emp_var_rate" in bank.columns
    result = train_response_model(bank, "y", exclude=["duration"])
    assert "duration" not in result.model.features_
    assert result.rows == 41188
    assert result.metrics["roc_auc"] >= 0.77
    assert result.metrics["lift_top_decile"] > 3


# --- the estimator chosen on the holdout; gradient boosting on native categories ---------------


def _interaction_data(n: int = 4000, seed: int = 5) -> pd.DataFrame:
    """A response only where a category and a number meet: trees find it, a linear model cannot."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "segment": rng.choice([f"s{i}" for i in range(30)], n),
            "age": rng.integers(18, 80, n).astype(float),
        }
    )
    frame.loc[rng.random(n) < 0.05, "segment"] = None
    hot = frame["segment"].isin(["s1", "s2", "s3"]) & (frame["age"] > 50)
    frame["y"] = (rng.random(n) < np.where(hot, 0.6, 0.05)).astype(int)
    return frame


def test_auto_keeps_the_estimator_with_the_better_holdout_auc_and_says_by_how_much():
    from orchestrator.cli.models import estimator_choice_line
    from orchestrator.scoring.response import train_response_model

    result = train_response_model(_interaction_data(), "y", estimator="auto")
    aucs = result.metrics["estimator_choice"]["roc_auc"]
    assert set(aucs) == {"logistic", "gradient_boosting"}
    assert result.model.estimator == max(aucs, key=aucs.get) == "gradient_boosting"
    assert result.metrics["roc_auc"] == aucs["gradient_boosting"] > aucs["logistic"]
    line = estimator_choice_line(aucs)
    assert line.startswith(f"estimator: gradient_boosting won on the holdout, ROC AUC {aucs['gradient_boosting']:.3f}")
    assert f"better by {aucs['gradient_boosting'] - aucs['logistic']:.3f}" in line


def test_gradient_boosting_splits_on_categories_natively_and_scores_unseen_ones():
    from sklearn.preprocessing import OneHotEncoder

    from orchestrator.scoring.response import ResponseModel

    frame = _interaction_data()
    model = ResponseModel(estimator="gradient_boosting").fit(frame.drop(columns="y"), frame["y"])
    steps = [type(step).__name__ for _, step, _ in model.pipeline_.named_steps["columns"].transformers_]
    assert "OneHotEncoder" not in steps and not isinstance(model.pipeline_[0], OneHotEncoder)
    assert list(model.pipeline_.named_steps["classifier"].is_categorical_) == [False, True]
    new = pd.DataFrame({"segment": ["s1", "never-seen", None], "age": [60.0, 60.0, np.nan]})
    scores = model.score_frame(new)
    assert np.isfinite(scores).all() and scores[0] > scores[1]
