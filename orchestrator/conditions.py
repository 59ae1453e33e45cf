"""Audience conditions checked against the customer columns and compiled to SQL.

``check_audience(condition, columns, positions)`` reports unknown columns and values that
do not suit a column (text against a number column, ...) as ``file:line:col`` problems.
``compile_audience(condition, table)`` turns a condition into a SQLAlchemy Core boolean
expression over the customer table: every value is a bound parameter, never SQL text,
and the same expression runs on SQLite and PostgreSQL.

Missing values follow two-valued logic, as campaign managers expect (see ``condition_parser``): a
null column matches ``ne`` and ``not_in`` but no other comparison, and ``not`` is the
exact complement of its condition. Every compiled test is therefore true or false, never
SQL ``NULL``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import sqlalchemy as sa

from orchestrator.customer_table import ColumnKind, kind_of
from orchestrator.problems import Problem, did_you_mean
from orchestrator.spec import LOGIC_KEYS, ORDERING, All, Any, ColumnTest, Condition, Not, Scalar
from orchestrator.yaml_source import Positions, describe

__all__ = ["check_audience", "compile_audience", "value_problem"]

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
    else:
        yield condition


# --- compiling ----------------------------------------------------------------------------


def compile_audience(condition: Condition, table: sa.Table) -> sa.ColumnElement[bool]:
    """``condition`` as a boolean SQL expression over ``table``, with bound parameters only.

    Raises ``ValueError`` for a column the table does not have or a value its column
    cannot hold; ``check_audience`` reports these with their place in the rules file.
    """
    if isinstance(condition, All):
        return sa.and_(*(compile_audience(c, table) for c in condition.conditions))
    if isinstance(condition, Any):
        return sa.or_(*(compile_audience(c, table) for c in condition.conditions))
    if isinstance(condition, Not):
        return sa.not_(compile_audience(condition.condition, table))
    if isinstance(condition, ColumnTest):
        return _compile_test(condition, table)
    raise TypeError(f"not a condition: {condition!r}")


def _compile_test(test: ColumnTest, table: sa.Table) -> sa.ColumnElement[bool]:
    if test.column not in table.c:
        raise ValueError(
            f"unknown column '{test.column}' in table '{table.name}'{did_you_mean(test.column, table.c.keys())}"
        )
    column = table.c[test.column]
    if test.op == "is_null":
        return column.is_(None) if test.value else column.is_not(None)
    kind = kind_of(column.type)
    values = test.value if isinstance(test.value, tuple) else (test.value,)
    problems = [p for p in (value_problem(test.column, kind, v) for v in values) if p]
    if problems:
        raise ValueError(problems[0])
    coerced = [_coerce(kind, v) for v in values]
    bind_type = sa.Float() if kind == "integer" and any(isinstance(v, float) for v in coerced) else column.type

    def param(value: object) -> sa.BindParameter:
        return sa.bindparam(None, value, type_=bind_type)

    present = column.is_not(None)
    missing = column.is_(None)
    match test.op:
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
        case "in":
            return sa.and_(present, column.in_(sa.bindparam(None, coerced, expanding=True, type_=bind_type)))
        case "not_in":
            return sa.or_(missing, column.not_in(sa.bindparam(None, coerced, expanding=True, type_=bind_type)))
    raise ValueError(f"unknown operator '{test.op}'")


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
