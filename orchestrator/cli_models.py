"""``campaign models``: train, list and inspect the scoring models of the registry.

- ``train --name NAME --data FILE|table:customers --target COLUMN [--exclude COL ...]
  [--estimator logistic|gradient_boosting]``: reads a CSV/Parquet file (column names normalised
  as the customer import does, e.g. ``emp.var.rate`` -> ``emp_var_rate``; either spelling is
  accepted for ``--target`` and ``--exclude``) or a customer table, measures the model on a 25 %
  stratified holdout, refits it on every row and registers it as the next version (champion).
- ``list``: every registered version with its holdout metrics.
- ``show NAME [--version N]``: one version (default: the newest champion): metrics, calibration
  table and features.

Exit status 0 on success, 1 when the data or a name is wrong (the message says why), 2 on wrong usage.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from orchestrator import progress
from orchestrator.cli_output import console, err, fail
from orchestrator.settings import get_settings

__all__ = ["models_app"]

models_app = typer.Typer(no_args_is_help=True, help="Scoring models for target-group selection.")


TABLE_PREFIX = "table:"
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Estimator(str, Enum):
    logistic = "logistic"
    gradient_boosting = "gradient_boosting"


# --- train --------------------------------------------------------------------------------


@models_app.command("train")
def train(
    name: Annotated[str, typer.Option("--name", help="Model name (lower-case letters, digits, '-', '_').")],
    data: Annotated[str, typer.Option("--data", help="CSV (optionally .gz) or Parquet file, or table:NAME for a customer table.")],
    target: Annotated[str, typer.Option("--target", help="Outcome column: yes/no, true/false or 1/0.")],
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="Column not to learn from (repeatable), e.g. one only known after the contact.")] = None,
    estimator: Annotated[Estimator, typer.Option("--estimator", help="Learning algorithm.")] = Estimator.logistic,
) -> None:
    """Train a response model, measure it on a holdout and register it as the next version."""
    import sqlalchemy as sa

    from orchestrator.customer_report import ImportFailed
    from orchestrator.database import connect
    from orchestrator.model_registry import register
    from orchestrator.scoring import train_response_model

    settings = get_settings()
    progress.enable(err)
    try:
        engine = connect(settings)
        if data.startswith(TABLE_PREFIX):
            frame, target, excluded = _read_table(engine, data.removeprefix(TABLE_PREFIX), target, exclude or [])
        else:
            frame, target, excluded = _read_file(Path(data), target, exclude or [])
        with progress.progress(f"train {name} (holdout, then refit)", 2) as advance:
            result = train_response_model(
                frame, target, exclude=excluded, estimator=estimator.value, progress=advance
            )
        record = register(engine, settings, name, result.model, result.metrics, result.fingerprint, target, result.rows)
    except (ImportFailed, ValueError, LookupError) as exc:
        raise fail(str(exc)) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise fail(f"the database refused ({type(exc).__name__}); nothing was registered") from exc
    console.print(f"[green]registered model {record.name} version {record.version}[/] ({record.stage})", highlight=False)
    _print_record(record)


def _read_file(path: Path, target: str, exclude: list[str]):  # noqa: ANN202
    from orchestrator.customer_files import read_customer_file
    from orchestrator.identifiers import normalise_name

    with progress.progress(f"read {path.name}", None):
        source = read_customer_file(path, delimiter=None, header=None, id_column=None)
        names = source.names()
        frame = source.table.rename_columns(names).to_pandas()
    if source.invalid:
        err.print(f"[yellow]{len(source.invalid)} unreadable row(s) of {path} left out[/]", highlight=False)
    spelled = dict(zip(source.originals, names, strict=True))

    def resolve(column: str) -> str:
        if column in names:
            return column
        return spelled.get(column) or normalise_name(column, 0)

    return frame, resolve(target), [resolve(column) for column in exclude]


def _read_table(engine, table: str, target: str, exclude: list[str]):  # noqa: ANN001, ANN202
    import pandas as pd

    from orchestrator.customer_table import customer_columns
    from orchestrator.scoring import iter_customer_frames

    if not _TABLE_NAME.match(table):
        raise ValueError(f"table name must match {_TABLE_NAME.pattern}; got '{table}'")
    columns = customer_columns(engine, table)
    if columns is None:
        raise LookupError(f"there is no customer table '{table}'; load one with `campaign import customers FILE`")
    with progress.progress(f"read table {table}", None) as advance:
        frames = []
        for frame in iter_customer_frames(engine, list(columns), table=table, chunk_size=50_000):
            frames.append(frame)
            advance(len(frame))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))
    return frame, target, exclude


# --- list and show ------------------------------------------------------------------------


def _figure(metrics: dict, key: str, spec: str = ".3f") -> str:
    value = metrics.get(key)
    return "-" if value is None else format(value, spec)


@models_app.command("list")
def list_command() -> None:
    """Every registered model version with its holdout metrics."""
    from orchestrator.database import connect
    from orchestrator.model_registry import list_models

    records = list_models(connect(get_settings()))
    if not records:
        console.print("no model is registered yet; train one with `campaign models train`")
        return
    table = Table(title="Scoring models (holdout metrics; lift in the top decile)")
    for column in ("name", "v", "stage", "target", "rows", "ROC AUC", "PR AUC", "lift", "trained"):
        numeric = column in ("v", "rows", "ROC AUC", "PR AUC", "lift")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column in ("name", "v", "trained"))
    for record in records:
        m = record.metrics
        table.add_row(
            record.name,
            str(record.version),
            record.stage,
            record.target,
            f"{record.training_rows:,}",
            _figure(m, "roc_auc"),
            _figure(m, "pr_auc"),
            _figure(m, "lift_top_decile", ".2f"),
            record.created_at.strftime("%Y-%m-%d"),
        )
    console.print(table)


@models_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[Optional[int], typer.Option("--version", min=1, help="Version; the newest champion when omitted.")] = None,
) -> None:
    """One model version: holdout metrics, calibration table and features."""
    from orchestrator.database import connect
    from orchestrator.model_registry import get

    try:
        record = get(connect(get_settings()), name, version)
    except LookupError as exc:
        raise fail(str(exc)) from exc
    _print_record(record)


def _print_record(record) -> None:  # noqa: ANN001
    m = record.metrics
    summary = Table(title=f"Model {record.name} version {record.version}", show_header=False)
    rows = [
        ("stage", record.stage),
        ("kind", record.kind),
        ("estimator", m.get("estimator", "-")),
        ("target", record.target),
        ("training rows (refit on all)", f"{record.training_rows:,}"),
        ("rows without target (left out)", str(m.get("rows_without_target", 0))),
        ("base rate", _figure(m, "base_rate", ".2%")),
        ("holdout rows", f"{m.get('holdout_rows', 0):,} ({_figure(m, 'holdout_share', '.0%')}, stratified)"),
        ("ROC AUC (holdout)", _figure(m, "roc_auc")),
        ("PR AUC / average precision (holdout)", _figure(m, "pr_auc")),
        ("lift in the top decile (holdout)", _figure(m, "lift_top_decile", ".2f")),
        ("data fingerprint", record.data_fingerprint[:16]),
        ("file", record.artefact),
        ("trained", record.created_at.strftime("%Y-%m-%d %H:%M:%S")),
    ]
    for label, value in rows:
        summary.add_row(label, str(value))
    console.print(summary)

    calibration = m.get("calibration") or []
    if calibration:
        table = Table(title="Calibration on the holdout (bins of equal size by score)")
        for column in ("bin", "rows", "mean predicted", "observed"):
            table.add_column(column, justify="right")
        for row in calibration:
            table.add_row(str(row["bin"]), f"{row['rows']:,}", f"{row['mean_predicted']:.3f}", f"{row['observed']:.3f}")
        console.print(table)

    features = Table(title=f"Features ({len(record.features)})")
    features.add_column("column")
    features.add_column("kind")
    for feature in record.features:
        features.add_row(feature["name"], feature["kind"])
    console.print(features)
    ignored = m.get("ignored_columns") or {}
    if ignored:
        console.print("not used: " + ", ".join(f"{k} ({v})" for k, v in ignored.items()), highlight=False)
