"""Retraining on what happened: build the training set, train a challenger, judge it, promote it or not.

``retrain`` is the plain function behind ``campaign models retrain`` and the ``retrain_model``
Prefect flow:

1. the training set of the named campaigns' waves (``training_data.training_frame``: features
   as they were at selection time, treatment, attributed outcome; open windows left out);
2. a time-ordered split: the model learns from the earlier waves and is judged on the later
   ones (with a single wave date, on a stratified holdout instead, and the lineage says so);
3. a response model (treated contacts: who converts when contacted), an uplift model (treated
   and control: who converts *because* they were contacted) or a channel uplift model
   (``scoring.channel_uplift``: the effect of EACH channel, treatment = the channel of the
   treated contact, control = the no-contact arm);
4. the challenger's validation score (ROC AUC for response models, the Qini coefficient for
   uplift models; for channel uplift models the Qini coefficient of the effect of each row's own
   channel) against the champion's score on the SAME validation rows; the challenger
   is promoted when it beats the champion by ``margin``, and otherwise stays a challenger. The
   first version of a name becomes champion;
5. every version keeps its lineage: campaigns, waves, training window, rows, outcome
   definition, validation scheme, code version, the version it was compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from orchestrator.learning.evaluation import LEVEL, Comparison, LoggedRows, allocation_policy, compare
from orchestrator.learning.training_data import TrainingSet, features_of, measure_of, split_by_time, training_frame
from orchestrator.scoring import registry
from orchestrator.settings import Settings

Kind = Literal["response", "uplift", "channel_uplift"]
METRIC = {"response": "roc_auc", "uplift": "qini_auc", "channel_uplift": "qini_auc"}
DEFAULTS: dict[str, dict[str, str]] = {
    "response": {"estimator": "logistic", "approach": "-"},
    "uplift": {"estimator": "logistic", "approach": "two_model"},
    # chosen by bench/learning_bench.py over its worlds (docs/models.md)
    "channel_uplift": {"estimator": "gradient_boosting", "approach": "x_learner"},
}


class NotEnoughData(ValueError):
    """The training set cannot train this kind of model (too few rows, one class, no control group)."""


@dataclass
class RetrainResult:
    name: str
    kind: str
    version: int
    stage: str  # of the new version after the decision
    metric: str
    challenger_score: float | None
    champion_version: int | None
    champion_score: float | None
    promoted: bool
    reason: str
    rows: int
    lineage: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    comparison: Comparison | None = None  # off-policy evaluation on the validation waves (uplift kinds)

    def as_rows(self) -> list[dict]:
        """The comparison as table rows (Prefect artifact, CLI)."""
        return [
            {
                "version": f"v{self.version} (challenger)",
                self.metric: _round(self.challenger_score),
                "stage": self.stage,
            },
            *(
                [
                    {
                        "version": f"v{self.champion_version} (champion before)",
                        self.metric: _round(self.champion_score),
                        "stage": "retired" if self.promoted else "champion",
                    }
                ]
                if self.champion_version is not None
                else []
            ),
        ]


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def retrain(
    engine: sa.Engine,
    settings: Settings,
    name: str,
    *,
    campaigns: Sequence[str],
    kind: Kind = "uplift",
    outcome: str | None = None,
    margin: float = 0.0,
    estimator: str | None = None,
    approach: str | None = None,
    exclude: Sequence[str] = (),
    as_of: date | None = None,
    validation_share: float = 0.3,
    random_state: int = 0,
    channel: str | None = None,
) -> RetrainResult:
    """Train, judge and maybe promote a new version of model ``name``; see the module docstring.

    ``channel`` keeps only the contacts of that channel (a model per campaign and channel).
    ``estimator`` and ``approach`` default to the kind's (``DEFAULTS``).
    """
    if kind not in METRIC:
        raise ValueError(f"kind must be response, uplift or channel_uplift; got {kind!r}")
    estimator = estimator or DEFAULTS[kind]["estimator"]
    approach = approach or DEFAULTS[kind]["approach"]
    as_of = as_of or date.today()
    data = training_frame(
        engine, settings, campaigns, as_of=as_of, outcome=outcome, passed_over=kind == "channel_uplift"
    )
    frame = data.frame
    if channel is not None and not frame.empty:
        frame = data.frame = frame[frame["channel"] == channel].reset_index(drop=True)
        if frame.empty:
            data.notes.append(f"no contacts on channel {channel}")
    if frame.empty:
        why = "; ".join(data.notes) or "the campaigns have no waves"
        raise NotEnoughData(f"no training data for '{name}' from {', '.join(campaigns)}: {why}")
    features = features_of(frame, exclude)
    train, validation = split_by_time(frame, validation_share)
    if validation is not None:  # judged on contacts only: customers passed over are no random group
        validation = validation[~validation["passed_over"].astype(bool)].reset_index(drop=True)
    first = None
    if kind == "response":
        model, score, metrics = _response(train, validation, frame, features, estimator, random_state)
    elif kind == "channel_uplift":
        model, first, score, metrics = _channel_uplift(
            train, validation, frame, features, estimator, approach, random_state
        )
    else:
        model, score, metrics = _uplift(train, validation, features, estimator, approach, random_state)
    champion = _champion(engine, name)
    champion_score = None
    if champion is not None and validation is not None:
        champion_score = _champion_score(settings, champion, kind, validation)
    elif champion is not None:
        champion_score = champion.validation_score
    comparison = None
    if kind != "response" and validation is not None and not (kind == "channel_uplift" and first is None):
        comparison = _off_policy(
            settings, campaigns, train, validation, features, kind, estimator, approach, first, champion, random_state
        )
        metrics["off_policy"] = comparison.as_dict()
    lineage = _lineage(
        settings, data, campaigns, kind, estimator, approach, validation, outcome, champion, channel, as_of
    )
    if hasattr(model, "support_"):
        lineage["support"] = model.support_
    stage = "challenger" if champion is not None else "champion"
    from orchestrator.scoring.response import fingerprint

    record = registry.register(
        engine,
        settings,
        name,
        model,
        metrics,
        fingerprint(frame),
        "outcome",
        len(frame),
        kind=kind,
        stage=stage,
        lineage=lineage,
        validation_metric=METRIC[kind],
        validation_score=score,
    )
    promoted, reason = stage == "champion", "the first version of this model"
    if champion is not None:
        verdict, reason = _decide(kind, score, champion, champion_score, comparison, lineage, margin)
        if verdict:
            registry.promote(engine, name, record.version)
            promoted, stage = True, "champion"
    return RetrainResult(
        name,
        kind,
        record.version,
        stage,
        METRIC[kind],
        score,
        None if champion is None else champion.version,
        champion_score,
        promoted,
        reason,
        len(frame),
        lineage,
        data.notes,
        comparison,
    )


def _champion(engine: sa.Engine, name: str):
    try:
        return registry.get(engine, name)
    except registry.ModelNotFound:
        return None


def _response(train, validation, frame, features, estimator, random_state):
    """A response model on the treated contacts; ROC AUC on the later waves' treated contacts."""
    from sklearn.metrics import roc_auc_score

    from orchestrator.scoring.response import train_response_model

    treated = frame[frame["treatment"] == 1]
    _need_both_outcomes(treated, "treated contacts")
    if validation is not None:
        train_t, val_t = train[train["treatment"] == 1], validation[validation["treatment"] == 1]
        _need_both_outcomes(train_t, "treated contacts of the training waves")
        first = train_response_model(
            train_t[features + ["outcome"]], "outcome", estimator=estimator, random_state=random_state
        )
        score = (
            float(roc_auc_score(val_t["outcome"], first.model.score_frame(val_t)))
            if val_t["outcome"].nunique() == 2
            else None
        )
        result = train_response_model(
            treated[features + ["outcome"]], "outcome", estimator=estimator, random_state=random_state
        )
        metrics = {**result.metrics, "validation": "time", "roc_auc": score}
    else:
        result = train_response_model(
            treated[features + ["outcome"]], "outcome", estimator=estimator, random_state=random_state
        )
        metrics = {**result.metrics, "validation": "holdout"}
        score = metrics.get("roc_auc")
    return result.model, score, metrics


