"""Per-channel uplift: the incremental effect of EACH channel on each customer, for channel allocation.

``UpliftModel`` learns one effect of "a contact", whatever the channel. ``ChannelUpliftModel``
learns ``effect(c, x) = P(y | channel c, x) - P(y | control, x)`` for every channel ``c``, with
the control group as the no-contact arm, by one of three meta-learners (``approach``):

- ``"t_learner"``: one outcome model per arm, the control arm pooled over every
  channel's control customers (a visit's small mirrored control group borrows the no-contact
  outcome of everyone's); the effect is the difference of two predictions;
- ``"x_learner"`` (default; Kuenzel et al. 2019): the T-learner's arm models impute each row's
  individual effect (treated: ``y - mu_0(x)``, control: ``mu_c(x) - y``), two regressions smooth
  them per channel and are blended by the channel's share of rows, which suits groups of very
  different sizes (10,000 e-mails, 400 visits, a 10% control group); in the learning benchmark
  (docs/models.md) it found as many or more extra buyers than the T-learner in most worlds.
  With gradient boosting as the learner, a channel with at most ``FOREST_MAX_ROWS`` treated rows
  has their effects smoothed by a random forest (Kuenzel's "X-RF"): averaged deep trees whose
  leaves hold at least one 60th of the channel's rows (10 to 50), with one column per category.
  Boosting fits the noise of a few thousand 0/1 outcomes (in the learning benchmark a call group
  with a true effect of +0.16 got estimates of 0.11 +- 0.09, half of it below the call's
  break-even); the forest's average of many trees holds such groups together (0.15 +- 0.04).
  Above ``FOREST_MAX_ROWS`` boosting's noise averages out and it is much faster to fit and to
  score a million customers;
- ``"pooled"``: ONE outcome model on every row with the channel as a feature (an S-learner),
  which shares everything between channels and shrinks their differences.

Learners (``estimator``): ``"gradient_boosting"`` (default; ``HistGradientBoosting*`` with native
categorical columns: thresholds and interactions of features, as real effects have them) or
``"logistic"`` (``LogisticRegression`` on scaled numbers and one-hot columns; pooled: plus a one-hot
of the channel and every channel x feature interaction, so each channel has its own slopes).
Features are chosen and prepared as in ``ResponseModel`` (its feature choice, kinds and checks).

With ``weighting="propensity"`` rows are weighted by ``1 / propensity`` (``fit(...,
propensity=arm_propensity x channel_propensity)``) where it is given and finite, clipped at
``max_weight`` (inverse propensity weighting), for choices the customer columns do not explain;
by default (``"none"``) every row weighs 1: the engine chooses channels from the customer
columns (and random draws), so each arm's outcome model is unbiased without weights and the
weights would only add variance. The off-policy evaluation (``learning.evaluation``) is where
the propensities are needed.

``effects_frame(frame)`` gives a DataFrame with one column per channel; ``score_frame(frame)``
the best channel's effect (so a ``scores:`` selection works unchanged) and ``effects_of(frame,
channels)`` the effects in a given channel order (NaN for a channel the model never saw).
``support_`` says what each channel's estimate rests on (treated rows and responders, the
pooled control rows, the effective number of rows after weighting).

Training needs, for the control group, at least ``MIN_CONTROL_ROWS`` rows and ``MIN_CLASS_ROWS``
responders and non-responders, and, for every channel, ``MIN_GROUP_ROWS`` rows and
``MIN_CHANNEL_CLASS_ROWS`` responders and non-responders; otherwise a ``ValueError`` says which
group fell short, with how many, and what is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from orchestrator.scoring.response import (
    ESTIMATORS,
    MAX_CATEGORIES,
    MIN_CATEGORY_SHARE,
    MIN_CLASS_ROWS,
    MISSING_CATEGORY,
    ResponseModel,
    TabularInput,
    kind_of_series,
    parse_target,
)
from orchestrator.scoring.uplift import MIN_GROUP_ROWS

__all__ = [
    "APPROACHES",
    "WEIGHTINGS",
    "CONTROL",
    "MAX_WEIGHT",
    "MIN_CHANNEL_CLASS_ROWS",
    "MIN_CONTROL_ROWS",
    "ChannelUpliftModel",
    "ips_weights",
]

CONTROL = "control"
"""The channel label of the control group (no contact); ``None`` and ``""`` mean the same."""
APPROACHES = ("t_learner", "x_learner", "pooled")
WEIGHTINGS = ("propensity", "none")
MAX_WEIGHT = 20.0
MIN_CONTROL_ROWS = 200
"""Control customers with outcomes the no-contact arm needs: every channel's effect is measured against it."""
MIN_CHANNEL_CLASS_ROWS = 5
"""Responders (and non-responders) a channel needs: fewer than ``MIN_CLASS_ROWS``, since the control
arm is pooled over every channel, but not so few that its effect is noise."""

