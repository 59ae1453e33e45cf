"""Uplift models: who responds *because* of the contact, learned from past waves' treated and control customers.

Uplift is ``P(success | treated, x) - P(success | control, x)`` per customer. It is learned from
the customers of past waves: the treated ones and the random control group held out of them
(``orchestrator.targeting.control``), with their outcomes. The engine can then select the customers with a
positive predicted effect (``apply_score_rules(..., min_score=0)``) or the top N by uplift.

``UpliftModel`` follows the scikit-learn estimator API and has the same scoring interface as
``scoring.ResponseModel`` (``features_``, ``feature_kinds_``, ``ignored_``, ``score_frame``,
``check_kinds``), so ``score_customers`` scores the customer table with it unchanged; its
``score_frame`` gives the predicted uplift, which can be negative (customers the contact puts off).
It composes ``ResponseModel``s, and with them their feature choice and preprocessing:

- ``approach="two_model"``: one response model on the treated customers, one on the control
  customers; uplift = the difference of their probabilities. Any treated share works.
- ``approach="class_transformation"`` (Jaskowski and Jaroszewicz 2012): one response model on
  ``z = y*t + (1-y)*(1-t)`` (a treated responder or a control non-responder); with a 50/50 split
  ``uplift = 2 P(z=1) - 1``. With any other split the rows are weighted so that treated and
  control weigh the same (treated ``0.5/p``, control ``0.5/(1-p)``, ``p`` the treated share),
  which makes the identity hold again; the weighted fit is a second fit of the response model's
  pipeline with ``sample_weight`` (the first one chooses the features).

Training needs both groups with outcomes: at least ``MIN_GROUP_ROWS`` treated and as many
control customers, and enough responders and non-responders for each response model
(``scoring.MIN_CLASS_ROWS``); otherwise a ``ValueError`` says what was found.

**Metrics** come from scikit-uplift (``sklift.metrics``), wrapped here so that the inputs are
checked with clear messages and the deprecation warning sklift 0.5 triggers on scikit-learn >= 1.8
(``sklearn.utils.extmath.stable_cumsum``) is silenced:

- ``qini_auc_score``: the Qini coefficient (Radcliffe 2007): the area between the Qini curve
  ``Q(k) = Y_T(k) - Y_C(k) N_T(k) / N_C(k)`` (customers sorted by predicted uplift, best first;
  ``Y`` responders and ``N`` customers among the first ``k``, ``T`` treated, ``C`` control) and
  the diagonal to its end, divided by the same area of the perfect ordering (treated responders
  first, control responders last). 0: no better than random; 1: perfect.
- ``uplift_auc_score`` (AUUC): the same normalisation of the uplift curve
  ``U(k) = (Y_T(k)/N_T(k) - Y_C(k)/N_C(k)) k``.
- ``uplift_by_decile``: treated and control customers, their response rates and the observed
  uplift in ten groups of equal size by predicted uplift, best first.

``evaluate_uplift`` fits a configuration on training data and measures it on validation data (for
campaigns: the later waves, chosen by the caller); ``train_uplift_model`` evaluates, on
``validation_frame`` when given or else on a holdout stratified by treatment and outcome, then
refits on every row (training and validation): like ``train_response_model``, the stored model is
the refit one and its metrics are those of the same configuration on data it had not seen.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklift import metrics as sklift_metrics

from orchestrator.customers.table import ID_COLUMN
from orchestrator.errors import did_you_mean
from orchestrator.scoring.response import (
    ESTIMATORS,
    HOLDOUT_SHARE,
    MIN_CLASS_ROWS,
    ResponseModel,
    TabularInput,
    fingerprint,
    kind_of_series,
    parse_target,
    split_target,
)

__all__ = [
    "APPROACHES",
    "MIN_GROUP_ROWS",
    "UpliftModel",
    "UpliftTrainingResult",
    "evaluate_uplift",
    "parse_treatment",
    "qini_auc_score",
    "train_uplift_model",
    "uplift_auc_score",
    "uplift_by_decile",
]

APPROACHES = ("two_model", "class_transformation")
MIN_GROUP_ROWS = 50  # fewer treated (or control) customers than this cannot show an effect
DECILES = 10
_TREATED_WORDS = {"treatment", "treated"}
_CONTROL_WORDS = {"control"}


# --- inputs --------------------------------------------------------------------------------


def parse_treatment(values: Iterable[Any], name: str = "treatment") -> np.ndarray:
    """``values`` as 0/1.

    Accepts ``treatment``/``treated`` or ``control`` (the ledger's arms), or any pair ``parse_target`` accepts.
    """
    series = pd.Series(values if not isinstance(values, pd.Series) else values.to_numpy(), dtype=object)
    words = series.map(lambda v: str(v).strip().lower() if isinstance(v, str) else v)
    words = words.map(lambda v: 1 if v in _TREATED_WORDS else 0 if v in _CONTROL_WORDS else v)
    return parse_target(words, name)


def _binary(
    values: Iterable[Any], name: str, parse: Callable[[Iterable[Any], str], np.ndarray] = parse_target
) -> np.ndarray:
    """``values`` as 0/1; 0/1 integer or boolean arrays are taken as they are (fast), anything else is parsed."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biu" and np.isin(values, (0, 1)).all():
        return values.astype(np.int8, copy=False)
    return parse(values, name)


def _check_groups(treatment: np.ndarray, y: np.ndarray, where: str = "") -> None:
    """Both groups present with outcomes, and at least ``MIN_GROUP_ROWS`` customers in each."""
    treated = int(treatment.sum())
    control = len(treatment) - treated
    responders = int(y.sum())
    if treated == 0 or control == 0 or responders == 0 or responders == len(y):
        raise ValueError(
            "an uplift model needs both treated and control customers with outcomes, responders and "
            f"non-responders; {where or 'the data'} has {treated} treated and {control} control customer(s), "
            f"{responders} responder(s) and {len(y) - responders} non-responder(s)"
        )
    if min(treated, control) < MIN_GROUP_ROWS:
        raise ValueError(
            f"too few customers to measure uplift in {where or 'the data'}: {treated} treated and {control} "
            f"control; at least {MIN_GROUP_ROWS} of each are needed"
        )


def _check_lengths(X: pd.DataFrame, treatment: np.ndarray, y: np.ndarray, what: str = "X") -> None:
    if not (len(X) == len(treatment) == len(y)):
        raise ValueError(f"{what} has {len(X)} rows, treatment {len(treatment)} and y {len(y)}; they must match")


# --- the estimator -------------------------------------------------------------------------


class UpliftModel(TabularInput, BaseEstimator):
    """Predicted uplift per customer from customer columns (see the module docstring).

    Parameters
    ----------
    features : sequence of str or None
        Columns to learn from; ``None``: every usable column of ``X`` (as ``ResponseModel``).
    exclude : sequence of str
        Columns never to learn from.
    estimator : "logistic" or "gradient_boosting"
        The classifier of each response model.
    approach : "two_model" or "class_transformation"
    random_state : int
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        estimator: str = "logistic",
        approach: str = "two_model",
        random_state: int = 0,
    ):
        self.features = features
        self.exclude = exclude
        self.estimator = estimator
        self.approach = approach
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, treatment: Iterable[Any], y: Iterable[Any]) -> UpliftModel:
        """Learn from the customers in ``X``, whether each was treated (1) or control (0), and their outcomes ``y``."""
        for name, value, allowed in (
            ("estimator", self.estimator, ESTIMATORS),
            ("approach", self.approach, APPROACHES),
        ):
            if value not in allowed:
                raise ValueError(
                    f"The '{name}' parameter of UpliftModel must be one of {', '.join(allowed)}. Got {value!r} instead."
                )
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame with named columns; got {type(X).__name__}")
        t = _binary(treatment, "treatment", parse_treatment)
        y = _binary(y, str(getattr(y, "name", None) or "target"))
        _check_lengths(X, t, y)
        _check_groups(t, y)
        X = X.reset_index(drop=True)
        self.treated_share_ = float(t.mean())
        if self.approach == "two_model":
            self.response_models_ = self._fit_two_models(X, t, y)
        else:
            self.response_models_ = {"transformed": self._fit_transformed(X, t, y)}
        first = next(iter(self.response_models_.values()))
        self.features_ = list(first.features_)
        self.feature_kinds_ = dict(first.feature_kinds_)
        self.ignored_ = dict(first.ignored_)
        self.n_features_in_ = len(self.features_)
        return self

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray:
        """The predicted uplift for each row of ``X`` (from -1 to 1)."""
        return self.score_frame(X)

    def score_frame(self, frame: pd.DataFrame, *, check: bool = True) -> np.ndarray:
        """The predicted uplift for each row of ``frame`` (other columns are ignored).

        See ``ResponseModel.score_frame``.
        """
        self._check_fitted()
        models = self.response_models_
        if self.approach == "class_transformation":
            return 2.0 * models["transformed"].score_frame(frame, check=check) - 1.0
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame with named columns; got {type(frame).__name__}")
        kinds: dict[str, str | None] = {str(column): None for column in frame.columns}
        if check:
            kinds.update({name: kind_of_series(frame[name]) for name in self.features_ if name in frame.columns})
        self.check_kinds(kinds)
        if len(frame) == 0:
            return np.empty(0, dtype=np.float64)
        # Both models have the same features and kinds: prepare the columns once.
        treated, control = models["treated"], models["control"]
        prepared = treated._prepare(frame)
        return treated.pipeline_.predict_proba(prepared)[:, 1] - control.pipeline_.predict_proba(prepared)[:, 1]

    def check_kinds(self, kinds: Mapping[str, str | None]) -> None:
        """Raise ``FeatureMismatch`` if a feature is absent from ``kinds`` or its kind changed (``None``: unknown)."""
        self._check_fitted()
        next(iter(self.response_models_.values())).check_kinds(kinds)

    # -- internals ---------------------------------------------------------------------------

    def _response_model(self, features: Sequence[str] | None) -> ResponseModel:
        exclude = () if features is not None else self.exclude
        return ResponseModel(
            features=features, exclude=exclude, estimator=self.estimator, random_state=self.random_state
        )

    def _fit_two_models(self, X: pd.DataFrame, t: np.ndarray, y: np.ndarray) -> dict[str, ResponseModel]:
        for label, mask in (("treated", t == 1), ("control", t == 0)):
            responders = int(y[mask].sum())
            others = int(mask.sum()) - responders
            if min(responders, others) < MIN_CLASS_ROWS:
                raise ValueError(
                    f"the {label} customers have {responders} responder(s) and {others} non-responder(s); the "
                    f"two-model approach needs at least {MIN_CLASS_ROWS} of each in both groups "
                    "(try approach='class_transformation')"
                )
        # The treated model chooses the features; the control model learns from the same ones.
        treated = self._response_model(self.features).fit(X.loc[t == 1], pd.Series(y[t == 1], name="treated outcome"))
        control = self._response_model(treated.features_).fit(
            X.loc[t == 0], pd.Series(y[t == 0], name="control outcome")
        )
        if control.feature_kinds_ != treated.feature_kinds_:
            changed = next(n for n in treated.features_ if control.feature_kinds_[n] != treated.feature_kinds_[n])
            raise ValueError(
                f"feature '{changed}' holds {treated.feature_kinds_[changed]} values among the treated customers "
                f"but {control.feature_kinds_[changed]} among the control customers"
            )
        return {"treated": treated, "control": control}

    def _fit_transformed(self, X: pd.DataFrame, t: np.ndarray, y: np.ndarray) -> ResponseModel:
        z = (y * t + (1 - y) * (1 - t)).astype(np.int8)
        model = self._response_model(self.features).fit(X, pd.Series(z, name="transformed outcome"))
        share = float(t.mean())
        if share != 0.5:
            # Weight treated and control to equal totals so that 2 P(z=1 | x) - 1 is the uplift.
            weights = np.where(t == 1, 0.5 / share, 0.5 / (1.0 - share))
            model.pipeline_.fit(model._prepare(X), z, classifier__sample_weight=weights)
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "response_models_"):
            raise NotFittedError("this UpliftModel is not fitted yet; call fit(X, treatment, y) first")


# --- metrics (scikit-uplift) ---------------------------------------------------------------


def _metric_inputs(y: Iterable[Any], uplift: Iterable[float], treatment: Iterable[Any]) -> tuple[np.ndarray, ...]:
    y = _binary(y, "target")
    t = _binary(treatment, "treatment", parse_treatment)
    scores = np.asarray(uplift, dtype=np.float64)
    if not (len(y) == len(scores) == len(t)):
        raise ValueError(f"y has {len(y)} values, uplift {len(scores)} and treatment {len(t)}; they must match")
    if np.isnan(scores).any():
        raise ValueError(f"uplift is missing (NaN) for {int(np.isnan(scores).sum())} row(s)")
    treated = int(t.sum())
    if treated == 0 or treated == len(t):
        raise ValueError(
            "uplift metrics need both treated and control customers; "
            f"got {treated} treated and {len(t) - treated} control"
        )
    if y.min() == y.max():
        raise ValueError(f"uplift metrics need responders and non-responders; all {len(y)} outcomes are {int(y[0])}")
    return y, scores, t


def _quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        # sklift 0.5 calls sklearn.utils.extmath.stable_cumsum, deprecated in scikit-learn 1.8.
        warnings.filterwarnings("ignore", message=".*stable_cumsum.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*inplace.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Mean of empty slice", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="invalid value encountered", category=RuntimeWarning)
        return fn(*args, **kwargs)


def qini_auc_score(y: Iterable[Any], uplift: Iterable[float], treatment: Iterable[Any]) -> float:
    """The Qini coefficient of ``uplift`` (0: random order, 1: perfect; negative: worse than random)."""
    y, scores, t = _metric_inputs(y, uplift, treatment)
    return float(_quiet(sklift_metrics.qini_auc_score, y, scores, t, negative_effect=True))


def uplift_auc_score(y: Iterable[Any], uplift: Iterable[float], treatment: Iterable[Any]) -> float:
    """The normalised area under the uplift curve (AUUC) of ``uplift`` (0: random order, 1: perfect)."""
    y, scores, t = _metric_inputs(y, uplift, treatment)
    return float(_quiet(sklift_metrics.uplift_auc_score, y, scores, t))


def uplift_by_decile(
    y: Iterable[Any], uplift: Iterable[float], treatment: Iterable[Any], bins: int = DECILES
) -> list[dict[str, Any]]:
    """``{decile, treated, control, treated_rate, control_rate, uplift}`` per group of equal size, best predicted first.

    A rate (and the uplift) is ``None`` where a group has no treated or no control customer.
    """
    y, scores, t = _metric_inputs(y, uplift, treatment)
    if len(y) <= bins:
        raise ValueError(f"{len(y)} row(s) cannot be split into {bins} groups; at least {bins + 1} are needed")
    table = _quiet(sklift_metrics.uplift_by_percentile, y, scores, t, strategy="overall", bins=bins)

    def number(value: float) -> float | None:
        return None if np.isnan(value) else float(value)

    return [
        {
            "decile": i + 1,
            "treated": int(row.n_treatment),
            "control": int(row.n_control),
            "treated_rate": number(row.response_rate_treatment),
            "control_rate": number(row.response_rate_control),
            "uplift": number(row.uplift),
        }
        for i, row in enumerate(table.itertuples(index=False))
    ]


# --- evaluation and training ---------------------------------------------------------------


def _make_model(model: UpliftModel | Mapping[str, Any] | Callable[[], UpliftModel]) -> UpliftModel:
    if isinstance(model, UpliftModel):
        return clone(model)
    if isinstance(model, Mapping):
        return UpliftModel(**model)
    if callable(model):
        made = model()
        if not isinstance(made, UpliftModel):
            raise TypeError(f"the model factory must return an UpliftModel; it returned {type(made).__name__}")
        return made
    raise TypeError(f"model must be an UpliftModel, its parameters or a factory; got {type(model).__name__}")


def evaluate_uplift(
    model: UpliftModel | Mapping[str, Any] | Callable[[], UpliftModel],
    X: pd.DataFrame,
    treatment: Iterable[Any],
    y: Iterable[Any],
    *,
    validation: tuple[pd.DataFrame, Iterable[Any], Iterable[Any]],
) -> dict[str, Any]:
    """Fit ``model`` on ``X`` and measure it on ``validation``.

    ``model`` is an unfitted ``UpliftModel`` (cloned), its parameters, or a factory.

    Returns a JSON-ready dict: ``approach``, ``estimator``, ``n_train``, ``n_validation``,
    ``train_treated``/``train_control``, ``validation_treated``/``validation_control``, the observed
    ``validation_treated_rate``/``validation_control_rate``/``validation_uplift``, the model's
    ``mean_predicted_uplift`` on the validation rows, ``qini_auc``, ``auuc`` and ``uplift_by_decile``.
    """
    fitted = _make_model(model)
    t = _binary(treatment, "treatment", parse_treatment)
    y = _binary(y, "target")
    X_val, t_val, y_val = validation
    t_val = _binary(t_val, "treatment", parse_treatment)
    y_val = _binary(y_val, "target")
    _check_lengths(X_val, t_val, y_val, "the validation X")
    _check_groups(t_val, y_val, "the validation data")
    fitted.fit(X, t, y)
    scores = fitted.score_frame(X_val)
    treated_rate = float(y_val[t_val == 1].mean())
    control_rate = float(y_val[t_val == 0].mean())
    return {
        "approach": fitted.approach,
        "estimator": fitted.estimator,
        "n_train": int(len(y)),
        "n_validation": int(len(y_val)),
        "train_treated": int(t.sum()),
        "train_control": int(len(t) - t.sum()),
        "validation_treated": int(t_val.sum()),
        "validation_control": int(len(t_val) - t_val.sum()),
        "validation_treated_rate": treated_rate,
        "validation_control_rate": control_rate,
        "validation_uplift": treated_rate - control_rate,
        "mean_predicted_uplift": float(scores.mean()),
        "qini_auc": qini_auc_score(y_val, scores, t_val),
        "auuc": uplift_auc_score(y_val, scores, t_val),
        "uplift_by_decile": uplift_by_decile(y_val, scores, t_val),
    }


@dataclass
class UpliftTrainingResult:
    """An uplift model fitted on every row, with metrics of the same configuration on data it had not seen."""

    model: UpliftModel
    metrics: dict[str, Any]
    fingerprint: str
    rows: int
    target: str
    treatment: str


def _split(frame: pd.DataFrame, target: str, treatment_column: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, int]:
    """``(X, t, y, dropped)``: rows with an outcome and a treatment, without those two columns."""
    if treatment_column not in frame.columns:
        columns = [str(c) for c in frame.columns if c != ID_COLUMN]
        raise ValueError(
            f"there is no treatment column '{treatment_column}'{did_you_mean(treatment_column, columns)} "
            f"(columns: {', '.join(columns)})"
        )
    if treatment_column == target:
        raise ValueError(f"'{target}' cannot be both the target and the treatment column")
    X, y, dropped = split_target(frame, target)
    arm = X[treatment_column]
    known = arm.notna().to_numpy() & ~arm.astype(str).str.strip().eq("").to_numpy()
    t = _binary(arm[known].to_numpy(), treatment_column, parse_treatment)
    X = X.loc[known].drop(columns=[treatment_column]).reset_index(drop=True)
    return X, t, y[known], dropped + int((~known).sum())


def train_uplift_model(
    frame: pd.DataFrame,
    target: str,
    treatment_column: str,
    *,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    estimator: str = "logistic",
    approach: str = "two_model",
    validation_frame: pd.DataFrame | None = None,
    random_state: int = 0,
    progress: Callable[[int], None] | None = None,
) -> UpliftTrainingResult:
    """Evaluate, then refit on every row with an outcome and a treatment (see ``evaluate_uplift``).

    ``validation_frame`` (same columns; for campaigns the later waves) is what the configuration is
    measured on; without it a stratified (by treatment and outcome) ``HOLDOUT_SHARE`` of ``frame``
    is. The returned model is then fitted on ``frame`` and ``validation_frame`` together.
    ``treatment_column`` holds 1/0, yes/no, true/false or treatment/treated/control; rows without an
    outcome or a treatment are left out (``metrics["rows_left_out"]``). ``fingerprint`` is that of
    ``frame``, or with a validation frame the sha256 of both frames' fingerprints. ``progress`` is
    called with 1 after each of the two steps (evaluation, refit).
    """
    exclude = [exclude] if isinstance(exclude, str) else list(exclude)
    if features is not None:
        listed = [features] if isinstance(features, str) else list(features)
        for name in (treatment_column, target):
            if name in listed:
                raise ValueError(f"'{name}' cannot be a feature: it is the treatment or target column")
    exclude = [name for name in exclude if name not in (treatment_column, target)]
    model = UpliftModel(
        features=features, exclude=tuple(exclude), estimator=estimator, approach=approach, random_state=random_state
    )
    X, t, y, dropped = _split(frame, target, treatment_column)
    _check_groups(t, y, "the training data")
    if validation_frame is None:
        strata = t * 2 + y
        X_train, X_val, t_train, t_val, y_train, y_val = train_test_split(
            X, t, y, test_size=HOLDOUT_SHARE, stratify=strata, random_state=random_state
        )
        metrics = evaluate_uplift(model, X_train, t_train, y_train, validation=(X_val, t_val, y_val))
        metrics.update(evaluation="holdout", holdout_share=HOLDOUT_SHARE)
        X_all, t_all, y_all = X, t, y
        print_ = fingerprint(frame)
    else:
        X_val, t_val, y_val, dropped_val = _split(validation_frame, target, treatment_column)
        metrics = evaluate_uplift(model, X, t, y, validation=(X_val, t_val, y_val))
        metrics.update(evaluation="validation", validation_rows_left_out=dropped_val)
        X_all = pd.concat([X, X_val], ignore_index=True)
        t_all, y_all = np.concatenate([t, t_val]), np.concatenate([y, y_val])
        print_ = hashlib.sha256((fingerprint(frame) + fingerprint(validation_frame)).encode()).hexdigest()
    metrics["rows_left_out"] = dropped
    if progress is not None:
        progress(1)
    model.fit(X_all, t_all, y_all)
    if progress is not None:
        progress(1)
    metrics["refit_rows"] = int(len(y_all))
    if model.ignored_:
        metrics["ignored_columns"] = dict(model.ignored_)
    return UpliftTrainingResult(
        model=model,
        metrics=metrics,
        fingerprint=print_,
        rows=int(len(y_all)),
        target=target,
        treatment=treatment_column,
    )