def _uplift(train, validation, features, estimator, approach, random_state):
    """An uplift model on treated and control contacts; Qini coefficient on the later waves."""
    from orchestrator.scoring.uplift import train_uplift_model

    columns = features + ["treatment", "outcome"]
    try:
        result = train_uplift_model(
            train[columns],
            "outcome",
            "treatment",
            estimator=estimator,
            approach=approach,
            validation_frame=None if validation is None else validation[columns],
            random_state=random_state,
        )
    except ValueError as exc:
        raise NotEnoughData(str(exc)) from exc
    return (
        result.model,
        result.metrics.get("qini_auc"),
        {**result.metrics, "validation": "time" if validation is not None else "holdout"},
    )


def _channel_labels(frame: pd.DataFrame):
    """The channel of each treated row, ``CONTROL`` for the control group."""
    from orchestrator.scoring.channel_uplift import CONTROL

    return frame["channel"].where(frame["treatment"] == 1, CONTROL).fillna(CONTROL).to_numpy(dtype=object)


def _propensity(frame: pd.DataFrame):
    return (frame["arm_propensity"].astype(float) * frame["channel_propensity"].astype(float)).to_numpy()


def _own_channel_qini(model, frame: pd.DataFrame) -> float | None:
    """The Qini coefficient of the effect of each row's own channel (treated: the one it got; control: the
    one the mirrored allocation gave it; the best one where the model does not know that channel)."""
    from orchestrator.scoring.uplift import qini_auc_score

    names = list(model.channels_)
    effects = model.effects_of(frame, names)
    column = frame["channel"].map({name: j for j, name in enumerate(names)}).fillna(-1).to_numpy(dtype=np.int64)
    own = np.where(column >= 0, effects[np.arange(len(frame)), np.maximum(column, 0)], effects.max(axis=1))
    try:
        return float(qini_auc_score(frame["outcome"], own, frame["treatment"]))
    except ValueError:
        return None


