"""Response models: who is likely to respond, learned from past outcomes, for target-group selection.

``ResponseModel`` follows the scikit-learn estimator API: ``__init__`` only stores parameters,
``fit(X, y)`` returns ``self``, learned attributes end in ``_`` (``features_``, ``feature_kinds_``,
``pipeline_``, ``classes_``, ``ignored_``). ``X`` is a pandas ``DataFrame`` of customer columns,
``y`` the outcome (yes/no, true/false or 1/0; see ``parse_target``).

- **Features**: every column of ``X`` except ``customer_id``, the ``exclude`` columns (leakage such
  as ``duration``) and date/datetime or all-empty columns (listed in ``ignored_``), unless
  ``features`` names them. Kinds: ``number`` (integer or decimal), ``boolean``, ``text``.
- **Pipeline**: a ``ColumnTransformer`` (numbers: median imputation and standard scaling; text and
  booleans: a constant for missing values and one-hot encoding that ignores unseen values and pools
  rare ones, ``MIN_CATEGORY_SHARE`` / ``MAX_CATEGORIES``) followed by ``LogisticRegression``
  (``estimator="logistic"``) or ``HistGradientBoostingClassifier`` (``"gradient_boosting"``).
- **Scoring**: ``score_frame(frame)`` gives the probability of a response per row. It refuses,
  naming the column, a frame that lacks a feature or whose feature changed kind since training
  (``FeatureMismatch``).
- **Evaluation**: ``evaluate(model, X, y)`` fits a clone on a stratified 75 % and measures the
  other 25 % (fixed seed): ROC AUC, PR AUC (average precision), lift in the top decile, a
  10-bin calibration table, base rate and row counts. ``train_response_model`` evaluates, then
  refits on every row: the stored model is the refit one, its metrics are **holdout** metrics of
  the same configuration.
- **Fingerprint**: ``fingerprint(frame)`` is the sha256 of the training data (column names,
  types and values), cheap enough for a million rows.
- **Customers**: scoring the customer table with a registered model is ``orchestrator.scoring.customers``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from orchestrator.customers.table import ID_COLUMN
from orchestrator.errors import did_you_mean

__all__ = [
    "ESTIMATORS",
    "FeatureMismatch",
    "ResponseModel",
    "TrainingResult",
    "evaluate",
    "fingerprint",
    "kind_of_series",
    "parse_target",
    "split_target",
    "train_response_model",
]

FeatureKind = Literal["number", "boolean", "text"]

ESTIMATORS = ("logistic", "gradient_boosting")
AUTO = "auto"  # train_response_model: every estimator on the holdout, the best one refitted
MIN_CLASS_ROWS = 20  # fewer responders (or non-responders) than this cannot be learned from
MIN_CATEGORY_SHARE = 0.005  # categories rarer than this share of rows are pooled into one column
MAX_CATEGORIES = 50  # at most this many one-hot columns per text column
HOLDOUT_SHARE = 0.25
CALIBRATION_BINS = 10
MISSING_CATEGORY = "(missing)"

# Customer table column kinds as the model sees them.
_MODEL_KIND = {
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "text": "text",
    "date": "datetime",
    "datetime": "datetime",
}
_TRUE = {"yes", "y", "true", "t", "1", "1.0"}
_FALSE = {"no", "n", "false", "f", "0", "0.0"}
_KIND_WORDS = {"number": "a number", "boolean": "a yes/no value", "text": "text", "datetime": "a date"}


class FeatureMismatch(ValueError):
    """The data to score does not have the columns, or the kinds of column, the model was trained on."""


# --- kinds and target ----------------------------------------------------------------------


def table_kinds(columns: Mapping[str, str]) -> dict[str, str]:
    """Customer-table column kinds (``customer_columns``) as the kinds a model's features have."""
    return {column: _MODEL_KIND[kind] for column, kind in columns.items()}


