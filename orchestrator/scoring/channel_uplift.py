"""Per-channel uplift: the incremental effect of EACH channel on each customer, for channel allocation.

``UpliftModel`` learns one effect of "a contact", whatever the channel. ``ChannelUpliftModel``
learns ``effect(c, x) = P(y | channel c, x) - P(y | control, x)`` for every channel ``c``: a
pooled T-learner, ONE outcome model trained on the treated rows (the channel they got) and the
control rows (no contact), with the channel as a feature:

- ``estimator="logistic"``: the customer columns (``ResponseModel``'s feature choice and
  preprocessing: imputation, scaling, one-hot), a one-hot of the channel (all zeros for the
  control group) and every channel x feature interaction, so each channel has its own slopes;
- ``estimator="gradient_boosting"``: the customer columns and the channel as one categorical
  column (control = its own category); the trees find the interactions.

Rows are weighted by ``1 / propensity`` (``fit(..., propensity=arm_propensity x
channel_propensity)``) where it is given and finite, clipped at ``max_weight``, so that
explored (rarely drawn) channels and arms count for what they stand for (inverse propensity
weighting); rows without a propensity weigh 1.

``effects_frame(frame)`` gives a DataFrame with one column per channel; ``score_frame(frame)``
the best channel's effect (so a ``scores:`` selection works unchanged) and ``effects_of(frame,
channels)`` the effects in a given channel order (NaN for a channel the model never saw).

Training needs, for every channel and for the control group, at least ``MIN_GROUP_ROWS`` rows,
and responders and non-responders: ``MIN_CLASS_ROWS`` of each in the control group,
``MIN_CHANNEL_CLASS_ROWS`` in each channel; otherwise a ``ValueError`` says which
group fell short and with how many.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from orchestrator.scoring.response import (
    ESTIMATORS,
    MIN_CLASS_ROWS,
    ResponseModel,
    TabularInput,
    kind_of_series,
    parse_target,
)
from orchestrator.scoring.uplift import MIN_GROUP_ROWS

__all__ = ["CONTROL", "MAX_WEIGHT", "MIN_CHANNEL_CLASS_ROWS", "ChannelUpliftModel", "ips_weights"]

CONTROL = "control"
"""The channel label of the control group (no contact); ``None`` and ``""`` mean the same."""
MAX_WEIGHT = 20.0
MIN_CHANNEL_CLASS_ROWS = 5
"""Responders (and non-responders) a channel needs: fewer than ``MIN_CLASS_ROWS``, since the pooled
model learns the rest from every row, but not so few that its effect is noise."""


def ips_weights(propensity: Iterable[float] | None, n: int, max_weight: float = MAX_WEIGHT) -> np.ndarray:
    """``1 / propensity`` clipped at ``max_weight``; 1 where the propensity is missing, not finite or not positive."""
    if propensity is None:
        return np.ones(n)
    p = np.asarray(propensity, dtype=float)
    if len(p) != n:
        raise ValueError(f"propensity has {len(p)} values for {n} rows")
    known = np.isfinite(p) & (p > 0)
    weights = np.ones(n)
    weights[known] = np.minimum(1.0 / p[known], max_weight)
    return weights


def _channel_labels(channel: Iterable[Any]) -> np.ndarray:
    values = pd.Series(list(channel) if not isinstance(channel, pd.Series) else channel.to_numpy(), dtype=object)
    blank = values.isna() | values.astype(str).str.strip().isin(["", CONTROL])
    return np.where(blank.to_numpy(), CONTROL, values.astype(str).to_numpy()).astype(object)


class ChannelUpliftModel(TabularInput, BaseEstimator):
    """The incremental effect of each channel per customer (see the module docstring).

    Parameters
    ----------
    features : sequence of str or None
        Columns to learn from; ``None``: every usable column of ``X`` (as ``ResponseModel``).
    exclude : sequence of str
        Columns never to learn from.
    estimator : "logistic" or "gradient_boosting"
    max_weight : float
        Inverse propensity weights are clipped at this.
    random_state : int
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        estimator: str = "logistic",
        max_weight: float = MAX_WEIGHT,
        random_state: int = 0,
    ):
        self.features = features
        self.exclude = exclude
        self.estimator = estimator
        self.max_weight = max_weight
        self.random_state = random_state

    def fit(
        self,
        X: pd.DataFrame,
        channel: Iterable[Any],
        y: Iterable[Any],
        *,
        propensity: Iterable[float] | None = None,
    ) -> ChannelUpliftModel:
        """Learn from the rows of ``X``: the channel each treated customer got (``CONTROL``/None for the
        control group), the outcomes ``y`` and, optionally, each row's propensity (arm x channel)."""
        if self.estimator not in ESTIMATORS:
            raise ValueError(
                f"The 'estimator' parameter of ChannelUpliftModel must be one of {', '.join(ESTIMATORS)}. "
                f"Got {self.estimator!r} instead."
            )
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame with named columns; got {type(X).__name__}")
        labels = _channel_labels(channel)
        y = parse_target(y, str(getattr(y, "name", None) or "target"))
        if not (len(X) == len(labels) == len(y)):
            raise ValueError(f"X has {len(X)} rows, channel {len(labels)} and y {len(y)}; they must match")
        weights = ips_weights(propensity, len(X), self.max_weight)
        self.channels_ = sorted(str(c) for c in set(labels.tolist()) - {CONTROL})
        _check_groups(labels, y, self.channels_)
        X = X.reset_index(drop=True)
        base = ResponseModel(
            features=self.features,
            exclude=() if self.features is not None else self.exclude,
            estimator=self.estimator,
            random_state=self.random_state,
        )
        features, ignored = base._choose_features(X)
        kinds = cast(dict[str, str], {name: kind_of_series(X[name]) for name in features})
        base.features_, base.feature_kinds_, base.ignored_ = features, kinds, ignored
        self.features_ = features
        self.feature_kinds_ = kinds
        self.ignored_ = ignored
        self.n_features_in_ = len(features)
        pipeline = base._pipeline(kinds)
        self.columns_ = pipeline.named_steps["columns"].fit(base._prepare(X))
        base.pipeline_ = pipeline  # the feature checks and preprocessing; its own classifier is never fitted
        self.base_model_ = base
        if self.estimator == "logistic":
            self.classifier_ = LogisticRegression(max_iter=3000, random_state=self.random_state)
        else:
            self.classifier_ = HistGradientBoostingClassifier(
                categorical_features=[len(self.columns_.get_feature_names_out())], random_state=self.random_state
            )
        design = self._design(self._transform(X), self._codes(labels))
        self.classifier_.fit(design, y, sample_weight=weights)
        self.weighted_ = propensity is not None
        return self

    def effects_frame(self, frame: pd.DataFrame, *, check: bool = True) -> pd.DataFrame:
        """One column per channel the model learned: ``P(y | channel, x) - P(y | control, x)`` per row."""
        self._check_fitted()
        self._check_frame(frame, check)
        if len(frame) == 0:
            return pd.DataFrame({c: np.empty(0) for c in self.channels_})
        Z = self._transform(frame)
        n = len(frame)
        control = self.classifier_.predict_proba(self._design(Z, np.zeros(n, dtype=np.int64)))[:, 1]
        return pd.DataFrame(
            {
                c: self.classifier_.predict_proba(self._design(Z, np.full(n, j + 1, dtype=np.int64)))[:, 1] - control
                for j, c in enumerate(self.channels_)
            }
        )

    def effects_of(self, frame: pd.DataFrame, channels: Sequence[str], *, check: bool = True) -> np.ndarray:
        """``(n, len(channels))`` effects in the order of ``channels``; NaN for a channel the model never saw."""
        effects = self.effects_frame(frame, check=check)
        out = np.full((len(frame), len(channels)), np.nan)
        for j, name in enumerate(channels):
            if name in effects.columns:
                out[:, j] = effects[name].to_numpy()
        return out

    def score_frame(self, frame: pd.DataFrame, *, check: bool = True) -> np.ndarray:
        """The best channel's effect per row (may be negative: every channel puts the customer off)."""
        effects = self.effects_frame(frame, check=check)
        if len(effects) == 0:
            return np.empty(0, dtype=np.float64)
        return effects.to_numpy(dtype=np.float64).max(axis=1)

    def check_kinds(self, kinds: Mapping[str, str | None]) -> None:
        """Raise ``FeatureMismatch`` if a feature is absent from ``kinds`` or its kind changed."""
        self._check_fitted()
        self.base_model_.check_kinds(kinds)

    # -- internals ---------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "classifier_"):
            raise NotFittedError("this ChannelUpliftModel is not fitted yet; call fit(X, channel, y) first")

    def _check_frame(self, frame: pd.DataFrame, check: bool) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame with named columns; got {type(frame).__name__}")
        kinds: dict[str, str | None] = {str(column): None for column in frame.columns}
        if check:
            kinds.update({name: kind_of_series(frame[name]) for name in self.features_ if name in frame.columns})
        self.check_kinds(kinds)

    def _codes(self, labels: np.ndarray) -> np.ndarray:
        """0 for the control group, 1 + the channel's index otherwise."""
        index = {c: j + 1 for j, c in enumerate(self.channels_)}
        return pd.Series(labels).map(index).fillna(0).to_numpy(dtype=np.int64)

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.columns_.transform(self.base_model_._prepare(frame)), dtype=np.float64)

    def _design(self, Z: np.ndarray, codes: np.ndarray) -> np.ndarray:
        if self.estimator != "logistic":
            return np.column_stack([Z, codes.astype(np.float64)])
        onehot = (codes[:, None] == np.arange(1, len(self.channels_) + 1)[None, :]).astype(np.float64)
        interactions = (onehot[:, :, None] * Z[:, None, :]).reshape(len(Z), -1)
        return np.hstack([Z, onehot, interactions])


def _check_groups(labels: np.ndarray, y: np.ndarray, channels: Sequence[str]) -> None:
    """Every channel and the control group: enough rows, responders and non-responders."""
    if not channels:
        raise ValueError("a channel uplift model needs treated customers with their channel; there are none")
    for group in [CONTROL, *channels]:
        mask = labels == group
        rows, responders = int(mask.sum()), int(y[mask].sum())
        what = "the control group" if group == CONTROL else f"channel {group}"
        least = MIN_CLASS_ROWS if group == CONTROL else MIN_CHANNEL_CLASS_ROWS
        if rows < MIN_GROUP_ROWS or min(responders, rows - responders) < least:
            raise ValueError(
                f"too few outcomes for {what}: {rows} customer(s), {responders} responder(s) and "
                f"{rows - responders} non-responder(s); a channel uplift model needs at least {MIN_GROUP_ROWS} "
                f"customers and {least} responders and non-responders in {what}"
            )
