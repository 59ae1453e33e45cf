"""Campaign rules files: read, validate against the customer columns, report every problem.

``validate_campaign_file(path, columns=...)`` returns the ``CampaignSpec`` (or ``None``)
and every problem found, errors and warnings, sorted by their place in the file.
``load_campaign(path, columns=...)`` returns the spec or raises ``ValidationFailed``
listing every error. Problems name the file as it was given (``rules/x.yaml``) with
line and column. ``columns`` is the customer table's ``{name: kind}``
(``customer_table.customer_columns``); ``None`` means there is no customer table yet,
so column checks are skipped with one warning. The format is described in ``spec``.

``in_segment`` references are read from ``segments_dir`` (default: the ``segments``
folder next to the rules file, see ``segments``); problems inside a segment file are
reported at that file's line. ``include``/``exclude`` id files are read relative to the
rules file; tables are looked up with ``engine`` (without one they get a warning), see
``id_lists``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import ValidationError

from orchestrator.customers.table import ColumnKind
from orchestrator.errors import Problem, ValidationFailed, did_you_mean
from orchestrator.rules.conditions import check_audience
from orchestrator.rules.id_lists import check_lists
from orchestrator.rules.kinds import kinds
from orchestrator.rules.segments import resolve_segments, segments_dir_for
from orchestrator.rules.spec import COLUMN, FILE_FIELDS, CampaignSpec, Condition, parse_condition
from orchestrator.rules.yaml_source import Positions, YamlDocument, model_problems, parse_yaml, read_text_file

__all__ = ["NO_TABLE_WARNING", "load_campaign", "validate_campaign_file"]

NO_TABLE_WARNING = (
    "there is no customer table yet, so the audience's columns and values and the e-mail "
    "address column were not checked"
)


def load_campaign(
    path: Path,
    *,
    columns: dict[str, ColumnKind] | None,
    segments_dir: Path | None = None,
    engine: sa.Engine | None = None,
) -> CampaignSpec:
    """The validated campaign in ``path``; raises ``ValidationFailed`` with every error."""
    spec, problems = validate_campaign_file(path, columns=columns, segments_dir=segments_dir, engine=engine)
    if spec is None:
        raise ValidationFailed(problems)
    return spec


def validate_campaign_file(
    path: Path,
    *,
    columns: dict[str, ColumnKind] | None,
    segments_dir: Path | None = None,
    engine: sa.Engine | None = None,
) -> tuple[CampaignSpec | None, list[Problem]]:
    """The campaign in ``path`` (``None`` if it has any error) and every problem found.

    ``segments_dir`` is where ``in_segment`` names are looked up (default: ``segments``
    next to the rules file); ``engine`` is used to check ``include``/``exclude`` tables.
    """
    file = str(path)
    text, problems = read_text_file(path, "rules file")
    if text is None:
        return None, problems
    document, problems = parse_yaml(text, file)
    if document is not None:
        segments = Path(segments_dir) if segments_dir is not None else segments_dir_for(Path(path))
        spec, more = _check_document(
            document, Path(path), hashlib.sha256(text.encode("utf-8")).hexdigest(), columns, segments, engine
        )
        problems = problems + more
    else:
        spec = None
    file_order = {file: i for i, file in enumerate(dict.fromkeys([file, *(p.file for p in problems)]))}
    problems.sort(key=lambda p: (file_order[p.file], p.line or 0, p.col or 0))
    if any(p.severity == "error" for p in problems):
        spec = None
    return spec, problems


def _check_document(
    document: YamlDocument,
    path: Path,
    sha256: str,
    columns: dict[str, ColumnKind] | None,
    segments_dir: Path,
    engine: sa.Engine | None,
) -> tuple[CampaignSpec | None, list[Problem]]:
    data, positions = document.data, document.positions
    if not isinstance(data, dict):
        keys = ", ".join(_top_level_keys()[:6])
        what = "is empty" if data is None else "is not a mapping of keys"
        return None, [positions.problem((), f"the rules file {what}; it needs keys such as {keys}")]
    problems: list[Problem] = []
    data = dict(data)
    for key in FILE_FIELDS:
        if key in data:
            del data[key]
            hint = did_you_mean(key, _top_level_keys())
            problems.append(positions.problem((key,), f"unknown key '{key}'{hint}", at="key"))
    audience: Condition | None = None
    if "audience" in data:
        audience, issues = parse_condition(data["audience"], ("audience",), partial=True)
        problems += [positions.problem(i.loc, i.message, at=i.at) for i in issues]
        if audience is not None:
            audience, segment_problems = resolve_segments(
                audience, positions, segments_dir=segments_dir, columns=columns
            )
            problems += segment_problems
        data["audience"] = None if issues else audience
    eligible = _parse_eligibility(data, positions, segments_dir, columns, problems)
    spec: CampaignSpec | None = None
    try:
        spec = CampaignSpec.model_validate({**data, "source": path, "sha256": sha256})
    except ValidationError as exc:
        problems += model_problems(exc, CampaignSpec, positions)
    if columns is None:
        problems.append(Problem(positions.file, None, None, NO_TABLE_WARNING, "warning"))
    else:
        if audience is not None:
            problems += check_audience(audience, columns, positions)
        for condition in eligible:
            problems += check_audience(condition, columns, positions)
        problems += _check_channel_columns(data, columns, positions)
        problems += _check_covariates(data, columns, positions)
    problems += _check_required_payload(data, positions)
    problems += check_lists(data, positions, base=path.parent, engine=engine)
    return spec, problems


def _parse_eligibility(
    data: dict, positions: Positions, segments_dir: Path, columns: dict[str, ColumnKind] | None, problems: list[Problem]
) -> list[Condition]:
    """Parse every channel's ``eligible`` condition in place (like the audience); return them."""
    channels = data.get("channels")
    if not isinstance(channels, dict):
        return []
    parsed: list[Condition] = []
    channels = data["channels"] = dict(channels)
    for name, section in channels.items():
        if not isinstance(section, dict) or "eligible" not in section:
            continue
        loc = ("channels", name, "eligible")
        condition, issues = parse_condition(section["eligible"], loc, partial=True)
        problems += [positions.problem(i.loc, i.message, at=i.at) for i in issues]
        if condition is not None:
            condition, segment_problems = resolve_segments(
                condition, positions, segments_dir=segments_dir, columns=columns
            )
            problems += segment_problems
            parsed.append(condition)
        channels[name] = {**section, "eligible": None if issues else condition}
    return parsed


