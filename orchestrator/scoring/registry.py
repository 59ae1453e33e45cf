"""The model registry: trained scoring models saved as files and described in ``model_versions``.

Every name has at most one **champion**, the version campaigns score with; new versions can wait
beside it as **challengers** until they prove better; a champion that was replaced is
**retired**.

- ``register(engine, settings, name, model, metrics, fingerprint, target, rows, *, kind, stage,
  lineage, validation_metric, validation_score)`` saves the fitted model with joblib as
  ``<data_dir>/models/<name>/v<version>.joblib`` (version = the name's highest + 1, starting at 1)
  and inserts its ``ModelVersion`` row (features with their kinds, holdout metrics, training rows,
  data fingerprint, lineage, validation score). The first version of a name is the champion
  whatever ``stage`` says; ``stage="challenger"`` leaves the champion as it is. ``stage="champion"``
  (the default, kept for existing callers) records one more champion without retiring the
  earlier one; ``promote`` is the way to replace a champion.
- ``promote(engine, name, version, *, force=False)``: that version becomes the champion and the
  champion before it is retired, in one transaction that locks the name's rows first, so there is
  never a moment with two or no champions, and concurrent promotions end with exactly one.
  A retired version is promoted again only with ``force``.
- ``decide(engine, name, version, *, margin)``: a challenger replaces the champion when its
  ``validation_score`` is at least the champion's plus ``margin`` (same ``validation_metric``
  required); ``promote_if_better`` decides and promotes in one transaction.
- ``compare(engine, name, versions=None)``: validation metric and score, rows, training window,
  stage and dates of versions side by side.
- ``get(engine, name, version=None)``: that version, or the newest champion. An unknown name raises
  ``ModelNotFound`` with "did you mean" among the registered names; an unknown version lists the
  versions there are.
- ``load(settings, record)``: the fitted model of a record: any estimator with ``features_`` and
  ``score_frame`` (``scoring.ResponseModel``, ``uplift.UpliftModel``).
- ``list_models(engine)``: every version, by name then version.

**Lineage** is a JSON object per version; the keys the engine writes and shows are
``training_window`` (``{"from": date, "to": date}``), ``waves``, ``rows``, ``outcome`` (definition),
``validation`` (scheme), ``code_version`` (package version + git commit) and ``parent_version``
(the champion when the version was registered). ``register`` fills ``rows``, ``code_version`` and
``parent_version`` when the caller does not; dates and other values become JSON (ISO dates).

Scoring customers with a registered model is ``orchestrator.scoring.customers.score_customers``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import joblib
import sqlalchemy as sa
from sqlmodel import Session, col, select

from orchestrator.db import audit
from orchestrator.db.bulk import driver_connection
from orchestrator.db.tables import ModelVersion, table_of, utcnow
from orchestrator.errors import did_you_mean
from orchestrator.settings import Settings

__all__ = [
    "Decision",
    "MetricMismatch",
    "ModelNotFound",
    "PromotionRefused",
    "ScoringModel",
    "code_version",
    "compare",
    "decide",
    "get",
    "list_models",
    "load",
    "promote",
    "promote_if_better",
    "register",
]

MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
STAGES = ("champion", "challenger", "retired")
PACKAGE = "campaign-orchestrator"


class ModelNotFound(LookupError):
    """No registered model (or version) by that name."""


class PromotionRefused(ValueError):
    """The version cannot be promoted as asked (e.g. it is retired and ``force`` was not given)."""


class MetricMismatch(ValueError):
    """Challenger and champion cannot be compared: different or missing validation metrics or scores."""


@runtime_checkable
class ScoringModel(Protocol):
    """What the registry stores and scoring uses: a fitted estimator with its feature list."""

    features_: list[str]
    feature_kinds_: dict[str, str]

    def score_frame(self, frame: Any, *, check: bool = True) -> Any: ...

    def check_kinds(self, kinds: Mapping[str, str | None]) -> None: ...


def _check_name(name: str) -> str:
    if not MODEL_NAME.match(name):
        raise ValueError(
            f"model name '{name}' is not allowed: use lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit, at most 100 characters"
        )
    return name


# --- lineage ------------------------------------------------------------------------------


@functools.cache
def code_version() -> str:
    """The installed package version plus the git commit of the checkout when there is one, e.g. ``0.1.0+6f3c2a1``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version(PACKAGE)
    except PackageNotFoundError:
        package = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{package}+{commit}" if commit else package


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if hasattr(value, "item") and callable(value.item):  # numpy / pandas scalars
        return value.item()
    if hasattr(value, "isoformat"):  # pandas.Timestamp and the like
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON: {value!r}")