def kind_of_series(series: pd.Series) -> str | None:
    """``number``, ``boolean``, ``text`` or ``datetime`` for the values in ``series``; ``None`` if all are empty."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number" if series.notna().any() or dtype.kind in "iu" else None
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    present = series.dropna()
    if present.empty:
        return None
    first = present.iloc[0]
    if isinstance(first, (bool, np.bool_)):
        return "boolean"
    if isinstance(first, (int, float, decimal.Decimal, np.number)):
        return "number"
    if isinstance(first, (dt.date, dt.datetime, pd.Timestamp)):
        return "datetime"
    return "text"


def parse_target(values: Iterable[Any], name: str = "target") -> np.ndarray:
    """``values`` as 0/1: yes/no, y/n, true/false, t/f, 1/0 (any case) or booleans.

    Raises ``ValueError`` listing the values found when they are not one of those pairs, or when a
    value is empty (``split_target`` drops rows without an outcome first).
    """
    series = pd.Series(values if not isinstance(values, pd.Series) else values.to_numpy(), dtype=object)
    if series.isna().any():
        raise ValueError(f"target '{name}' is empty in {int(series.isna().sum())} row(s); drop them or fill them in")
    text = series.map(lambda v: str(v).strip().lower())
    unknown = sorted(set(text) - _TRUE - _FALSE)
    if unknown:
        found = series.astype(str).str.strip().value_counts()
        listed = ", ".join(f"'{value}' ({count})" for value, count in found.head(10).items())
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        raise ValueError(
            f"target '{name}' must be binary (yes/no, true/false or 1/0); found {len(found)} value(s): {listed}{more}"
        )
    return text.isin(_TRUE).to_numpy(dtype=np.int8)


def split_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray, int]:
    """``(X, y, dropped)``: the rows with an outcome, their 0/1 outcome, and how many rows had none."""
    if target not in frame.columns:
        columns = [c for c in frame.columns if c != ID_COLUMN]
        raise ValueError(
            f"there is no target column '{target}'{did_you_mean(target, columns)} (columns: {', '.join(columns)})"
        )
    outcome = frame[target]
    known = outcome.notna().to_numpy() & ~outcome.astype(str).str.strip().eq("").to_numpy()
    rows = frame.loc[known].reset_index(drop=True)
    y = parse_target(rows[target], target)
    return rows.drop(columns=[target]), y, int((~known).sum())


def _check_classes(y: np.ndarray, target: str) -> None:
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        value = "1 (yes)" if negatives == 0 else "0 (no)"
        raise ValueError(f"target '{target}' has a single value, {value}, in all {len(y)} rows; nothing to learn")
    if min(positives, negatives) < MIN_CLASS_ROWS:
        raise ValueError(
            f"target '{target}' has {positives} positive and {negatives} negative row(s); "
            f"at least {MIN_CLASS_ROWS} of each are needed to train and evaluate a model"
        )


# --- the estimator -------------------------------------------------------------------------


class TabularInput:
    """Mixin for our estimators: they take data frames with text, categories and missing values.

    scikit-learn >= 1.6 reads ``__sklearn_tags__`` to know an estimator's input kind.
    """

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        return tags


class ResponseModel(TabularInput, ClassifierMixin, BaseEstimator):
    """Probability that a customer responds, from customer columns (see the module docstring).

    Parameters
    ----------
    features : sequence of str or None
        Columns to learn from; ``None``: every usable column of ``X``.
    exclude : sequence of str
        Columns never to learn from, e.g. ``("duration",)`` which is only known after the contact.
    estimator : "logistic" or "gradient_boosting"
    random_state : int
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        estimator: str = "logistic",
        random_state: int = 0,
    ):
        self.features = features
        self.exclude = exclude
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Iterable[Any]) -> ResponseModel:
        """Learn from the customers in ``X`` and their outcomes ``y``; returns ``self``."""
        if self.estimator not in ESTIMATORS:
            raise ValueError(
                f"The 'estimator' parameter of ResponseModel must be one of {', '.join(ESTIMATORS)}. "
                f"Got {self.estimator!r} instead."
            )
        frame = _as_frame(X, "X")
        target = getattr(y, "name", None) or "target"
        y = parse_target(y, str(target))
        if len(y) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(y)}")
        _check_classes(y, str(target))
        features, ignored = self._choose_features(frame)
        # _choose_features keeps only columns of a known kind
        kinds = cast(dict[str, str], {name: kind_of_series(frame[name]) for name in features})
        self.features_ = features
        self.feature_kinds_ = kinds
        self.ignored_ = ignored
        self.pipeline_ = self._pipeline(kinds)
        self.pipeline_.fit(self._prepare(frame), y)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(features)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``(n, 2)`` probabilities of no response and of a response."""
        scores = self.score_frame(X)
        return np.column_stack([1.0 - scores, scores])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.score_frame(X) >= 0.5).astype(np.int8)

    def score_frame(self, frame: pd.DataFrame, *, check: bool = True) -> np.ndarray:
        """The probability of a response for each row of ``frame`` (other columns are ignored).

        ``check=False`` skips inferring each feature's kind from the values, for callers that
        checked the kinds of the source once (``check_kinds``), e.g. from the table's column types.
        """
        self._check_fitted()
        frame = _as_frame(frame, "frame")
        missing = [name for name in self.features_ if name not in frame.columns]
        if missing:
            self._refuse_missing(missing, frame.columns)
        if check:
            self.check_kinds({name: kind_of_series(frame[name]) for name in self.features_})
        if len(frame) == 0:
            return np.empty(0, dtype=np.float64)
        return self.pipeline_.predict_proba(self._prepare(frame))[:, 1].astype(np.float64)

    def check_kinds(self, kinds: Mapping[str, str | None]) -> None:
        """Raise ``FeatureMismatch`` if a feature is absent from ``kinds`` or its kind changed (``None``: unknown)."""
        self._check_fitted()
        missing = [name for name in self.features_ if name not in kinds]
        if missing:
            self._refuse_missing(missing, kinds)
        for name in self.features_:
            now, then = kinds[name], self.feature_kinds_[name]
            if now is not None and now != then:
                raise FeatureMismatch(
                    f"feature '{name}' was {_KIND_WORDS[then]} at training, is {_KIND_WORDS.get(now, now)} now"
                )

    # -- internals ---------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "pipeline_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this ResponseModel is not fitted yet; call fit(X, y) first")

    def _refuse_missing(self, missing: list[str], present: Iterable[str]) -> None:
        name = missing[0]
        more = f" (and {len(missing) - 1} more: {', '.join(missing[1:6])})" if len(missing) > 1 else ""
        raise FeatureMismatch(
            f"feature '{name}' is missing{did_you_mean(name, [str(p) for p in present])}{more}; "
            f"the model was trained on {', '.join(self.features_)}"
        )

    def _choose_features(self, frame: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
        columns = [str(c) for c in frame.columns]
        exclude = [self.exclude] if isinstance(self.exclude, str) else list(self.exclude)
        for name in exclude:
            if name not in columns:
                raise ValueError(f"cannot exclude '{name}': there is no such column{did_you_mean(name, columns)}")
        ignored: dict[str, str] = {}
        if self.features is None:
            candidates = [c for c in columns if c != ID_COLUMN and c not in exclude]
        else:
            candidates = [self.features] if isinstance(self.features, str) else list(self.features)
            for name in candidates:
                if name not in columns:
                    raise ValueError(f"there is no feature column '{name}'{did_you_mean(name, columns)}")
                if name == ID_COLUMN or name in exclude:
                    raise ValueError(f"'{name}' cannot be a feature: it is the id column or excluded")
        features = []
        for name in candidates:
            kind = kind_of_series(frame[name])
            if kind is None:
                ignored[name] = "no values"
            elif kind == "datetime":
                ignored[name] = "dates are not used as features"
            else:
                features.append(name)
        if self.features is not None and ignored:
            name, reason = next(iter(ignored.items()))
            raise ValueError(f"feature '{name}' cannot be used: {reason}")
        if not features:
            raise ValueError("no column is left to learn from (all are the id, excluded, dates or empty)")
        return features, ignored

    def _pipeline(self, kinds: Mapping[str, str]) -> Pipeline:
        numeric = [name for name, kind in kinds.items() if kind == "number"]
        categorical = [name for name, kind in kinds.items() if kind != "number"]
        if self.estimator == "gradient_boosting":
            return self._native_pipeline(numeric, categorical)
        transformers = []
        if numeric:
            transformers.append(
                (
                    "number",
                    Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                    numeric,
                )
            )
        if categorical:
            encoder = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=MIN_CATEGORY_SHARE,
                max_categories=MAX_CATEGORIES,
                sparse_output=False,
            )
            impute = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)
            transformers.append(("category", Pipeline([("impute", impute), ("encode", encoder)]), categorical))
        if self.estimator == "logistic":
            classifier = LogisticRegression(max_iter=2000, random_state=self.random_state)
        else:
            classifier = HistGradientBoostingClassifier(random_state=self.random_state)
        columns = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
        return Pipeline([("columns", columns), ("classifier", classifier)])

    def _native_pipeline(self, numeric: list[str], categorical: list[str]) -> Pipeline:
        """Gradient boosting on the columns as they are: numbers with their missing values (the trees
        route them), text as category codes with the classifier's native categorical splits (no one-hot
        columns: faster on wide categories, e.g. 45,211 bank rows). Rare categories are pooled as for
        the logistic model; a category unseen in training is treated as missing."""
        transformers: list[tuple[str, Any, list[str]]] = []
        if numeric:
            transformers.append(("number", "passthrough", numeric))
        if categorical:
            encoder = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                encoded_missing_value=np.nan,
                min_frequency=MIN_CATEGORY_SHARE,
                max_categories=MAX_CATEGORIES,
            )
            transformers.append(("category", encoder, categorical))
        mask = [False] * len(numeric) + [True] * len(categorical)
        classifier = HistGradientBoostingClassifier(
            categorical_features=mask if categorical else None, random_state=self.random_state
        )
        columns = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
        return Pipeline([("columns", columns), ("classifier", classifier)])

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The feature columns in the types the pipeline expects: float64, or text with NaN for missing."""
        prepared = {}
        for name in self.features_:
            column = frame[name]
            if self.feature_kinds_[name] == "number":
                prepared[name] = pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()
            else:
                values = column.to_numpy(dtype=object, na_value=None)
                prepared[name] = np.array([np.nan if v is None else _category(v) for v in values], dtype=object)
        return pd.DataFrame(prepared, columns=self.features_)


