"""Audience conditions checked against the customer columns and compiled to SQL.

``check_audience(condition, columns, positions)`` reports unknown columns and values that
do not suit a column (text against a number column, ``contains`` on a number column,
``days_ago`` on a text column, ...) as ``file:line:col`` problems. Segments referenced with
``in_segment`` are checked in their own files (``segments``), not here.
``compile_audience(condition, table, as_of=...)`` turns a condition into a SQLAlchemy Core
boolean expression over the customer table: every value is a bound parameter, never SQL
text, and the same expression runs on SQLite and PostgreSQL. ``as_of`` is the wave date
that ``days_ago``, ``before`` and ``after`` count from (default: today); those become
plain comparisons of the column with a bound date, so no date function runs per row.
``audience_filter(spec, table, conn, as_of=...)`` is the whole selection of a campaign:
the audience plus its ``include``/``exclude`` id lists (see ``id_lists``).

Text operators (``contains``, ``starts_with``, ``ends_with``, ``like``) compare
``lower(column)`` with the lower-cased value using ``LIKE ... ESCAPE``; ``matches`` is
PostgreSQL's ``~*`` and, on SQLite, the ``REGEXP`` function the engine registers (RE2's
``search``, linear time: ``orchestrator.db.engine``) with ``(?i)`` in front of the pattern.

Missing values follow two-valued logic, as campaign managers expect (see ``condition_parser``): a
null column matches ``ne`` and ``not_in`` but no other comparison, and ``not`` is the
exact complement of its condition. Every compiled test is therefore true or false, never
SQL ``NULL``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, cast

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from orchestrator.customers.table import ColumnKind, kind_of
from orchestrator.errors import Problem, did_you_mean
from orchestrator.rules.condition_parser import DATE_OPERATORS, TEXT_OPERATORS, InSegment, relative_day
from orchestrator.rules.spec import LOGIC_KEYS, ORDERING, All, Any, ColumnTest, Condition, Not, Scalar
from orchestrator.rules.yaml_source import Positions, describe

if TYPE_CHECKING:
    from orchestrator.rules.spec import CampaignSpec

__all__ = ["audience_filter", "check_audience", "compile_audience", "value_problem"]

_HOLDS = {
    "integer": "numbers",
    "number": "numbers",
    "text": "text",
    "boolean": "true/false",
    "date": "dates",
    "datetime": "dates and times",
}

# --- checking -----------------------------------------------------------------------------


def check_audience(condition: Condition, columns: dict[str, ColumnKind], positions: Positions) -> list[Problem]:
    """Every problem of ``condition`` against the customer ``columns`` ({name: kind})."""
    problems: list[Problem] = []
    unknown_reported: set[tuple] = set()
    for test in _tests(condition):
        kind = columns.get(test.column)
        if kind is None:
            if test.loc not in unknown_reported:
                unknown_reported.add(test.loc)
                hint = did_you_mean(test.column, [*columns, *LOGIC_KEYS])
                problems.append(positions.problem(test.loc, f"unknown column '{test.column}'{hint}", at="key"))
            continue
        if test.op == "is_null":
            continue
        if test.op in TEXT_OPERATORS:
            if kind != "text":
                problems.append(
                    positions.problem(
                        test.value_loc,
                        f"column '{test.column}' holds {_HOLDS[kind]}; '{test.op}' only applies to text columns",
                        at="key",
                    )
                )
            continue
        if test.measure == "days_ago" or test.op in DATE_OPERATORS:
            if kind not in ("date", "datetime"):
                op = "days_ago" if test.measure == "days_ago" else test.op
                where = test.value_loc[:-1] if test.measure == "days_ago" else test.value_loc
                problems.append(
                    positions.problem(
                        where,
                        f"column '{test.column}' holds {_HOLDS[kind]}; '{op}' only applies to date columns",
                        at="key",
                    )
                )
            continue
        if kind == "boolean" and test.op in ORDERING:
            problems.append(
                positions.problem(
                    test.value_loc,
                    f"column '{test.column}' holds true/false; '{test.op}' does not apply, use eq or ne",
                    at="key",
                )
            )
            continue
        if isinstance(test.value, tuple):
            for i, item in enumerate(test.value):
                message = value_problem(test.column, kind, item)
                if message:
                    problems.append(positions.problem((*test.value_loc, i), message))
        else:
            message = value_problem(test.column, kind, test.value)
            if message:
                problems.append(positions.problem(test.value_loc, message))
    return problems


def value_problem(column: str, kind: ColumnKind, value: Scalar) -> str | None:
    """Why ``value`` cannot be compared with a ``kind`` column, or ``None`` if it can."""
    if kind == "text":
        if isinstance(value, str):
            return None
        if isinstance(value, date):
            shown = value.isoformat()
        else:
            shown = str(value).lower() if isinstance(value, bool) else str(value)
        return f"column '{column}' holds text; compare it with text such as '{shown}', not {describe(value)}"
    if kind in ("integer", "number"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        if isinstance(value, str) and _is_number(value):
            return f"column '{column}' holds numbers; write {value} without quotes, not {describe(value)}"
        return f"column '{column}' holds numbers; compare it with a number such as 100, not {describe(value)}"
    if kind == "boolean":
        if isinstance(value, bool):
            return None
        return f"column '{column}' holds true/false; compare it with true or false, not {describe(value)}"
    if kind == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return None
        if isinstance(value, str) and _parses(date.fromisoformat, value):
            return None
        return f"column '{column}' holds dates; compare it with a date such as 2026-01-31, not {describe(value)}"
    if kind == "datetime":
        if isinstance(value, date):
            return None
        if isinstance(value, str) and _parses(datetime.fromisoformat, value):
            return None
        return (
            f"column '{column}' holds dates and times; compare it with a date such as 2026-01-31 "
            f"or 2026-01-31T09:00:00, not {describe(value)}"
        )
    return None  # pragma: no cover - every kind is handled above


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parses(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _tests(condition: Condition):
    if isinstance(condition, (All, Any)):
        for child in condition.conditions:
            yield from _tests(child)
    elif isinstance(condition, Not):
        yield from _tests(condition.condition)
    elif isinstance(condition, ColumnTest):
        yield condition
    # InSegment: checked in the segment's own file


# --- compiling ----------------------------------------------------------------------------


def compile_audience(condition: Condition, table: sa.Table, *, as_of: date | None = None) -> sa.ColumnElement[bool]:
    """``condition`` as a boolean SQL expression over ``table``, with bound parameters only.

    ``as_of`` is the wave date for ``days_ago``/``before``/``after`` (default: today).
    Raises ``ValueError`` for a column the table does not have, a value its column
    cannot hold, an operator its column does not take, or an ``in_segment`` whose segment
    was not resolved; ``check_audience`` and ``segments`` report these with their place
    in the rules file.
    """
    day = date.today() if as_of is None else as_of
    if isinstance(day, datetime):
        day = day.date()
    return _compile(condition, table, day)


def _compile(condition: Condition, table: sa.Table, as_of: date) -> sa.ColumnElement[bool]:
    if isinstance(condition, All):
        return sa.and_(*(_compile(c, table, as_of) for c in condition.conditions))
    if isinstance(condition, Any):
        return sa.or_(*(_compile(c, table, as_of) for c in condition.conditions))
    if isinstance(condition, Not):
        return sa.not_(_compile(condition.condition, table, as_of))
    if isinstance(condition, InSegment):
        if condition.condition is None:
            raise ValueError(
                f"segment '{condition.name}' was not read; load the campaign with rules.load_campaign "
                "or segments.resolve_segments first"
            )
        return _compile(condition.condition, table, as_of)
    if isinstance(condition, ColumnTest):
        return _compile_test(condition, table, as_of)
    raise TypeError(f"not a condition: {condition!r}")


def _compile_test(test: ColumnTest, table: sa.Table, as_of: date) -> sa.ColumnElement[bool]:
    if test.column not in table.c:
        raise ValueError(
            f"unknown column '{test.column}' in table '{table.name}'{did_you_mean(test.column, table.c.keys())}"
        )
    column = table.c[test.column]
    if test.op == "is_null":
        return column.is_(None) if test.value else column.is_not(None)
    kind = kind_of(column.type)
    if test.op in TEXT_OPERATORS:
        return _compile_text(test, column, kind)
    if test.measure == "days_ago" or test.op in DATE_OPERATORS:
        return _compile_date(test, column, kind, as_of)
    values = test.value if isinstance(test.value, tuple) else (test.value,)
    problems = [p for p in (value_problem(test.column, kind, v) for v in values) if p]
    if problems:
        raise ValueError(problems[0])
    coerced = [_coerce(kind, v) for v in values]
    bind_type = sa.Float() if kind == "integer" and any(isinstance(v, float) for v in coerced) else column.type
    return _compare(test.op, column, coerced, bind_type)


def _compare(
    op: str, column: sa.ColumnElement, coerced: list, bind_type: sa.types.TypeEngine
) -> sa.ColumnElement[bool]:
    """``column`` compared by ``op`` with the ``coerced`` values; a missing value matches only ``ne``/``not_in``."""

    def param(value: object) -> sa.BindParameter:
        return sa.bindparam(None, value, type_=bind_type)

    present = column.is_not(None)
    missing = column.is_(None)
    match op:
        case "eq":
            return sa.and_(present, column == param(coerced[0]))
        case "ne":
            return sa.or_(missing, column != param(coerced[0]))
        case "lt":
            return sa.and_(present, column < param(coerced[0]))
        case "lte":
            return sa.and_(present, column <= param(coerced[0]))
        case "gt":
            return sa.and_(present, column > param(coerced[0]))
        case "gte":
            return sa.and_(present, column >= param(coerced[0]))
        case "between":
            return sa.and_(present, column.between(param(coerced[0]), param(coerced[1])))
        case "in" if len(coerced) > LONG_LIST:
            return sa.and_(present, _InValues(column, coerced, bind_type))
        case "not_in" if len(coerced) > LONG_LIST:
            return sa.or_(missing, sa.not_(_InValues(column, coerced, bind_type)))
        case "in":
            return sa.and_(present, column.in_(sa.bindparam(None, coerced, expanding=True, type_=bind_type)))
        case "not_in":
            return sa.or_(missing, column.not_in(sa.bindparam(None, coerced, expanding=True, type_=bind_type)))
    raise ValueError(f"unknown operator '{op}'")


def _compile_text(test: ColumnTest, column: sa.ColumnElement, kind: ColumnKind) -> sa.ColumnElement[bool]:
    if kind != "text" or not isinstance(test.value, str):
        raise ValueError(f"column '{test.column}' holds {_HOLDS[kind]}; '{test.op}' only applies to text columns")
    present = column.is_not(None)
    if test.op == "matches":
        return sa.and_(present, _IMatch(column, sa.bindparam(None, test.value, type_=sa.Text())))
    text = test.value.lower()
    if test.op != "like":
        text = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        text = {"contains": f"%{text}%", "starts_with": f"{text}%", "ends_with": f"%{text}"}[test.op]
    pattern = sa.bindparam(None, text, type_=sa.Text())
    return sa.and_(present, sa.func.lower(column).like(pattern, escape="\\"))


LONG_LIST = 1000
"""``in``/``not_in`` lists longer than this are sent as one parameter (``_InValues``), not one per value."""


class _InValues(sa.sql.expression.ColumnElement):
    """``column IN (values)`` with all ``values`` in ONE bound parameter: an array on PostgreSQL
    (``column = ANY(:values)``), a JSON array on SQLite (``column IN (SELECT value FROM json_each(:values))``).

    A list of 50,000 values would otherwise be 50,000 parameters: more than SQLite allows in one
    statement (32,766) and close to PostgreSQL's limit (65,535).
    """

    type = sa.Boolean()
    inherit_cache = False  # the values are the statement's parameters; do not cache per value list

    def __init__(self, column: sa.ColumnElement, values: list, bind_type: sa.types.TypeEngine):
        self.column = column
        self.array = sa.bindparam(None, values, type_=sa.ARRAY(bind_type))
        plain = [v.isoformat(sep=" ") if isinstance(v, datetime) else v for v in values]
        plain = [v.isoformat() if isinstance(v, date) else v for v in plain]
        self.json = sa.bindparam(None, json.dumps(plain), type_=sa.Text())


@compiles(_InValues, "postgresql")
def _in_values_postgresql(element: _InValues, compiler, **kw) -> str:  # noqa: ANN001
    return f"({compiler.process(element.column, **kw)} = ANY({compiler.process(element.array, **kw)}))"


@compiles(_InValues, "sqlite")
def _in_values_sqlite(element: _InValues, compiler, **kw) -> str:  # noqa: ANN001
    column, values = compiler.process(element.column, **kw), compiler.process(element.json, **kw)
    return f"({column} IN (SELECT value FROM json_each({values})))"


@compiles(_InValues)
def _in_values_other(element: _InValues, compiler, **kw) -> str:  # noqa: ANN001, ARG001
    raise sa.exc.CompileError(f"long 'in' lists are supported on SQLite and PostgreSQL, not {compiler.dialect.name}")


class _IMatch(sa.sql.expression.ColumnElement):
    """``column`` contains a match of the regular expression ``pattern``, ignoring case."""

    type = sa.Boolean()
    inherit_cache = True

    def __init__(self, column: sa.ColumnElement, pattern: sa.BindParameter):
        self.column = column
        self.pattern = pattern


@compiles(_IMatch, "postgresql")
def _imatch_postgresql(element: _IMatch, compiler, **kw) -> str:  # noqa: ANN001
    return f"({compiler.process(element.column, **kw)} ~* {compiler.process(element.pattern, **kw)})"


@compiles(_IMatch, "sqlite")
def _imatch_sqlite(element: _IMatch, compiler, **kw) -> str:  # noqa: ANN001
    # REGEXP is registered by orchestrator.db.engine as RE2's search(pattern, value): linear time
    return f"({compiler.process(element.column, **kw)} REGEXP ('(?i)' || {compiler.process(element.pattern, **kw)}))"


@compiles(_IMatch)
def _imatch_other(element: _IMatch, compiler, **kw) -> str:  # noqa: ANN001, ARG001 - SQLAlchemy's @compiles signature
    raise sa.exc.CompileError(f"'matches' is supported on SQLite and PostgreSQL, not {compiler.dialect.name}")


def _compile_date(test: ColumnTest, column: sa.ColumnElement, kind: ColumnKind, as_of: date) -> sa.ColumnElement[bool]:
    """Day comparisons as comparisons of the column with bound dates (or midnights)."""
    op = "days_ago" if test.measure == "days_ago" else test.op
    if kind not in ("date", "datetime"):
        raise ValueError(f"column '{test.column}' holds {_HOLDS[kind]}; '{op}' only applies to date columns")

    def bound(day: date) -> sa.BindParameter:
        value = datetime(day.year, day.month, day.day) if kind == "datetime" else day
        return sa.bindparam(None, value, type_=column.type)

    # For a datetime column, "its day <= D" is "column < D+1 00:00" and "its day >= D" is
    # "column >= D 00:00"; for a date column both are plain comparisons.
    def on_or_before(day: date) -> sa.ColumnElement[bool]:
        return column < bound(day + timedelta(days=1)) if kind == "datetime" else column <= bound(day)

    def on_or_after(day: date) -> sa.ColumnElement[bool]:
        return column >= bound(day)

    present = column.is_not(None)
    if test.op == "before":
        return sa.and_(present, on_or_before(relative_day(test.value, as_of) - timedelta(days=1)))  # type: ignore[arg-type]
    if test.op == "after":
        return sa.and_(present, on_or_after(relative_day(test.value, as_of) + timedelta(days=1)))  # type: ignore[arg-type]
    # days_ago: the column's day is as_of - n days
    if test.op == "between":
        low, high = cast(tuple[int, int], test.value)  # the parser checked: [low, high] whole days
        return sa.and_(present, on_or_after(as_of - timedelta(days=high)), on_or_before(as_of - timedelta(days=low)))
    n = test.value
    if not isinstance(n, int) or isinstance(n, bool):
        raise ValueError(f"'days_ago' counts whole days, not {describe(n)}")
    day = as_of - timedelta(days=n)
    match test.op:
        case "eq":
            return sa.and_(present, on_or_after(day), on_or_before(day))
        case "gte":  # at least n days ago: on or before that day
            return sa.and_(present, on_or_before(day))
        case "gt":
            return sa.and_(present, on_or_before(day - timedelta(days=1)))
        case "lte":
            return sa.and_(present, on_or_after(day))
        case "lt":
            return sa.and_(present, on_or_after(day + timedelta(days=1)))
    raise ValueError(f"unknown operator '{test.op}' in 'days_ago'")


def audience_filter(
    spec: CampaignSpec, table: sa.Table, conn: sa.Connection, *, as_of: date | None = None
) -> sa.ColumnElement[bool]:
    """The whole selection of ``spec`` over ``table``: its audience, ``include`` and ``exclude``.

    Id files are loaded into temporary tables on ``conn``, so run the query on the same
    connection (``id_lists.drop_id_tables(conn)`` removes them afterwards; closing the
    connection does too). Without an audience or lists, the condition is true.
    """
    from orchestrator.rules.id_lists import list_condition  # id_lists imports this module's users

    parts: list[sa.ColumnElement[bool]] = []
    if spec.audience is not None:
        parts.append(compile_audience(spec.audience, table, as_of=as_of))
    lists = list_condition(spec, table, conn)
    if lists is not None:
        parts.append(lists)
    return sa.and_(*parts) if parts else sa.true()


def _coerce(kind: ColumnKind, value: Scalar) -> object:
    """The Python value a bound parameter of a ``kind`` column needs."""
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if kind == "datetime":
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day)  # type: ignore[union-attr]
    return value