def _channel_sections(data: dict) -> Iterator[tuple[Any, dict]]:
    """(kind, section) for every channel kind the rules file has a section for (a mapping)."""
    channels = data.get("channels")
    if not isinstance(channels, dict):
        return
    for kind in kinds():
        section = channels.get(kind.name)
        if isinstance(section, dict):
            yield kind, section


def _check_channel_columns(data: dict, columns: dict[str, ColumnKind], positions: Positions) -> list[Problem]:
    """Every column a channel section names (address, phone, territory, name, data: the kind's ``columns``) exists."""
    problems: list[Problem] = []
    for kind, section in _channel_sections(data):
        channel = kind.name
        for column_key in kind.columns:
            key, default, kind_of = column_key.key, column_key.default, column_key.kind
            holds = column_key.holds or kind_of
            given = section.get(key, default)
            names = [given] if isinstance(given, str) else given if isinstance(given, (list, tuple)) else []
            for i, column in enumerate(names):
                if not isinstance(column, str) or not COLUMN.match(column):
                    continue  # reported by the model
                loc: tuple[str | int, ...]
                at: Literal["key", "value"]
                if key in section:
                    loc = ("channels", channel, key) if isinstance(given, str) else ("channels", channel, key, i)
                    at, what = "value", f"{key.replace('_', ' ').removesuffix('s')} '{column}'"
                else:
                    loc, at, what = ("channels", channel), "key", f"the default {key.replace('_', ' ')} '{column}'"
                if column not in columns:
                    hint = did_you_mean(column, columns) or f"; name the column with '{key}'"
                    problems.append(
                        positions.problem(loc, f"{what} is not a column of the customer table{hint}", at=at)
                    )
                elif kind_of is not None and columns[column] != kind_of:
                    problems.append(
                        positions.problem(loc, f"{what} holds {columns[column]} values, not {holds}", at=at)
                    )
    return problems


def _check_required_payload(data: dict, positions: Positions) -> list[Problem]:
    """Every section key a channel's payload needs at send time names a column (``ColumnKey.required_by``):
    a field-force visit needs a customer name, so a section without ``name_columns`` fails here, not at the send."""
    problems: list[Problem] = []
    for kind, section in _channel_sections(data):
        for column_key in kind.columns:
            if column_key.required_by is None:
                continue
            given = section.get(column_key.key, column_key.default)
            if given in ((), [], None, ""):
                at: Literal["key", "value"] = "value" if column_key.key in section else "key"
                loc = ("channels", kind.name, column_key.key) if at == "value" else ("channels", kind.name)
                example = f", e.g. {column_key.key}: {column_key.example}" if column_key.example else ""
                problems.append(
                    positions.problem(
                        loc,
                        f"channel {kind.name}: every task needs a {column_key.required_by.replace('_', ' ')}; "
                        f"name the customer columns it is made of with '{column_key.key}'{example}",
                        at=at,
                    )
                )
    return problems


_NUMERIC_KINDS = ("integer", "number", "boolean")


def _check_covariates(data: dict, columns: dict[str, ColumnKind], positions: Positions) -> list[Problem]:
    """Every ``success.covariates`` entry is a numeric (or boolean) column of the customer table."""
    success = data.get("success")
    named = success.get("covariates") if isinstance(success, dict) else None
    if not isinstance(named, list):
        return []
    problems: list[Problem] = []
    for i, column in enumerate(named):
        if not isinstance(column, str) or not COLUMN.match(column):
            continue  # reported by the model
        loc = ("success", "covariates", i)
        if column not in columns:
            hint = did_you_mean(column, columns) or ""
            problems.append(positions.problem(loc, f"covariate '{column}' is not a column of the customer table{hint}"))
        elif columns[column] not in _NUMERIC_KINDS:
            problems.append(
                positions.problem(
                    loc, f"covariate '{column}' holds {columns[column]} values; a covariate must be a number"
                )
            )
    return problems


def _top_level_keys() -> list[str]:
    return list(CampaignSpec.model_json_schema()["properties"])


def find_campaign_file(rules_dir: Path, campaign: str) -> Path | None:
    """The rules file in ``rules_dir`` whose campaign is called ``campaign`` (None if there is none)."""
    import yaml

    for path in sorted(Path(rules_dir).glob("*.y*ml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and data.get("name") == campaign:
            return path
    return None