def _lineage(lineage: Mapping[str, Any] | None, rows: int, parent: int | None) -> dict:
    try:
        stored = json.loads(json.dumps(dict(lineage or {}), default=_json_value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"lineage must be a JSON object (dates, numbers, text, lists): {exc}") from exc
    stored.setdefault("rows", rows)
    stored.setdefault("code_version", code_version())
    stored.setdefault("parent_version", parent)
    return stored


# --- register -----------------------------------------------------------------------------


def register(
    engine: sa.Engine,
    settings: Settings,
    name: str,
    model: ScoringModel,
    metrics: dict,
    training_frame_fingerprint: str,
    target: str,
    rows: int,
    *,
    kind: str = "response",
    stage: str = "champion",
    lineage: Mapping[str, Any] | None = None,
    validation_metric: str | None = None,
    validation_score: float | None = None,
) -> ModelVersion:
    """Save ``model`` as the next version of ``name`` and record it; returns the new row.

    The first version of a name becomes the champion whatever ``stage`` says; see the module
    docstring for the stages and the lineage keys.
    """
    _check_name(name)
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")
    if not hasattr(model, "features_") or not hasattr(model, "score_frame"):
        raise ValueError("only a fitted model with score_frame can be registered; call fit(...) first")
    if validation_score is not None:
        validation_score = float(validation_score)
        if not math.isfinite(validation_score):
            raise ValueError(f"validation_score must be a finite number; got {validation_score}")
        if not validation_metric:
            raise ValueError("a validation_score needs its validation_metric (e.g. 'roc_auc' or 'qini_auc')")
    features = [{"name": feature, "kind": model.feature_kinds_[feature]} for feature in model.features_]
    folder = settings.paths.data_dir / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{uuid.uuid4().hex}.partial"
    joblib.dump(model, partial)
    try:
        tried = 0
        for _attempt in range(20):
            with Session(engine) as session:
                latest = session.exec(select(sa.func.max(ModelVersion.version)).where(ModelVersion.name == name)).one()
                champion = session.exec(
                    select(sa.func.max(ModelVersion.version)).where(
                        ModelVersion.name == name, ModelVersion.stage == "champion"
                    )
                ).one()
                version = max((latest or 0) + 1, tried + 1)
                tried = version
                path = folder / f"v{version}.joblib"
                try:
                    os.link(partial, path)  # never overwrites another registration's file
                except FileExistsError:
                    continue
                # Version 1 is unique per name, so of two first registrations only one is the champion.
                chosen = "champion" if version == 1 else stage
                now = utcnow()
                record = ModelVersion(
                    name=name,
                    version=version,
                    kind=kind,
                    target=target,
                    features=features,
                    metrics=metrics,
                    training_rows=rows,
                    data_fingerprint=training_frame_fingerprint,
                    artefact=path.relative_to(settings.paths.data_dir).as_posix(),
                    stage=chosen,
                    created_at=now,
                    lineage=_lineage(lineage, rows, champion),
                    validation_metric=validation_metric,
                    validation_score=validation_score,
                    promoted_at=now if chosen == "champion" else None,
                )
                session.add(record)
                if chosen == "champion":  # the first version of a model: its champion from the start
                    audit.record(
                        session.connection(),
                        actor=audit.current_actor(),
                        action="model-promote",
                        subject=f"model {name} version {version} (first champion)",
                        counts={"retired": 0},
                        details={"model": name, "version": version, "forced": 0},
                    )
                try:
                    session.commit()
                except sa.exc.IntegrityError:  # another process took this version number meanwhile
                    session.rollback()
                    path.unlink(missing_ok=True)
                    continue
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
                session.refresh(record)
                session.expunge(record)
                return record
    finally:
        partial.unlink(missing_ok=True)
    raise RuntimeError(f"could not register model '{name}': the version number kept being taken")


# --- reading ------------------------------------------------------------------------------


def _unknown_name(name: str, names: Sequence[str]) -> ModelNotFound:
    listed = (
        f" (registered: {', '.join(sorted(names))})"
        if names
        else " (no model is registered yet; train one with `campaign models train`)"
    )
    return ModelNotFound(f"there is no model '{name}'{did_you_mean(name, names)}{listed}")


def _versions_text(records: Sequence[Any]) -> str:
    return ", ".join(f"{r.version} ({r.stage})" for r in records)


def _unknown_version(name: str, version: int, records: Sequence[Any]) -> ModelNotFound:
    return ModelNotFound(f"model '{name}' has no version {version}; versions: {_versions_text(records)}")


def get(engine: sa.Engine, name: str, version: int | None = None) -> ModelVersion:
    """The ``version`` of model ``name``, or its newest champion when ``version`` is ``None``."""
    with Session(engine) as session:
        records = session.exec(
            select(ModelVersion).where(ModelVersion.name == name).order_by(col(ModelVersion.version))
        ).all()
        if not records:
            raise _unknown_name(name, session.exec(select(ModelVersion.name).distinct()).all())
        chosen: ModelVersion | None
        if version is None:
            champions = [r for r in records if r.stage == "champion"]
            if not champions:
                raise ModelNotFound(
                    f"model '{name}' has no champion version; give a version: {_versions_text(records)}"
                )
            chosen = champions[-1]
        else:
            chosen = next((r for r in records if r.version == version), None)
            if chosen is None:
                raise _unknown_version(name, version, records)
        session.expunge(chosen)
        return chosen


def load(settings: Settings, record: ModelVersion) -> ScoringModel:
    """The fitted model saved for ``record`` (a response or an uplift model, or any with ``score_frame``)."""
    path = settings.paths.data_dir / record.artefact
    if not path.is_file():
        raise ModelNotFound(
            f"the file of model '{record.name}' version {record.version} is missing: {path} "
            f"(is CAMPAIGN_PATHS_DATA_DIR the folder it was trained in?)"
        )
    model = joblib.load(path)
    features = getattr(model, "features_", None)
    if (
        not callable(getattr(model, "score_frame", None))
        or features is None
        or list(features) != [f["name"] for f in record.features]
    ):
        raise ModelNotFound(f"{path} does not hold model '{record.name}' version {record.version}")
    return model


def list_models(engine: sa.Engine) -> list[ModelVersion]:
    """Every registered version, by name then version."""
    with Session(engine) as session:
        records = session.exec(select(ModelVersion).order_by(col(ModelVersion.name), col(ModelVersion.version))).all()
        for record in records:
            session.expunge(record)
        return list(records)


def compare(engine: sa.Engine, name: str, versions: Sequence[int] | None = None) -> list[dict]:
    """The versions of ``name`` side by side (all when ``versions`` is ``None``), in the order asked.

    Each row: version, stage, kind, validation_metric, validation_score, training_rows,
    window_from, window_to, code_version, parent_version, created_at, promoted_at.
    """
    with Session(engine) as session:
        records = session.exec(
            select(ModelVersion).where(ModelVersion.name == name).order_by(col(ModelVersion.version))
        ).all()
        if not records:
            raise _unknown_name(name, session.exec(select(ModelVersion.name).distinct()).all())
    by_version = {r.version: r for r in records}
    if versions is None or len(versions) == 0:
        chosen = list(records)
    else:
        missing = [v for v in versions if v not in by_version]
        if missing:
            raise _unknown_version(name, missing[0], records)
        chosen = [by_version[v] for v in dict.fromkeys(versions)]
    rows = []
    for record in chosen:
        lineage = record.lineage or {}
        window = lineage.get("training_window") or {}
        rows.append(
            {
                "version": record.version,
                "stage": record.stage,
                "kind": record.kind,
                "validation_metric": record.validation_metric,
                "validation_score": record.validation_score,
                "training_rows": record.training_rows,
                "window_from": window.get("from"),
                "window_to": window.get("to"),
                "code_version": lineage.get("code_version"),
                "parent_version": lineage.get("parent_version"),
                "created_at": record.created_at,
                "promoted_at": record.promoted_at,
            }
        )
    return rows


# --- promotion ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Whether challenger ``version`` should replace the champion, and why (one line)."""

    name: str
    version: int
    champion_version: int | None
    metric: str | None
    challenger_score: float | None
    champion_score: float | None
    margin: float
    verdict: Literal["promote", "keep"]
    reason: str

    @property
    def promote(self) -> bool:
        return self.verdict == "promote"


_COLUMNS = sa.select(
    col(ModelVersion.id),
    col(ModelVersion.version),
    col(ModelVersion.stage),
    col(ModelVersion.validation_metric),
    col(ModelVersion.validation_score),
)


@contextmanager
def _write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that holds the write lock from its start on SQLite (rows are locked on PostgreSQL)."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite" and not driver_connection(conn).in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits (busy_timeout) for another writer, never upgrades later
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def _locked_versions(conn: sa.Connection, name: str) -> list[Any]:
    """Every version of ``name``, its rows locked until the transaction ends (FOR UPDATE)."""
    rows = conn.execute(
        _COLUMNS.where(col(ModelVersion.name) == name).order_by(col(ModelVersion.version)).with_for_update()
    ).all()
    if not rows:
        names = conn.execute(sa.select(col(ModelVersion.name)).distinct()).scalars().all()
        raise _unknown_name(name, names)
    return list(rows)


def _pick(name: str, version: int, rows: Sequence[Any]) -> Any:
    chosen = next((r for r in rows if r.version == version), None)
    if chosen is None:
        raise _unknown_version(name, version, rows)
    return chosen


def _promote_locked(conn: sa.Connection, name: str, version: int, rows: Sequence[Any], *, force: bool) -> None:
    chosen = _pick(name, version, rows)
    others = [r.version for r in rows if r.stage == "champion" and r.version != version]
    if chosen.stage == "champion" and not others:
        return  # already the only champion
    if chosen.stage == "retired" and not force:
        raise PromotionRefused(
            f"model '{name}' version {version} is retired; promote it again with force=True (--force)"
        )
    table = table_of(ModelVersion)
    conn.execute(
        sa.update(table)
        .where(table.c.name == name, table.c.stage == "champion", table.c.version != version)
        .values(stage="retired")
    )
    conn.execute(sa.update(table).where(table.c.id == chosen.id).values(stage="champion", promoted_at=utcnow()))
    audit.record(  # in the promotion's transaction: the audit trail has it exactly when it happened
        conn,
        actor=audit.current_actor(),
        action="model-promote",
        subject=f"model {name} version {version}",
        counts={"retired": len(others)},
        details={"model": name, "version": version, "forced": int(force and chosen.stage == "retired")},
    )


def promote(engine: sa.Engine, name: str, version: int, *, force: bool = False) -> ModelVersion:
    """Make ``version`` the champion of ``name`` and retire the champion before it, atomically.

    Promoting the champion again changes nothing. Raises ``ModelNotFound`` for an unknown name or
    version (listing the versions there are) and ``PromotionRefused`` for a retired version
    without ``force``.
    """
    with _write_transaction(engine) as conn:
        _promote_locked(conn, name, version, _locked_versions(conn, name), force=force)
    return get(engine, name, version)


def _decide(name: str, version: int, rows: Sequence[Any], margin: float) -> Decision:
    if not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a number of 0 or more; got {margin!r}")
    challenger = _pick(name, version, rows)
    champions = [r for r in rows if r.stage == "champion"]
    champion = champions[-1] if champions else None

    def decision(verdict: Literal["promote", "keep"], reason: str) -> Decision:
        return Decision(
            name,
            version,
            None if champion is None else champion.version,
            challenger.validation_metric,
            challenger.validation_score,
            None if champion is None else champion.validation_score,
            float(margin),
            verdict,
            reason,
        )

    if champion is None:
        return decision("promote", f"model '{name}' has no champion; version {version} becomes it")
    if champion.version == version:
        return decision("keep", f"version {version} is the champion already")
    if challenger.validation_metric is None or challenger.validation_score is None:
        raise MetricMismatch(
            f"model '{name}' version {version} has no validation score to compare; register it with "
            "validation_metric and validation_score (or promote it by hand)"
        )
    if champion.validation_metric is None or champion.validation_score is None:
        raise MetricMismatch(
            f"the champion of model '{name}' (version {champion.version}) has no validation score to compare "
            f"with version {version}'s {challenger.validation_metric}; promote by hand if it should replace it"
        )
    if champion.validation_metric != challenger.validation_metric:
        raise MetricMismatch(
            f"cannot compare model '{name}' version {version} ({challenger.validation_metric}) with the champion, "
            f"version {champion.version} ({champion.validation_metric}): the validation metrics differ"
        )
    gain = challenger.validation_score - champion.validation_score
    metric = challenger.validation_metric
    wanted = f"{champion.validation_score:.4f} + margin {margin:g}"
    if gain >= margin or math.isclose(gain, margin, rel_tol=1e-9, abs_tol=1e-12):
        return decision(
            "promote", f"promote: {metric} {challenger.validation_score:.4f} >= champion v{champion.version}'s {wanted}"
        )
    return decision("keep", f"keep champion v{champion.version}: {metric} {challenger.validation_score:.4f} < {wanted}")


def decide(engine: sa.Engine, name: str, version: int, *, margin: float) -> Decision:
    """Should challenger ``version`` replace the champion? Yes when its score >= the champion's + ``margin``.

    Both need a ``validation_score`` of the same ``validation_metric`` (else ``MetricMismatch``).
    """
    with Session(engine) as session:
        rows = (
            session.connection()
            .execute(_COLUMNS.where(col(ModelVersion.name) == name).order_by(col(ModelVersion.version)))
            .all()
        )
        if not rows:
            raise _unknown_name(name, session.exec(select(ModelVersion.name).distinct()).all())
    return _decide(name, version, rows, margin)


def promote_if_better(engine: sa.Engine, name: str, version: int, margin: float) -> Decision:
    """``decide`` and, when the verdict is promote, ``promote``, in one transaction.

    The champion cannot change in between.
    """
    with _write_transaction(engine) as conn:
        rows = _locked_versions(conn, name)
        decision = _decide(name, version, rows, margin)
        if decision.promote and decision.champion_version != version:
            _promote_locked(conn, name, version, rows, force=False)
    return decision
