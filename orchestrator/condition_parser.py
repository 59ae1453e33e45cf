"""Audience conditions: the model, the parser from rules-file data, and back.

Contract: ``parse_condition(raw, loc)`` takes plain YAML data (as loaded from a rules
file) and returns ``(condition, issues)``. It never raises for bad input: every problem
is an ``Issue`` (a path below ``loc`` and a message saying what was expected and what was
got); with any issue the condition is ``None`` unless ``partial=True``. A condition is an
immutable tree of ``All``, ``Any``, ``Not`` and ``ColumnTest``; ``condition_to_data``
turns it back into the rules-file grammar. Whether columns exist and values suit them is
checked later, against the customer table, by ``conditions``; ``spec`` uses this module
to validate ``CampaignSpec.audience``.

Conditions
----------
A condition is a mapping. Its keys are ``all`` (a list of conditions, every one must
hold), ``any`` (a list, at least one must hold), ``not`` (one condition, which must not
hold) or column names of the customer table. Several keys in one mapping must all hold.
A list of conditions where one condition is expected (for instance the whole audience)
means ``all`` of them.

A column's value is either a plain value (``segment: gold`` means ``{eq: gold}``;
``segment: null`` means ``{is_null: true}``) or a mapping of operators:

=========  ==========================================  =================================
operator   value                                       selects customers whose column…
=========  ==========================================  =================================
eq, ne     one value                                   equals / does not equal it
lt, lte    one value                                   is less than / at most it
gt, gte    one value                                   is greater than / at least it
in         non-empty list                              equals one of the values
not_in     non-empty list                              equals none of the values
between    ``[low, high]``, low <= high                lies between them, both included
is_null    true or false                               is missing / is present
=========  ==========================================  =================================

Values must suit the column: text for text columns (quote numbers: ``'5'``), numbers
for number columns, ``true``/``false`` for true/false columns, and dates such as
``2026-01-31`` (or ISO date-times) for date columns. ``null`` is not allowed inside
``in``/``not_in``/``between``; use ``is_null``.

Missing values: a customer whose column is missing (null) never matches ``eq``, ``lt``,
``lte``, ``gt``, ``gte``, ``in`` or ``between``, and always matches ``ne`` and ``not_in``.
``not`` selects exactly the customers its condition does not select.

Only the YAML 1.2 core values are special: ``true``/``false`` (not ``yes``/``no``),
``null``, numbers and ISO dates; everything else is text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Union

from orchestrator.problems import did_you_mean
from orchestrator.yaml_source import Loc, describe

__all__ = [
    "All",
    "Any",
    "ColumnTest",
    "Condition",
    "Issue",
    "LOGIC_KEYS",
    "Not",
    "OPERATORS",
    "ORDERING",
    "Operator",
    "Scalar",
    "condition_to_data",
    "parse_condition",
]

Operator = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "is_null"]
OPERATORS: tuple[Operator, ...] = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "is_null")
LOGIC_KEYS = ("all", "any", "not")
ORDERING: frozenset[str] = frozenset({"lt", "lte", "gt", "gte", "between"})

Scalar = Union[str, int, float, bool, date, datetime]
"""A value a column is compared with; ``in``/``not_in``/``between`` take a tuple of them."""

_OPERATOR_ALIASES = {
    "=": "eq", "==": "eq", "equals": "eq", "is": "eq",
    "!=": "ne", "<>": "ne", "not": "ne", "neq": "ne", "not_eq": "ne",
    "<": "lt", "<=": "lte", "le": "lte", ">": "gt", ">=": "gte", "ge": "gte",
    "nin": "not_in", "not in": "not_in", "notin": "not_in",
    "null": "is_null", "isnull": "is_null", "missing": "is_null",
}  # fmt: skip
_LOGIC_ALIASES = {"and": "all", "or": "any", "none": "not", "all_of": "all", "any_of": "any"}


@dataclass(frozen=True)
class ColumnTest:
    """``column op value``, e.g. ``ColumnTest("age", "gte", 18)``.

    ``value`` is a tuple for ``in``/``not_in``/``between`` and a bool for ``is_null``.
    ``loc`` is where the column name was written and ``value_loc`` where the value was
    (paths into the rules file, see ``yaml_source``); they do not take part in equality.
    """

    column: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]
    loc: Loc = field(default=(), compare=False, repr=False)
    value_loc: Loc = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class All:
    """Every one of ``conditions`` holds."""

    conditions: tuple[Condition, ...]
    loc: Loc = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Any:  # noqa: A001 - the rules-file keyword
    """At least one of ``conditions`` holds."""

    conditions: tuple[Condition, ...]
    loc: Loc = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Not:
    """``condition`` does not hold."""

    condition: Condition
    loc: Loc = field(default=(), compare=False, repr=False)


Condition = Union[All, Any, Not, ColumnTest]


@dataclass(frozen=True)
class Issue:
    """A problem found before positions are known: where (``loc``) and what."""

    loc: Loc
    message: str
    at: Literal["key", "value"] = "value"


def parse_condition(
    raw: object, loc: Loc = ("audience",), *, partial: bool = False
) -> tuple[Condition | None, list[Issue]]:
    """The condition written as ``raw`` (plain YAML data), and every issue in it.

    Returns ``(None, issues)`` when there is any issue, unless ``partial``: then the
    condition keeps the parts that have no issue, so that they can be checked further
    (it must not be run). ``loc`` is where ``raw`` sits in the file; the issues and the
    condition's ``loc`` fields are paths below it.
    """
    parser = _ConditionParser()
    condition = parser.condition(raw, loc)
    return (None if parser.issues and not partial else condition), parser.issues


class _ConditionParser:
    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def _issue(self, loc: Loc, message: str, at: Literal["key", "value"] = "value") -> None:
        self.issues.append(Issue(loc, message, at))

    def condition(self, raw: object, loc: Loc) -> Condition | None:
        if isinstance(raw, list):
            return self._group(All, raw, loc, "all")
        if not isinstance(raw, dict):
            what = "is empty" if raw is None else f"is {describe(raw)}"
            self._issue(
                loc,
                f"a condition must be a mapping such as 'region: North' or a list of them; this one {what}",
            )
            return None
        if not raw:
            self._issue(loc, "a condition must not be empty; write for instance 'region: North'")
            return None
        parts: list[Condition | None] = []
        for key, value in raw.items():
            child: Loc = (*loc, key)
            if not isinstance(key, str):
                self._issue(child, f"a column name must be text, not {describe(key)}", "key")
            elif key in ("all", "any"):
                parts.append(self._group(All if key == "all" else Any, value, child, key))
            elif key == "not":
                inner = self.condition(value, child)
                parts.append(None if inner is None else Not(inner, child))
            elif key in OPERATORS:
                self._issue(
                    child,
                    f"'{key}' is an operator and belongs under a column, e.g. 'age: {{{key}: ...}}'",
                    "key",
                )
            elif key.lower() in _LOGIC_ALIASES:
                self._issue(child, f"unknown key '{key}', did you mean '{_LOGIC_ALIASES[key.lower()]}'?", "key")
            else:
                parts.append(self._column(key, value, child))
        valid = [p for p in parts if p is not None]
        if not valid:
            return None
        return valid[0] if len(valid) == 1 else All(tuple(valid), loc)

    def _group(self, kind: type[All] | type[Any], raw: object, loc: Loc, word: str) -> Condition | None:
        if not isinstance(raw, list):
            self._issue(loc, f"'{word}' needs a list of conditions, each on its own line starting with '- '")
            return None
        if not raw:
            self._issue(loc, f"'{word}' needs at least one condition")
            return None
        children = tuple(c for c in (self.condition(item, (*loc, i)) for i, item in enumerate(raw)) if c is not None)
        return kind(children, loc) if children else None

    def _column(self, column: str, raw: object, loc: Loc) -> Condition | None:
        if isinstance(raw, list):
            self._issue(
                loc,
                f"column '{column}' is given a list; to match any of several values write "
                f"'{column}: {{in: [...]}}'",
            )
            return None
        if not isinstance(raw, dict):
            return self._test(column, "eq", raw, loc, loc)
        if not raw:
            self._issue(loc, f"no operator for column '{column}'; use one of {', '.join(OPERATORS)}")
            return None
        tests: list[Condition | None] = []
        for op, value in raw.items():
            op_loc: Loc = (*loc, op)
            if op not in OPERATORS:
                self._issue(op_loc, _unknown_operator(op, column), "key")
                tests.append(None)
                continue
            tests.append(self._test(column, op, value, loc, op_loc))
        valid = [t for t in tests if t is not None]
        if not valid:
            return None
        return valid[0] if len(valid) == 1 else All(tuple(valid), loc)

    def _test(self, column: str, op: Operator, raw: object, loc: Loc, vloc: Loc) -> ColumnTest | None:
        def test(o: Operator, value: Scalar | tuple[Scalar, ...]) -> ColumnTest:
            return ColumnTest(column, o, value, loc, vloc)

        if op == "is_null":
            if not isinstance(raw, bool):
                self._issue(vloc, f"'is_null' takes true or false, not {describe(raw)}")
                return None
            return test("is_null", raw)
        if op in ("in", "not_in", "between"):
            return self._list_test(op, raw, vloc, test)
        if raw is None:
            if op in ("eq", "ne"):
                return test("is_null", op == "eq")
            self._issue(vloc, f"'{op}' cannot compare with null; use 'is_null: true' for missing values")
            return None
        if isinstance(raw, (list, dict)):
            hint = "; to match any of several values use 'in'" if op == "eq" and isinstance(raw, list) else ""
            self._issue(vloc, f"'{op}' for column '{column}' needs a single value, not {describe(raw)}{hint}")
            return None
        if not self._scalar_ok(raw, vloc):
            return None
        return test(op, raw)  # type: ignore[arg-type]

    def _list_test(
        self, op: Operator, raw: object, vloc: Loc, test: Callable[[Operator, tuple[Scalar, ...]], ColumnTest]
    ) -> ColumnTest | None:
        example = "[90, 365]" if op == "between" else "[gold, silver]"
        if not isinstance(raw, list):
            self._issue(vloc, f"'{op}' needs a list such as {example}, not {describe(raw)}")
            return None
        if op == "between" and len(raw) != 2:
            self._issue(vloc, f"'between' needs exactly two values [low, high], got {len(raw)}")
            return None
        if not raw:
            self._issue(vloc, f"'{op}' needs at least one value")
            return None
        ok = True
        for i, item in enumerate(raw):
            if item is None:
                advice = "is_null: false" if op == "not_in" else "is_null: true"
                if op == "between":
                    self._issue((*vloc, i), "'between' cannot have null as an end; use lt/gt for an open range")
                else:
                    self._issue(
                        (*vloc, i), f"null inside '{op}' never matches; use '{advice}' for missing values instead"
                    )
                ok = False
            elif isinstance(item, (list, dict)):
                self._issue((*vloc, i), f"the values of '{op}' must be single values, not {describe(item)}")
                ok = False
            else:
                ok = self._scalar_ok(item, (*vloc, i)) and ok
        if not ok:
            return None
        if op == "between" and _comparable(raw[0], raw[1]) and raw[0] > raw[1]:
            self._issue(vloc, f"'between' needs [low, high] with low <= high, got [{raw[0]}, {raw[1]}]")
            return None
        return test(op, tuple(raw))

    def _scalar_ok(self, value: object, loc: Loc) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            self._issue(loc, f"{value} is not a usable number")
            return False
        if not isinstance(value, (str, int, float, bool, date)):
            self._issue(loc, f"cannot compare a column with {describe(value)}")
            return False
        return True


def _unknown_operator(op: object, column: str) -> str:
    text = f"unknown operator '{op}' for column '{column}'"
    if isinstance(op, str) and op.lower() in _OPERATOR_ALIASES:
        return f"{text}, did you mean '{_OPERATOR_ALIASES[op.lower()]}'?"
    hint = did_you_mean(op, OPERATORS) if isinstance(op, str) else ""
    return text + (hint or f"; use one of {', '.join(OPERATORS)}")


def _comparable(a: object, b: object) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return type(a) is type(b) and isinstance(a, (str, date))


def condition_to_data(condition: Condition | None) -> object:
    """The condition as plain data in the rules-file grammar (for dumps and logs)."""
    if condition is None:
        return None
    if isinstance(condition, All):
        return {"all": [condition_to_data(c) for c in condition.conditions]}
    if isinstance(condition, Any):
        return {"any": [condition_to_data(c) for c in condition.conditions]}
    if isinstance(condition, Not):
        return {"not": condition_to_data(condition.condition)}
    value = list(condition.value) if isinstance(condition.value, tuple) else condition.value
    return {condition.column: {condition.op: value}}