def _category(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def _as_frame(X: Any, what: str) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    raise TypeError(f"{what} must be a pandas DataFrame with named columns; got {type(X).__name__}")


# --- evaluation and training ---------------------------------------------------------------


def evaluate(
    model: ResponseModel,
    X: pd.DataFrame,
    y: Iterable[Any],
    *,
    holdout: float = HOLDOUT_SHARE,
    random_state: int = 0,
) -> dict[str, Any]:
    """Holdout metrics of ``model``'s configuration: a clone is fitted on a stratified split.

    Returns a JSON-ready dict: ``evaluation`` ("holdout"), ``holdout_share``, ``rows``,
    ``train_rows``, ``holdout_rows``, ``positives``, ``base_rate`` (of all rows), ``holdout_base_rate``,
    ``roc_auc``, ``pr_auc`` (average precision), ``lift_top_decile`` and ``calibration`` (list of
    ``{bin, rows, mean_predicted, observed}``, 10 bins of equal size by predicted score).
    """
    y = parse_target(y, str(getattr(y, "name", None) or "target"))
    _check_classes(y, "target")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=holdout, stratify=y, random_state=random_state)
    fitted = clone(model).fit(X_train, y_train)
    scores = fitted.score_frame(X_test)
    return {
        "evaluation": "holdout",
        "holdout_share": holdout,
        "estimator": model.estimator,
        "rows": int(len(y)),
        "train_rows": int(len(y_train)),
        "holdout_rows": int(len(y_test)),
        "positives": int(y.sum()),
        "base_rate": float(y.mean()),
        "holdout_base_rate": float(y_test.mean()),
        "roc_auc": float(roc_auc_score(y_test, scores)),
        "pr_auc": float(average_precision_score(y_test, scores)),
        "lift_top_decile": lift_at(y_test, scores, 0.1),
        "calibration": calibration_table(y_test, scores, CALIBRATION_BINS),
    }