def _holdout_strata(frame: pd.DataFrame) -> pd.Series | None:
    """Strata of the hold-out split: arm x passed over x outcome, so both sides get their share of each.
    A stratum with a single row cannot be split (one buyer among the passed-over customers, say): it
    joins the same arm and outcome without the passed-over distinction; None if one still has a
    single row (a plain random split)."""
    treatment, outcome = frame["treatment"].astype(int) * 4, frame["outcome"].astype(int)
    strata = treatment + frame["passed_over"].astype(int) * 2 + outcome
    strata = strata.where(strata.map(strata.value_counts()) >= 2, treatment + outcome)
    return strata if strata.value_counts().min() >= 2 else None


def _check_control_group(frame: pd.DataFrame) -> None:
    """Refuse, wave by wave, when the control group cannot show the no-contact outcome every channel's
    effect is measured against (``MIN_CONTROL_ROWS`` customers and ``MIN_CLASS_ROWS`` responders)."""
    from orchestrator.scoring.channel_uplift import MIN_CONTROL_ROWS
    from orchestrator.scoring.response import MIN_CLASS_ROWS

    control = frame[(frame["treatment"] == 0) & ~frame["passed_over"].astype(bool)]
    rows, responders = len(control), int(control["outcome"].sum())
    if rows >= MIN_CONTROL_ROWS and min(responders, rows - responders) >= MIN_CLASS_ROWS:
        return
    waves = list(dict.fromkeys(frame["wave"].astype(str)))
    per_wave = control.groupby(control["wave"].astype(str))["outcome"].agg(["size", "sum"]).reindex(waves, fill_value=0)
    said = "; ".join(
        f"wave {wave} has {int(n):,} outcomes in its control group ({int(r):,} responders)"
        for wave, (n, r) in per_wave.iterrows()
    )
    raise NotEnoughData(
        f"{said}; at least {MIN_CONTROL_ROWS:,} control customers with outcomes, {MIN_CLASS_ROWS} of them "
        f"responders and {MIN_CLASS_ROWS} not, are needed to learn the no-contact outcome every channel's effect "
        f"is measured against (now {rows:,} and {responders:,}): give the campaign a control group "
        "(control: {share: 0.1}) or a larger one, or wait for more waves"
    )


def _channel_uplift(train, validation, frame, features, estimator, approach, random_state):
    """A channel uplift model on treated and control contacts; the Qini coefficient of the own channel's effect
    on the later waves (or a stratified holdout), then a refit on every wave."""
    from sklearn.model_selection import train_test_split

    from orchestrator.scoring.channel_uplift import ChannelUpliftModel
    from orchestrator.scoring.response import HOLDOUT_SHARE

    _check_control_group(frame)

    def fit(rows: pd.DataFrame) -> ChannelUpliftModel:
        model = ChannelUpliftModel(estimator=estimator, approach=approach, random_state=random_state)
        try:
            return model.fit(rows[features], _channel_labels(rows), rows["outcome"], propensity=_propensity(rows))
        except ValueError as exc:
            raise NotEnoughData(str(exc)) from exc

    if validation is None:
        train, validation = train_test_split(
            frame, test_size=HOLDOUT_SHARE, stratify=_holdout_strata(frame), random_state=random_state
        )
        validation = validation[~validation["passed_over"].astype(bool)]
        scheme = "holdout"
    else:
        scheme = "time"
    model = fit(frame)
    try:
        first: ChannelUpliftModel | None = fit(train)
    except NotEnoughData as exc:  # the earlier waves alone are too few: the model of every wave stands unjudged
        first, scheme = None, f"none: the waves before {validation['wave_date'].min().date()} are too few ({exc})"
    score = None if first is None else _own_channel_qini(first, validation)
    metrics = {
        "validation": scheme,
        "qini_auc": score,
        "channels": list(model.channels_),
        "rows": int(len(frame)),
        "train_rows": int(len(train)),
        "validation_rows": int(len(validation)),
        "weighted": bool(model.weighted_),
        "support": model.support_,
    }
    if model.ignored_:
        metrics["ignored_columns"] = dict(model.ignored_)
    return model, first, score, metrics


