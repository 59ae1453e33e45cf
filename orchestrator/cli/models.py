"""``campaign models``: train, list and inspect the scoring models of the registry.

- ``train --name NAME --data FILE|table:customers --target COLUMN [--exclude COL ...]
  [--estimator auto|logistic|gradient_boosting]``: reads a CSV/Parquet file (column names normalised
  as the customer import does, e.g. ``emp.var.rate`` -> ``emp_var_rate``; either spelling is
  accepted for ``--target`` and ``--exclude``) or a customer table, measures the model on a 25 %
  stratified holdout, refits it on every row and registers it as the next version: the champion
  (the one before it is retired), or with ``--challenger`` a challenger beside the champion.
  Its validation score is the holdout ROC AUC.
- ``list``: every registered version: stage, validation score, holdout metrics, training window,
  code version.
- ``show NAME [--version N]``: one version (default: the champion): stage, validation score,
  lineage, metrics, calibration table and features.
- ``promote NAME VERSION [--force]``: that version becomes the champion, the champion before it is
  retired (one transaction). A retired version needs ``--force``; promoting the champion again
  says so and changes nothing.
- ``compare NAME [VERSION ...]``: versions side by side (all when none are given): stage,
  validation metric and score, difference to the champion, rows, training window, code version.

Exit status 0 on success, 1 when the data or a name is wrong (the message says why), 2 on wrong usage.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli.output import FORMAT_HELP, OutputFormat, console, err, fail, get_settings, print_json
from orchestrator.execution import progress

__all__ = ["models_app"]

models_app = typer.Typer(no_args_is_help=True, help="Scoring models for target-group selection.")


TABLE_PREFIX = "table:"
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Estimator(StrEnum):
    auto = "auto"
    logistic = "logistic"
    gradient_boosting = "gradient_boosting"


# --- train --------------------------------------------------------------------------------


@models_app.command("train")
def train(
    name: Annotated[str, typer.Option("--name", help="Model name (lower-case letters, digits, '-', '_').")],
    data: Annotated[
        str, typer.Option("--data", help="CSV (optionally .gz) or Parquet file, or table:NAME for a customer table.")
    ],
    target: Annotated[str, typer.Option("--target", help="Outcome column: yes/no, true/false or 1/0.")],
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Column not to learn from (repeatable), e.g. one only known after the contact."),
    ] = None,
    estimator: Annotated[
        Estimator,
        typer.Option(
            "--estimator",
            help="Learning algorithm; auto: both on the same holdout, the one with the better ROC AUC is kept.",
        ),
    ] = Estimator.auto,
    challenger: Annotated[
        bool,
        typer.Option(
            "--challenger",
            help="Register beside the champion instead of replacing it (promote later with `campaign models promote`).",
            metavar="",
        ),
    ] = False,
) -> None:
    """Train a response model, measure it on a holdout and register it as the next version."""
    import sqlalchemy as sa

    from orchestrator.customers.report import ImportFailed
    from orchestrator.db.engine import connect
    from orchestrator.scoring.registry import promote, register
    from orchestrator.scoring.response import train_response_model

    settings = get_settings()
    progress.enable(err)
    try:
        engine = connect(settings)
        if data.startswith(TABLE_PREFIX):
            frame, target, excluded = _read_table(engine, data.removeprefix(TABLE_PREFIX), target, exclude or [])
        else:
            frame, target, excluded = _read_file(Path(data), target, exclude or [])
        steps = 3 if estimator == Estimator.auto else 2
        with progress.progress(f"train {name} (holdout, then refit)", steps) as advance:
            result = train_response_model(frame, target, exclude=excluded, estimator=estimator.value, progress=advance)
        lineage = {
            "source": data,
            "rows": result.rows,
            "outcome": target,
            "excluded": excluded,
            "estimator": result.model.estimator,
            "estimator_choice": "best holdout roc_auc" if estimator == Estimator.auto else "given",
            "validation": "stratified holdout (25 %), then refit on every row",
        }
        # A challenger first, then promoted: the name never has two champions at once.
        record = register(
            engine,
            settings,
            name,
            result.model,
            result.metrics,
            result.fingerprint,
            target,
            result.rows,
            stage="challenger",
            lineage=lineage,
            validation_metric="roc_auc",
            validation_score=result.metrics.get("roc_auc"),
        )
        if not challenger and record.stage != "champion":
            record = promote(engine, name, record.version)
    except (ImportFailed, ValueError, LookupError) as exc:
        raise fail(str(exc)) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise fail(f"the database refused ({type(exc).__name__}); nothing was registered") from exc
    console.print(
        f"[green]registered model {record.name} version {record.version}[/] ({record.stage})", highlight=False
    )
    choice = result.metrics.get("estimator_choice")
    if choice:
        console.print(estimator_choice_line(choice["roc_auc"]), highlight=False)
    _print_record(record)


def estimator_choice_line(aucs: dict[str, float]) -> str:
    """Which estimator won on the holdout and by how much, e.g. ``gradient_boosting won: ROC AUC 0.801 vs ...``."""
    ranked = sorted(aucs.items(), key=lambda item: -item[1])
    (best, auc), others = ranked[0], ranked[1:]
    versus = ", ".join(f"{name} {value:.3f} (better by {auc - value:.3f})" for name, value in others)
    return f"estimator: {best} won on the holdout, ROC AUC {auc:.3f} vs {versus}"


def _read_file(path: Path, target: str, exclude: list[str]):  # noqa: ANN202
    from orchestrator.customers.files import read_customer_file
    from orchestrator.customers.identifiers import normalise_name

    with progress.progress(f"read {path.name}", None):
        source = read_customer_file(path, delimiter=None, header=None, id_column=None)
        names = source.names()
        frame = source.table.rename_columns(names).to_pandas()
    if source.invalid:
        err.print(f"[yellow]{len(source.invalid):,} unreadable row(s) of {path} left out[/]", highlight=False)
    spelled = dict(zip(source.originals, names, strict=True))

    def resolve(column: str) -> str:
        if column in names:
            return column
        return spelled.get(column) or normalise_name(column, 0)

    return frame, resolve(target), [resolve(column) for column in exclude]


def _read_table(engine, table: str, target: str, exclude: list[str]):  # noqa: ANN001, ANN202
    import pandas as pd

    from orchestrator.customers.table import customer_columns
    from orchestrator.scoring.customers import iter_customer_frames

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


# --- list, show, compare and promote --------------------------------------------------------


def _figure(metrics: dict, key: str, spec: str = ".3f") -> str:
    value = metrics.get(key)
    return "-" if value is None else format(value, spec)


def _day(value) -> str:  # noqa: ANN001
    if value is None:
        return "-"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", text) else text


def _window(lineage: dict) -> str:
    window = lineage.get("training_window") or {}
    if not window:
        return "-"
    return f"{_day(window.get('from'))} to {_day(window.get('to'))}"


def _validation(record) -> str:  # noqa: ANN001
    if record.validation_score is None:
        return "-"
    return f"{record.validation_metric} {record.validation_score:.4f}"


def _record_dict(record) -> dict:  # noqa: ANN001 - a ModelVersion
    return record.model_dump(mode="json", exclude={"id"})


@models_app.command("list")
def list_command(
    output_format: Annotated[OutputFormat, typer.Option("--format", help=FORMAT_HELP)] = OutputFormat.text,
) -> None:
    """Every registered model version: stage, validation score, holdout metrics, lineage."""
    from orchestrator.db.engine import connect
    from orchestrator.scoring.registry import list_models

    records = list_models(connect(get_settings()))
    if output_format == OutputFormat.json:
        print_json([_record_dict(r) for r in records])
        return
    if not records:
        console.print("no model is registered yet; train one with `campaign models train`")
        return
    table = Table(title="Scoring models (holdout metrics; lift in the top decile)")
    columns = (
        "name",
        "v",
        "stage",
        "target",
        "rows",
        "validation",
        "ROC AUC",
        "PR AUC",
        "lift",
        "window",
        "code",
        "trained",
    )
    for column in columns:
        numeric = column in ("v", "rows", "ROC AUC", "PR AUC", "lift")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column in ("name", "v", "trained"))
    for record in records:
        m = record.metrics
        lineage = record.lineage or {}
        table.add_row(
            record.name,
            str(record.version),
            record.stage,
            record.target,
            f"{record.training_rows:,}",
            _validation(record),
            _figure(m, "roc_auc"),
            _figure(m, "pr_auc"),
            _figure(m, "lift_top_decile", ".2f"),
            _window(lineage),
            str(lineage.get("code_version") or "-"),
            record.created_at.strftime("%Y-%m-%d"),
        )
    console.print(table)


@models_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Option("--version", min=1, help="Version; the champion when omitted.")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help=FORMAT_HELP)] = OutputFormat.text,
) -> None:
    """One model version: stage, validation score, lineage, holdout metrics, calibration table and features."""
    from orchestrator.db.engine import connect
    from orchestrator.scoring.registry import get

    try:
        record = get(connect(get_settings()), name, version)
    except LookupError as exc:
        raise fail(str(exc)) from exc
    if output_format == OutputFormat.json:
        print_json(_record_dict(record))
        return
    _print_record(record)


@models_app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(min=1, help="The version to make the champion.")],
    force: Annotated[bool, typer.Option("--force", help="Promote a retired version again.", metavar="")] = False,
) -> None:
    """Make VERSION the champion of NAME; the champion before it is retired (one transaction)."""
    from orchestrator.db.engine import connect
    from orchestrator.scoring.registry import PromotionRefused, get, promote

    engine = connect(get_settings())
    try:
        before = get(engine, name, version)
        try:
            previous = get(engine, name)
        except LookupError:
            previous = None
        record = promote(engine, name, version, force=force)
    except (LookupError, PromotionRefused) as exc:
        raise fail(str(exc)) from exc
    if before.stage == "champion":
        console.print(f"model {name} version {version} is already the champion; nothing changed", highlight=False)
        return
    retired = "" if previous is None or previous.version == version else f"; version {previous.version} retired"
    console.print(f"[green]model {name} version {record.version} is now the champion[/]{retired}", highlight=False)


@models_app.command("compare")
def compare_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    versions: Annotated[list[int] | None, typer.Argument(help="Versions to compare; all when none are given.")] = None,
) -> None:
    """Versions of NAME side by side: stage, validation score (and its difference to the champion), rows, window."""
    from orchestrator.db.engine import connect
    from orchestrator.scoring.registry import compare

    try:
        rows = compare(connect(get_settings()), name, versions or None)
    except LookupError as exc:
        raise fail(str(exc)) from exc
    champion = next((r for r in reversed(rows) if r["stage"] == "champion"), None)
    if champion is None:  # the champion was not asked for: still the reference
        from orchestrator.scoring.registry import get

        try:
            record = get(connect(get_settings()), name)
            champion = {
                "version": record.version,
                "validation_metric": record.validation_metric,
                "validation_score": record.validation_score,
            }
        except LookupError:
            champion = None
    table = Table(title=f"Model {name}: versions compared")
    for column in (
        "v",
        "stage",
        "kind",
        "metric",
        "score",
        "vs champion",
        "rows",
        "window",
        "code",
        "parent",
        "trained",
        "promoted",
    ):
        numeric = column in ("v", "score", "vs champion", "rows", "parent")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column in ("v", "trained", "promoted"))
    for row in rows:
        score = row["validation_score"]
        delta = "-"
        if (
            champion is not None
            and row["version"] != champion["version"]
            and score is not None
            and champion["validation_score"] is not None
            and row["validation_metric"] == champion["validation_metric"]
        ):
            delta = f"{score - champion['validation_score']:+.4f}"
        window = (
            "-"
            if row["window_from"] is None and row["window_to"] is None
            else f"{_day(row['window_from'])} to {_day(row['window_to'])}"
        )
        table.add_row(
            str(row["version"]),
            row["stage"],
            row["kind"],
            row["validation_metric"] or "-",
            "-" if score is None else f"{score:.4f}",
            delta,
            f"{row['training_rows']:,}",
            window,
            str(row["code_version"] or "-"),
            "-" if row["parent_version"] is None else str(row["parent_version"]),
            row["created_at"].strftime("%Y-%m-%d %H:%M"),
            "-" if row["promoted_at"] is None else row["promoted_at"].strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


_LINEAGE_LABELS = {
    "training_window": "training window",
    "waves": "waves",
    "rows": "rows",
    "outcome": "outcome",
    "validation": "validation",
    "code_version": "code version",
    "parent_version": "parent version",
}


def _lineage_text(key: str, value) -> str:  # noqa: ANN001
    if key == "training_window":
        return _window({"training_window": value})
    if key == "waves" and isinstance(value, list):
        shown = ", ".join(map(str, value[:5]))
        return f"{len(value)}: {shown}" + (", ..." if len(value) > 5 else "")
    if key == "rows" and isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, default=str)
    return "-" if value is None else str(value)


def _print_record(record) -> None:  # noqa: ANN001
    m = record.metrics
    lineage = record.lineage or {}
    summary = Table(title=f"Model {record.name} version {record.version}", show_header=False)
    rows = [
        ("stage", record.stage),
        ("promoted", "-" if record.promoted_at is None else record.promoted_at.strftime("%Y-%m-%d %H:%M:%S")),
        ("validation", _validation(record)),
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

    if lineage:
        table = Table(title="Lineage", show_header=False)
        keys = [k for k in _LINEAGE_LABELS if k in lineage] + sorted(k for k in lineage if k not in _LINEAGE_LABELS)
        for key in keys:
            table.add_row(_LINEAGE_LABELS.get(key, key), escape(_lineage_text(key, lineage[key])))
        console.print(table)

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
