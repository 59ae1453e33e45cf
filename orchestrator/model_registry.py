"""The model registry: trained scoring models saved as files and described in ``model_versions``.

- ``register(engine, settings, name, model, metrics, fingerprint, target, rows)`` saves the fitted
  model with joblib as ``<data_dir>/models/<name>/v<version>.joblib`` (version = the name's highest
  + 1, starting at 1) and inserts its ``ModelVersion`` row (features with their kinds, holdout
  metrics, training rows, data fingerprint, stage ``champion`` unless told otherwise).
- ``get(engine, name, version=None)``: that version, or the newest champion. An unknown name raises
  ``ModelNotFound`` with "did you mean" among the registered names; an unknown version lists the
  versions there are.
- ``load(settings, record)``: the fitted ``ResponseModel`` of a record.
- ``list_models(engine)``: every version, by name then version.

Scoring customers with a registered model is ``orchestrator.scoring.score_customers``.
"""

from __future__ import annotations

import os
import re
import uuid

import joblib
import sqlalchemy as sa
from sqlmodel import Session, select

from orchestrator.models import ModelVersion
from orchestrator.problems import did_you_mean
from orchestrator.scoring import ResponseModel
from orchestrator.settings import Settings

__all__ = ["ModelNotFound", "get", "list_models", "load", "register"]

MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
STAGES = ("champion", "challenger", "retired")


class ModelNotFound(LookupError):
    """No registered model (or version) by that name."""


def _check_name(name: str) -> str:
    if not MODEL_NAME.match(name):
        raise ValueError(
            f"model name '{name}' is not allowed: use lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit, at most 100 characters"
        )
    return name


def register(
    engine: sa.Engine,
    settings: Settings,
    name: str,
    model: ResponseModel,
    metrics: dict,
    training_frame_fingerprint: str,
    target: str,
    rows: int,
    *,
    kind: str = "response",
    stage: str = "champion",
) -> ModelVersion:
    """Save ``model`` as the next version of ``name`` and record it; returns the new row."""
    _check_name(name)
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")
    if not hasattr(model, "features_"):
        raise ValueError("only a fitted model can be registered; call fit(X, y) first")
    features = [{"name": feature, "kind": model.feature_kinds_[feature]} for feature in model.features_]
    folder = settings.paths.data_dir / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{uuid.uuid4().hex}.partial"
    joblib.dump(model, partial)
    try:
        tried = 0
        for _attempt in range(20):
            with Session(engine) as session:
                latest = session.exec(
                    select(sa.func.max(ModelVersion.version)).where(ModelVersion.name == name)
                ).one()
                version = max((latest or 0) + 1, tried + 1)
                tried = version
                path = folder / f"v{version}.joblib"
                try:
                    os.link(partial, path)  # never overwrites another registration's file
                except FileExistsError:
                    continue
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
                    stage=stage,
                )
                session.add(record)
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


def get(engine: sa.Engine, name: str, version: int | None = None) -> ModelVersion:
    """The ``version`` of model ``name``, or its newest champion when ``version`` is ``None``."""
    with Session(engine) as session:
        records = session.exec(select(ModelVersion).where(ModelVersion.name == name).order_by(ModelVersion.version)).all()
        if not records:
            names = session.exec(select(ModelVersion.name).distinct()).all()
            listed = f" (registered: {', '.join(sorted(names))})" if names else " (no model is registered yet; train one with `campaign models train`)"
            raise ModelNotFound(f"there is no model '{name}'{did_you_mean(name, names)}{listed}")
        versions = ", ".join(f"{r.version} ({r.stage})" for r in records)
        if version is None:
            champions = [r for r in records if r.stage == "champion"]
            if not champions:
                raise ModelNotFound(f"model '{name}' has no champion version; give a version: {versions}")
            chosen = champions[-1]
        else:
            chosen = next((r for r in records if r.version == version), None)
            if chosen is None:
                raise ModelNotFound(f"model '{name}' has no version {version}; versions: {versions}")
        session.expunge(chosen)
        return chosen


def load(settings: Settings, record: ModelVersion) -> ResponseModel:
    """The fitted model saved for ``record``."""
    path = settings.paths.data_dir / record.artefact
    if not path.is_file():
        raise ModelNotFound(
            f"the file of model '{record.name}' version {record.version} is missing: {path} "
            f"(is CAMPAIGN_PATHS_DATA_DIR the folder it was trained in?)"
        )
    model = joblib.load(path)
    if not isinstance(model, ResponseModel) or list(model.features_) != [f["name"] for f in record.features]:
        raise ModelNotFound(f"{path} does not hold model '{record.name}' version {record.version}")
    return model


def list_models(engine: sa.Engine) -> list[ModelVersion]:
    """Every registered version, by name then version."""
    with Session(engine) as session:
        records = session.exec(select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)).all()
        for record in records:
            session.expunge(record)
        return list(records)