def _economics(settings: Settings, campaigns: Sequence[str]) -> tuple[list[str], dict[str, float], dict[str, float]]:
    """The campaigns' channels (in rules-file order) and each one's value and cost (the first campaign
    that names a channel gives its figures)."""
    from orchestrator.rules.loader import find_campaign_file, load_campaign

    channels: list[str] = []
    values: dict[str, float] = {}
    costs: dict[str, float] = {}
    for campaign in campaigns:
        path = find_campaign_file(settings.paths.rules_dir, campaign)
        if path is None:
            continue
        for name, section in load_campaign(path, columns=None).channels.items():
            if name not in values:
                channels.append(name)
                values[name], costs[name] = float(section.value), float(section.cost)
    return channels, values, costs


def _effects(model, frame: pd.DataFrame, channels: Sequence[str]) -> np.ndarray:
    """``(n, channels)`` effects of a channel uplift model, or one model score for every channel."""
    if hasattr(model, "effects_of"):
        effects = np.asarray(model.effects_of(frame, list(channels)), dtype=float)
        if np.isnan(effects).any():  # a channel the model never saw: its best known channel's effect
            best = np.nanmax(np.where(np.isnan(effects), -np.inf, effects), axis=1)
            effects = np.where(np.isnan(effects), best[:, None], effects)
        return effects
    score = np.asarray(model.score_frame(frame), dtype=float)
    return np.repeat(score[:, None], len(channels), axis=1)


def _off_policy(
    settings, campaigns, train, validation, features, kind, estimator, approach, first, champion, random_state
) -> Comparison:
    """The challenger's targeting (fitted on the training waves only), the champion's and random, valued
    on the validation waves by IPS and DR (``evaluation``); the reward model is a channel uplift model of
    the training waves (the challenger's own first fit when it is one)."""
    from orchestrator.scoring.channel_uplift import ChannelUpliftModel

    channels, values, costs = _economics(settings, campaigns)
    logged_channels = sorted(str(c) for c in validation["channel"].dropna().unique())
    channels = channels + [c for c in logged_channels if c not in channels]
    rows = LoggedRows.of(validation, channels, values, costs)
    if first is None:
        columns = features + ["treatment", "outcome"]
        if kind == "uplift":
            from orchestrator.scoring.uplift import train_uplift_model

            try:
                first = train_uplift_model(
                    train[columns],
                    "outcome",
                    "treatment",
                    estimator=estimator,
                    approach=approach,
                    random_state=random_state,
                ).model
            except ValueError as exc:
                raise NotEnoughData(str(exc)) from exc
    reward_model = first
    if not hasattr(reward_model, "effects_of"):
        try:
            reward_model = ChannelUpliftModel(random_state=random_state).fit(
                train[features], _channel_labels(train), train["outcome"], propensity=_propensity(train)
            )
        except ValueError:
            reward_model = first  # too few rows per channel for a channel model: the challenger's one score
    reward = _effects(reward_model, validation, channels)
    own = allocation_policy(_effects(first, validation, channels), rows)
    challenger = ("challenger (fitted on the earlier waves)", own)
    incumbent = None
    if champion is not None:
        try:
            model = registry.load(settings, champion)
            theirs = allocation_policy(_effects(model, validation, channels), rows)
            incumbent = (f"champion v{champion.version}", theirs)
        except (ValueError, KeyError, OSError):  # e.g. the champion needs a feature these waves lack
            incumbent = None
    waves = sorted(f"{c}/{w}" for c, w in validation[["campaign", "wave"]].drop_duplicates().itertuples(index=False))
    return compare(rows, reward, challenger, incumbent, waves=waves, seed=random_state)


def _same_specification(champion, lineage: dict) -> bool:
    """The challenger is the champion's model (kind, estimator, approach, features) learned from more waves."""
    before = champion.lineage or {}
    waves_before = set(before.get("waves") or [])
    waves_now = set(lineage.get("waves") or [])
    return (
        champion.kind == lineage.get("kind")
        and before.get("estimator") == lineage.get("estimator")
        and before.get("approach") == lineage.get("approach")
        and bool(waves_before)
        and waves_before < waves_now
    )