def lift_at(y_true: np.ndarray, scores: np.ndarray, share: float) -> float:
    """Response rate among the best-scoring ``share`` of rows divided by the overall rate."""
    count = max(1, int(round(len(scores) * share)))
    order = np.lexsort((np.arange(len(scores)), -scores))  # best first, ties by position
    top = np.zeros(len(scores), dtype=bool)
    top[order[:count]] = True
    rate = precision_score(y_true, top.astype(np.int8), zero_division=0.0)
    return float(rate / np.mean(y_true))


def calibration_table(y_true: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """Mean predicted score against the observed rate in ``bins`` bins of equal size (by score)."""
    observed, predicted = calibration_curve(y_true, scores, n_bins=bins, strategy="quantile")
    # The rows per bin, binned exactly as calibration_curve does.
    edges = np.percentile(scores, np.linspace(0, 1, bins + 1) * 100)
    counts = np.bincount(np.searchsorted(edges[1:-1], scores), minlength=bins)
    counts = counts[counts != 0]
    return [
        {"bin": i + 1, "rows": int(n), "mean_predicted": float(p), "observed": float(o)}
        for i, (n, p, o) in enumerate(zip(counts, predicted, observed, strict=True))
    ]


@dataclass
class TrainingResult:
    """A model fitted on every row, with holdout metrics of the same configuration."""

    model: ResponseModel
    metrics: dict[str, Any]
    fingerprint: str
    rows: int
    target: str


def train_response_model(
    frame: pd.DataFrame,
    target: str,
    *,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    estimator: str = "logistic",
    random_state: int = 0,
    progress: Callable[[int], None] | None = None,
) -> TrainingResult:
    """Evaluate on a stratified holdout, then refit on every row with an outcome (see ``evaluate``).

    ``estimator="auto"`` evaluates every estimator of ``ESTIMATORS`` on the same holdout and refits
    the one with the best ROC AUC; ``metrics["estimator_choice"]`` holds each one's AUC.

    Rows without an outcome are left out (``metrics["rows_without_target"]``). ``progress`` is
    called with 1 after each step (each holdout evaluation, the refit).
    """
    X, y, dropped = split_target(frame, target)
    _check_classes(y, target)
    y_named = pd.Series(y, name=target)
    compared: dict[str, dict[str, Any]] = {}
    for name in ESTIMATORS if estimator == AUTO else (estimator,):
        candidate = ResponseModel(features=features, exclude=tuple(exclude), estimator=name, random_state=random_state)
        compared[name] = evaluate(candidate, X, y_named, random_state=random_state)
        if progress is not None:
            progress(1)
    # the best holdout ROC AUC; on a tie gradient boosting (listed last) gives way to the simpler model
    chosen = max(compared, key=lambda name: compared[name]["roc_auc"])
    metrics = compared[chosen]
    if estimator == AUTO:
        metrics["estimator_choice"] = {
            "by": "holdout roc_auc",
            "roc_auc": {name: m["roc_auc"] for name, m in compared.items()},
        }
    metrics["rows_without_target"] = dropped
    model = ResponseModel(features=features, exclude=tuple(exclude), estimator=chosen, random_state=random_state)
    model.fit(X, y_named)
    if progress is not None:
        progress(1)
    if model.ignored_:
        metrics["ignored_columns"] = dict(model.ignored_)
    return TrainingResult(model=model, metrics=metrics, fingerprint=fingerprint(frame), rows=len(y), target=target)


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of ``frame``'s column names, types and values (row order matters, the index does not)."""
    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        digest.update(f"{name}\x00{column.dtype}\x00".encode())
        digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
    return digest.hexdigest()