_BOOSTING = {  # small, regularised trees: effects are differences of noisy probabilities
    "learning_rate": 0.1,
    "max_iter": 100,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "n_iter_no_change": 20,
}
FOREST_TREES = 100
FOREST_LEAF_SHARE = 60
"""The X-learner's forest keeps at least one ``FOREST_LEAF_SHARE``-th of a channel's treated rows in a
leaf (within ``FOREST_LEAF_ROWS``): fine enough for a group of 400 visits, smooth enough for 3,000 calls."""
FOREST_LEAF_ROWS = (10, 50)
FOREST_MAX_ROWS = 50_000
"""Channels with more treated rows than this have their effects smoothed by boosting, not the forest."""


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


def _effective_rows(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted rows."""
    total = float(weights.sum())
    return total * total / float((weights * weights).sum()) if len(weights) else 0.0


class ChannelUpliftModel(TabularInput, BaseEstimator):
    """The incremental effect of each channel per customer (see the module docstring).

    Parameters
    ----------
    features : sequence of str or None
        Columns to learn from; ``None``: every usable column of ``X`` (as ``ResponseModel``).
    exclude : sequence of str
        Columns never to learn from.
    estimator : "gradient_boosting" or "logistic"
    approach : "x_learner" (default), "t_learner" or "pooled"
    weighting : "none" or "propensity"
        ``"none"`` (default): every row weighs 1; ``"propensity"``: rows weigh ``1 / propensity``
        (clipped at ``max_weight``). An arm's outcome model needs no weights where the channel was
        chosen from the customer's columns alone, as the engine's allocation and its random draws
        choose: the weights then only add variance (explored rows weigh up to 20 times the others;
        in the learning benchmark that cost up to a third of the value). They correct a choice the
        columns do not explain; the off-policy evaluation always uses the propensities.
    max_weight : float
        Inverse propensity weights are clipped at this.
    random_state : int
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        estimator: str = "gradient_boosting",
        approach: str = "x_learner",
        max_weight: float = MAX_WEIGHT,
        random_state: int = 0,
        weighting: str = "none",
    ):
        self.features = features
        self.exclude = exclude
        self.estimator = estimator
        self.approach = approach
        self.max_weight = max_weight
        self.weighting = weighting
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
        for parameter, allowed in (("estimator", ESTIMATORS), ("approach", APPROACHES), ("weighting", WEIGHTINGS)):
            if getattr(self, parameter) not in allowed:
                raise ValueError(
                    f"The '{parameter}' parameter of ChannelUpliftModel must be one of {', '.join(allowed)}. "
                    f"Got {getattr(self, parameter)!r} instead."
                )
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame with named columns; got {type(X).__name__}")
        labels = _channel_labels(channel)
        y = parse_target(y, str(getattr(y, "name", None) or "target"))
        if not (len(X) == len(labels) == len(y)):
            raise ValueError(f"X has {len(X)} rows, channel {len(labels)} and y {len(y)}; they must match")
        weights = ips_weights(propensity if self.weighting == "propensity" else None, len(X), self.max_weight)
        self.channels_ = sorted(str(c) for c in set(labels.tolist()) - {CONTROL})
        self.thin_ = _check_groups(labels, y, self.channels_)
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
        base.pipeline_ = Pipeline([])  # only its feature checks and preparation are used
        self.base_model_ = base
        self.features_ = features
        self.feature_kinds_ = kinds
        self.ignored_ = ignored
        self.n_features_in_ = len(features)
        self.columns_ = _columns(kinds, self.estimator)
        Z = np.asarray(self.columns_.fit_transform(base._prepare(X)), dtype=np.float64)  # one pass over X
        codes = self._codes(labels)
        self.weighted_ = propensity is not None and self.weighting == "propensity"
        self.support_ = _support(labels, y, weights, self.channels_, self.thin_, self.approach)
        if self.approach == "pooled" or self.thin_:
            self.classifier_ = self._classifier(pooled=True)
            self.classifier_.fit(self._design(Z, codes), y, sample_weight=weights)
        if self.approach == "pooled":
            return self
        self.arm_models_ = [
            None
            if arm and self.channels_[arm - 1] in self.thin_
            else self._classifier().fit(Z[codes == arm], y[codes == arm], sample_weight=weights[codes == arm])
            for arm in range(len(self.channels_) + 1)
        ]
        if self.approach == "x_learner":
            self._fit_second_stage(Z, codes, y, weights)
        return self

    def effects_frame(self, frame: pd.DataFrame, *, check: bool = True) -> pd.DataFrame:
        """One column per channel the model learned: ``P(y | channel, x) - P(y | control, x)`` per row."""
        return self._effects(frame, check, spread=False)[0]

    def spread_frame(self, frame: pd.DataFrame, *, check: bool = True) -> pd.DataFrame:
        """How uncertain each effect of ``effects_frame`` is, per row and channel: the standard deviation of
        the X-learner forest's trees (times the forest's weight in the blend), 0 where no forest estimates
        the channel (boosting, the logistic learner, the T-learner and pooled approaches, thin channels).

        Not a confidence interval: a forest's trees disagree where the rows behind a customer are few or
        noisy, which is where more data would change the estimate most (``learning.optimism``)."""
        return self._effects(frame, check, spread=True)[1]

    def effects_of(self, frame: pd.DataFrame, channels: Sequence[str], *, check: bool = True) -> np.ndarray:
        """``(n, len(channels))`` effects in the order of ``channels``; NaN for a channel the model never saw."""
        return _in_order(self.effects_frame(frame, check=check), channels, len(frame))

    def effects_and_spread_of(
        self, frame: pd.DataFrame, channels: Sequence[str], *, check: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """``effects_of`` and the ``spread_frame`` in the same order (one pass over the trees)."""
        effects, spread = self._effects(frame, check, spread=True)
        return _in_order(effects, channels, len(frame)), np.nan_to_num(_in_order(spread, channels, len(frame)))

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

    def _effects(self, frame: pd.DataFrame, check: bool, *, spread: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The effects (and, if ``spread``, their spread; zeros otherwise) per channel the model learned."""
        self._check_fitted()
        self._check_frame(frame, check)
        if len(frame) == 0:
            empty = pd.DataFrame({c: np.empty(0) for c in self.channels_})
            return empty, empty.copy()
        Z = self._transform(frame)
        thin = getattr(self, "thin_", [])
        zeros = np.zeros(len(Z))
        spreads = dict.fromkeys(self.channels_, zeros)
        effects: dict[str, np.ndarray] = {}
        if thin:  # channels with few outcomes: the pooled model's effect, shrunk toward the other channels
            pooled = self._pooled_probability(Z, 0)
            for j, c in enumerate(self.channels_):
                if c in thin:
                    effects[c] = self._pooled_probability(Z, j + 1) - pooled
        if self.approach == "x_learner":
            for c, (tau0, tau1, share) in zip(self.channels_, self.second_stage_, strict=True):
                if c in thin:
                    continue
                treated, deviation = _forest_mean_and_spread(tau1, Z) if spread else (tau1.predict(Z), zeros)
                effects[c] = share * tau0.predict(Z) + (1 - share) * treated
                spreads[c] = (1 - share) * deviation
        else:
            control = self._arm_probability(Z, 0)
            for j, c in enumerate(self.channels_):
                if c not in thin:
                    effects[c] = self._arm_probability(Z, j + 1) - control
        return pd.DataFrame({c: effects[c] for c in self.channels_}), pd.DataFrame(spreads)

    def _check_fitted(self) -> None:
        if not hasattr(self, "classifier_") and not hasattr(self, "arm_models_"):
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

    def _categorical(self) -> np.ndarray:
        """Which transformed columns are categories (gradient boosting treats them natively)."""
        names = self.columns_.get_feature_names_out()
        return np.array([self.feature_kinds_.get(str(name)) != "number" for name in names], dtype=bool)

    def _classifier(self, *, pooled: bool = False):
        if self.estimator == "logistic":
            return LogisticRegression(max_iter=3000, random_state=self.random_state)
        categorical = self._categorical()
        if pooled:
            categorical = np.append(categorical, True)  # the channel code
        return HistGradientBoostingClassifier(
            categorical_features=categorical if categorical.any() else None,
            random_state=self.random_state,
            **_BOOSTING,
        )

    def _regressor(self):
        if self.estimator == "logistic":
            return Ridge(alpha=1.0)
        categorical = self._categorical()
        return HistGradientBoostingRegressor(
            categorical_features=categorical if categorical.any() else None,
            random_state=self.random_state,
            **_BOOSTING,
        )

    def _effect_regressor(self, rows: int):
        """The X-learner's regression of the treated rows' imputed effects: with gradient boosting as the
        learner a random forest up to ``FOREST_MAX_ROWS`` rows and boosting above (see the module
        docstring), ``Ridge`` with the logistic one."""
        if self.estimator == "logistic":
            return Ridge(alpha=1.0)
        if rows > FOREST_MAX_ROWS:
            return self._regressor()
        forest = RandomForestRegressor(
            n_estimators=FOREST_TREES,
            min_samples_leaf=int(np.clip(rows // FOREST_LEAF_SHARE, *FOREST_LEAF_ROWS)),
            max_features=1.0,
            n_jobs=-1,
            random_state=self.random_state,
        )
        categorical = np.flatnonzero(self._categorical())
        if not len(categorical):
            return forest
        # a forest splits category codes as numbers: four territories of fifteen would be cut out of
        # their neighbours' codes; one column per category lets a split take exactly them
        onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        columns = ColumnTransformer([("category", onehot, categorical.tolist())], remainder="passthrough")
        return Pipeline([("onehot", columns), ("forest", forest)])

    def _arm_probability(self, Z: np.ndarray, arm: int) -> np.ndarray:
        if self.approach == "pooled":
            return self._pooled_probability(Z, arm)
        model = self.arm_models_[arm]
        assert model is not None, "a thin channel is estimated by the pooled model"
        return model.predict_proba(Z)[:, 1]

    def _pooled_probability(self, Z: np.ndarray, arm: int) -> np.ndarray:
        design = self._design(Z, np.full(len(Z), arm, dtype=np.int64))
        return self.classifier_.predict_proba(design)[:, 1]

    def _fit_second_stage(self, Z: np.ndarray, codes: np.ndarray, y: np.ndarray, weights: np.ndarray) -> None:
        """X-learner: regress the imputed individual effects of each channel's treated rows and of the
        control rows, blended by the channel's weighted share of (channel + control) rows."""
        control = codes == 0
        mu0 = self._arm_probability(Z[~control], 0)
        untreated = np.full(len(Z), np.nan)
        untreated[~control] = mu0
        self.second_stage_: list[tuple[Any, Any, float]] = []
        for j, channel in enumerate(self.channels_):
            if channel in self.thin_:
                self.second_stage_.append((None, None, 0.0))
                continue
            treated = codes == j + 1
            imputed_treated = y[treated] - untreated[treated]
            imputed_control = self._arm_probability(Z[control], j + 1) - y[control]
            tau1 = self._effect_regressor(int(treated.sum()))
            weight = "forest__sample_weight" if isinstance(tau1, Pipeline) else "sample_weight"
            tau1.fit(Z[treated], imputed_treated, **{weight: weights[treated]})
            tau0 = self._regressor().fit(Z[control], imputed_control, sample_weight=weights[control])
            share = float(weights[treated].sum() / (weights[treated].sum() + weights[control].sum()))
            self.second_stage_.append((tau0, tau1, share))

    def _design(self, Z: np.ndarray, codes: np.ndarray) -> np.ndarray:
        if self.estimator != "logistic":
            return np.column_stack([Z, codes.astype(np.float64)])
        onehot = (codes[:, None] == np.arange(1, len(self.channels_) + 1)[None, :]).astype(np.float64)
        interactions = (onehot[:, :, None] * Z[:, None, :]).reshape(len(Z), -1)
        return np.hstack([Z, onehot, interactions])


def _in_order(frame: pd.DataFrame, channels: Sequence[str], n: int) -> np.ndarray:
    """``(n, len(channels))`` columns of ``frame`` in the order of ``channels``; NaN for one it lacks."""
    out = np.full((n, len(channels)), np.nan)
    for j, name in enumerate(channels):
        if name in frame.columns:
            out[:, j] = frame[name].to_numpy()
    return out


def _forest_mean_and_spread(regressor: Any, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fitted regressor's prediction and, for a random forest (alone or after the one-hot step), the
    standard deviation of its trees' predictions (summed tree by tree: no trees x rows array); zeros
    for any other regressor."""
    forest, X = regressor, Z
    if isinstance(regressor, Pipeline):
        forest, X = regressor.named_steps["forest"], regressor.named_steps["onehot"].transform(Z)
    if not isinstance(forest, RandomForestRegressor):
        return regressor.predict(Z), np.zeros(len(Z))
    X = np.asarray(X, dtype=np.float32)  # as the forest's own predict does
    total, squares = np.zeros(len(X)), np.zeros(len(X))
    for tree in forest.estimators_:
        predicted = tree.predict(X, check_input=False)
        total += predicted
        squares += predicted * predicted
    mean = total / len(forest.estimators_)
    return mean, np.sqrt(np.maximum(squares / len(forest.estimators_) - mean * mean, 0.0))


def _columns(kinds: Mapping[str, str], estimator: str) -> ColumnTransformer:
    """Preparation of the feature columns: for the logistic learner scaled numbers and one-hot categories
    (as ``ResponseModel``), for gradient boosting numbers as they are and categories as codes."""
    numeric = [name for name, kind in kinds.items() if kind == "number"]
    categorical = [name for name, kind in kinds.items() if kind != "number"]
    transformers: list[tuple[str, Any, list[str]]] = []
    impute = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)
    if estimator == "logistic":
        if numeric:
            scale = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
            transformers.append(("number", scale, numeric))
        if categorical:
            encoder = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=MIN_CATEGORY_SHARE,
                max_categories=MAX_CATEGORIES,
                sparse_output=False,
            )
            transformers.append(("category", Pipeline([("impute", impute), ("encode", encoder)]), categorical))
    else:
        if numeric:
            transformers.append(("number", "passthrough", numeric))  # trees take missing values as they are
        if categorical:
            codes = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                min_frequency=MIN_CATEGORY_SHARE,
                max_categories=MAX_CATEGORIES,
            )
            transformers.append(("category", Pipeline([("impute", impute), ("encode", codes)]), categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def _support(
    labels: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    channels: Sequence[str],
    thin: Sequence[str] = (),
    approach: str = "x_learner",
) -> dict[str, dict]:
    """What each channel's estimate rests on: its treated rows and responders, the control rows it is
    compared with (pooled over every channel), the effective rows after inverse propensity weights and
    how it is estimated (its own arm model, or the pooled model where it has few outcomes)."""
    control = labels == CONTROL
    support: dict[str, dict] = {}
    for channel in channels:
        mask = labels == channel
        support[channel] = {
            "treated": int(mask.sum()),
            "treated_responders": int(y[mask].sum()),
            "control": int(control.sum()),
            "control_responders": int(y[control].sum()),
            "effective_treated": round(_effective_rows(weights[mask]), 1),
            "estimate": (
                "pooled: one model of every channel (few outcomes of its own)"
                if channel in thin
                else "pooled: one model of every channel"
                if approach == "pooled"
                else f"{approach}: its own outcome model against the pooled control group"
            ),
        }
    return support


def _check_groups(labels: np.ndarray, y: np.ndarray, channels: Sequence[str]) -> list[str]:
    """The control group needs enough rows, responders and non-responders, or nothing can be measured;
    channels that fall short of their own minimum are returned (estimated by the pooled model), unless
    every channel does."""
    if not channels:
        raise ValueError("a channel uplift model needs treated customers with their channel; there are none")
    short: dict[str, str] = {}
    for group in [CONTROL, *channels]:
        mask = labels == group
        rows, responders = int(mask.sum()), int(y[mask].sum())
        what = "the control group" if group == CONTROL else f"channel {group}"
        least_rows = MIN_CONTROL_ROWS if group == CONTROL else MIN_GROUP_ROWS
        least = MIN_CLASS_ROWS if group == CONTROL else MIN_CHANNEL_CLASS_ROWS
        if rows < least_rows or min(responders, rows - responders) < least:
            short[group] = (
                f"too few outcomes for {what}: {rows:,} customer(s), {responders:,} responder(s) and "
                f"{rows - responders:,} non-responder(s); a channel uplift model needs at least {least_rows:,} "
                f"customers and {least} responders and non-responders in {what}"
            )
    if CONTROL in short:
        raise ValueError(short[CONTROL])
    if len(short) == len(channels):
        raise ValueError("; ".join(short.values()))
    return [c for c in channels if c in short]