def _decide(
    kind: str,
    score: float | None,
    champion,
    champion_score: float | None,
    comparison: Comparison | None,
    lineage: dict,
    margin: float,
) -> tuple[bool, str]:
    """Promote or keep, and why. With an off-policy comparison (uplift kinds, time-ordered validation): promote
    when the challenger's targeting is better with 95% confidence (the interval of the paired DR difference
    in net value per 1,000 customers lies above ``margin``), or when it is the champion's own model learned
    from more waves and not shown worse (the interval reaches 0); otherwise by the validation score."""
    if champion.kind != kind:
        return False, f"not promoted: the champion is a {champion.kind} model, this one a {kind} model"
    if comparison is not None and comparison.difference_dr is not None:
        d = comparison.difference_dr
        where = ", ".join(comparison.waves)
        if d.low > margin:
            return True, (
                f"promoted: its targeting is worth {d} more net value per 1,000 customers than the champion's on "
                f"{where} (doubly robust, {LEVEL:.0%} interval above the margin {margin:g})"
            )
        if _same_specification(champion, lineage) and d.high >= 0:
            return True, (
                f"promoted: the champion's model learned from {len(lineage['waves'])} wave(s) instead of "
                f"{len(champion.lineage.get('waves') or [])}, not worse on {where} (difference {d} per 1,000 "
                "customers, doubly robust)"
            )
        return False, (
            f"kept as challenger: its targeting is worth {d} per 1,000 customers more than the champion's on "
            f"{where}; the {LEVEL:.0%} interval does not show it better by the margin {margin:g}"
        )
    if champion_score is None or score is None:
        return False, "not promoted: the champion's score on these validation waves is unknown"
    metric = METRIC[kind]
    if score >= champion_score + margin:
        if score == champion_score:
            return True, (
                f"promoted: as good as the champion on the later waves ({metric} {score:.4f}) "
                "and trained on more of them"
            )
        return True, f"promoted: {metric} {score:.4f} >= champion's {champion_score:.4f} + margin {margin:g}"
    return False, f"kept as challenger: {metric} {score:.4f} < champion's {champion_score:.4f} + margin {margin:g}"


def _champion_score(settings: Settings, champion, kind: str, validation: pd.DataFrame) -> float | None:
    """The champion's score on the challenger's validation rows (so both are judged on the same data)."""
    try:
        model = registry.load(settings, champion)
        if kind == "channel_uplift":
            return _own_channel_qini(model, validation) if hasattr(model, "effects_of") else None
        if kind == "response":
            from sklearn.metrics import roc_auc_score

            treated = validation[validation["treatment"] == 1]
            return (
                float(roc_auc_score(treated["outcome"], model.score_frame(treated)))
                if treated["outcome"].nunique() == 2
                else None
            )
        from orchestrator.scoring.uplift import qini_auc_score

        return float(qini_auc_score(validation["outcome"], model.score_frame(validation), validation["treatment"]))
    except (ValueError, KeyError, OSError):  # e.g. the champion needs a feature these waves lack
        return None


def _need_both_outcomes(frame: pd.DataFrame, what: str) -> None:
    counts = frame["outcome"].value_counts()
    if len(frame) < 20 or len(counts) < 2:
        raise NotEnoughData(
            f"the {what} need both outcomes to learn from: {int(counts.get(1, 0))} with and {int(counts.get(0, 0))} "
            "without success; wait for more waves or a longer window"
        )


def _lineage(
    settings, data: TrainingSet, campaigns, kind, estimator, approach, validation, outcome, champion, channel, as_of
) -> dict:
    start, end = data.window
    return {
        "campaigns": list(campaigns),
        "channel": channel,
        "waves": [f"{c}/{w}" for c, w, _d in data.waves],
        "training_window": {"from": start, "to": end},
        "rows": int(len(data.frame)),
        "treated": int(data.frame["treatment"].sum()),
        "control": int(((data.frame["treatment"] == 0) & ~data.frame["passed_over"].astype(bool)).sum()),
        "passed_over": int(data.frame["passed_over"].astype(bool).sum()),
        "outcome": outcome or {c: vars(measure_of(settings, c)) for c in campaigns},
        "validation": (
            f"time-ordered: validated on waves from {validation['wave_date'].min().date().isoformat()}"
            if validation is not None
            else "stratified holdout (a single wave date)"
        ),
        "kind": kind,
        "as_of": as_of.isoformat(),
        "estimator": estimator,
        "approach": approach if kind != "response" else None,
        "compared_with": None if champion is None else champion.version,
        "code_version": registry.code_version(),
    }
