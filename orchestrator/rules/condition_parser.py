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

Text columns also take these operators; all ignore upper/lower case (of ASCII letters on
SQLite, of all letters on PostgreSQL) and need non-empty text:

===========  ========================================  ==================================
operator     value                                     selects customers whose column…
===========  ========================================  ==================================
contains     text                                      contains it (``%`` and ``_`` are
                                                       plain characters)
starts_with  text                                      starts with it
ends_with    text                                      ends with it
like         SQL LIKE pattern                          matches it: ``%`` any text, ``_``
                                                       one character, ``\\`` escapes
matches      regular expression (portable subset)      contains a match of it
===========  ========================================  ==================================

Date and date-time columns also take, relative to the wave date (the day the wave runs):

===========  ========================================  ==================================
operator     value                                     selects customers whose date…
===========  ========================================  ==================================
days_ago     a mapping of eq/lt/lte/gt/gte/between     lies that many days before the
             with whole numbers: ``{gte: 90}``         wave date (its calendar day)
before       a date, or ``today``, ``-30d``, ``+7d``   is a day before that day
after        a date, or ``today``, ``-30d``, ``+7d``   is a day after that day
===========  ========================================  ==================================

``in_segment: NAME`` (a key like ``all``) is the audience of the named segment file
(``rules/segments/NAME.yaml``); ``segments`` resolves it.

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
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

import re2

from orchestrator.errors import did_you_mean
from orchestrator.rules.yaml_source import Loc, describe

__all__ = [
    "All",
    "Any",
    "CONDITION_TYPES",
    "ColumnTest",
    "Condition",
    "DATE_OPERATORS",
    "DAYS_AGO",
    "DAYS_AGO_OPERATORS",
    "IN_SEGMENT",
    "InSegment",
    "Issue",
    "LOGIC_KEYS",
    "Not",
    "OPERATORS",
    "ORDERING",
    "Operator",
    "RELATIVE_DAY",
    "SEGMENT_NAME",
    "Scalar",
    "TEXT_OPERATORS",
    "condition_to_data",
    "parse_condition",
    "portable_regex_problem",
    "relative_day",
]

Operator = Literal[
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "is_null",
    "contains", "starts_with", "ends_with", "like", "matches", "before", "after",
]  # fmt: skip
TEXT_OPERATORS: tuple[Operator, ...] = ("contains", "starts_with", "ends_with", "like", "matches")
DATE_OPERATORS: tuple[Operator, ...] = ("before", "after")
DAYS_AGO = "days_ago"
DAYS_AGO_OPERATORS: tuple[Operator, ...] = ("eq", "lt", "lte", "gt", "gte", "between")
OPERATORS: tuple[str, ...] = (
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "is_null",
    *TEXT_OPERATORS, DAYS_AGO, *DATE_OPERATORS,
)  # fmt: skip
"""Every key allowed under a column (``days_ago`` takes a mapping of comparisons)."""
IN_SEGMENT = "in_segment"
LOGIC_KEYS = ("all", "any", "not", IN_SEGMENT)
ORDERING: frozenset[str] = frozenset({"lt", "lte", "gt", "gte", "between"})
RELATIVE_DAY = re.compile(r"^(?:today|[+-][0-9]{1,5}d)$")
"""A day relative to the wave date: ``today``, ``-30d`` (30 days earlier), ``+7d``."""
SEGMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")

Scalar = str | int | float | bool | date | datetime
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
    ``measure="days_ago"`` compares the number of days from the column's date to the
    wave date instead of the column itself (``last_purchase: {days_ago: {gte: 90}}``).
    """

    column: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]
    loc: Loc = field(default=(), compare=False, repr=False)
    value_loc: Loc = field(default=(), compare=False, repr=False)
    measure: Literal["value", "days_ago"] = "value"


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


@dataclass(frozen=True)
class InSegment:
    """The audience of the segment ``name`` holds (``rules/segments/<name>.yaml``).

    ``condition`` is that audience once ``segments.resolve_segments`` has read the file;
    ``None`` before. It does not take part in equality.
    """

    name: str
    condition: Condition | None = field(default=None, compare=False, repr=False)
    loc: Loc = field(default=(), compare=False, repr=False)


Condition = All | Any | Not | ColumnTest | InSegment
CONDITION_TYPES = (All, Any, Not, ColumnTest, InSegment)


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
            elif key == IN_SEGMENT:
                parts.append(self._segment(value, child))
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

    def _segment(self, raw: object, loc: Loc) -> InSegment | None:
        if not isinstance(raw, str) or not SEGMENT_NAME.match(raw):
            what = describe(raw) if not isinstance(raw, str) else f"'{raw}'"
            self._issue(
                loc,
                f"'in_segment' needs a segment name (lower-case letters, digits, '-' and '_', "
                f"the file name under segments/ without .yaml), not {what}",
            )
            return None
        return InSegment(raw, None, loc)

    def _column(self, column: str, raw: object, loc: Loc) -> Condition | None:
        if isinstance(raw, list):
            self._issue(
                loc,
                f"column '{column}' is given a list; to match any of several values write '{column}: {{in: [...]}}'",
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
            if op == DAYS_AGO:
                tests.append(self._days_ago(column, value, loc, op_loc))
                continue
            tests.append(self._test(column, op, value, loc, op_loc))
        valid = [t for t in tests if t is not None]
        if not valid:
            return None
        return valid[0] if len(valid) == 1 else All(tuple(valid), loc)

    def _days_ago(self, column: str, raw: object, loc: Loc, vloc: Loc) -> Condition | None:
        allowed = ", ".join(DAYS_AGO_OPERATORS)
        if not isinstance(raw, dict) or not raw:
            self._issue(
                vloc,
                f"'days_ago' needs a mapping of comparisons such as {{gte: 90}} ({allowed}), not {describe(raw)}",
            )
            return None
        tests: list[Condition | None] = []
        for op, value in raw.items():
            op_loc: Loc = (*vloc, op)
            if op not in DAYS_AGO_OPERATORS:
                hint = did_you_mean(op, DAYS_AGO_OPERATORS) if isinstance(op, str) else ""
                self._issue(op_loc, f"unknown operator '{op}' in 'days_ago'{hint or '; use one of ' + allowed}", "key")
                tests.append(None)
                continue
            values = value if op == "between" and isinstance(value, list) else [value]
            if op == "between" and (not isinstance(value, list) or len(value) != 2):
                self._issue(op_loc, f"'between' needs two whole numbers of days [low, high], not {describe(value)}")
                tests.append(None)
                continue
            bad = [(i, v) for i, v in enumerate(values) if not isinstance(v, int) or isinstance(v, bool)]
            for i, v in bad:
                where = (*op_loc, i) if op == "between" else op_loc
                self._issue(where, f"'days_ago' counts whole days; give a whole number such as 90, not {describe(v)}")
            if bad:
                tests.append(None)
                continue
            if op == "between":
                if values[0] > values[1]:
                    self._issue(op_loc, f"'between' needs [low, high] with low <= high, got [{values[0]}, {values[1]}]")
                    tests.append(None)
                    continue
                tests.append(ColumnTest(column, "between", tuple(values), loc, op_loc, "days_ago"))
            else:
                tests.append(ColumnTest(column, op, value, loc, op_loc, "days_ago"))
        valid = [t for t in tests if t is not None]
        if not valid:
            return None
        return valid[0] if len(valid) == 1 else All(tuple(valid), loc)

    def _text_test(self, column: str, op: Operator, raw: object, loc: Loc, vloc: Loc) -> ColumnTest | None:
        if not isinstance(raw, str) or not raw:
            shown = (
                f"; put it in quotes: '{raw}'" if isinstance(raw, (int, float)) and not isinstance(raw, bool) else ""
            )
            what = "empty text" if raw == "" else describe(raw)
            self._issue(vloc, f"'{op}' needs non-empty text such as 'acme', not {what}{shown}")
            return None
        if op == "matches":
            problem = portable_regex_problem(raw)
            if problem:
                self._issue(vloc, problem)
                return None
        return ColumnTest(column, op, raw, loc, vloc)

    def _date_test(self, column: str, op: Operator, raw: object, loc: Loc, vloc: Loc) -> ColumnTest | None:
        ok = (isinstance(raw, date) and not isinstance(raw, datetime)) or (
            isinstance(raw, str) and (RELATIVE_DAY.match(raw) or _is_iso_date(raw))
        )
        if not ok:
            self._issue(
                vloc,
                f"'{op}' needs a day: a date such as 2026-01-31, or one relative to the wave date such as "
                f"today, -30d or +7d; not {describe(raw)}",
            )
            return None
        return ColumnTest(column, op, raw, loc, vloc)  # type: ignore[arg-type]

    def _test(self, column: str, op: Operator, raw: object, loc: Loc, vloc: Loc) -> ColumnTest | None:
        def test(o: Operator, value: Scalar | tuple[Scalar, ...]) -> ColumnTest:
            return ColumnTest(column, o, value, loc, vloc)

        if op in TEXT_OPERATORS:
            return self._text_test(column, op, raw, loc, vloc)
        if op in DATE_OPERATORS:
            return self._date_test(column, op, raw, loc, vloc)

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
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            self._issue(
                loc,
                f"{value} is beyond the integers the database holds ({INT64_MIN:,} to {INT64_MAX:,}); "
                "use a value in that range",
            )
            return False
        if not isinstance(value, (str, int, float, bool, date)):
            self._issue(loc, f"cannot compare a column with {describe(value)}")
            return False
        return True


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # SQLite INTEGER and PostgreSQL bigint


def _unknown_operator(op: object, column: str) -> str:
    text = f"unknown operator '{op}' for column '{column}'"
    if isinstance(op, str) and op.lower() in _OPERATOR_ALIASES:
        return f"{text}, did you mean '{_OPERATOR_ALIASES[op.lower()]}'?"
    hint = did_you_mean(op, OPERATORS) if isinstance(op, str) else ""
    return text + (hint or f"; use one of {', '.join(OPERATORS)}")


def _is_iso_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def relative_day(value: date | str, as_of: date) -> date:
    """The day ``before``/``after`` mean: ``value`` itself, or ``today``/``-30d``/``+7d`` from ``as_of``."""
    if isinstance(value, date):
        return value
    if value == "today":
        return as_of
    if RELATIVE_DAY.match(value):
        return as_of + timedelta(days=int(value[:-1]))
    return date.fromisoformat(value)


_REGEX_ESCAPES = frozenset("dDwWsS")
MAX_PATTERN = 1000
"""Longest regular expression of a ``matches`` test."""
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def portable_regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` may not behave the same in PostgreSQL and Python (SQLite), or ``None``.

    The portable subset: characters, ``.``, ``^``, ``$``, ``*``, ``+``, ``?``, ``{m,n}``
    (n at most 1000), ``|``, groups ``( )``, classes ``[a-z]``/``[^0-9]``, ``\\d \\w \\s`` (and
    upper-case negations), and a backslash before punctuation for the character itself; at most
    ``MAX_PATTERN`` characters. Every such pattern compiles in RE2, the linear-time engine
    SQLite runs ``matches`` with (``orchestrator.db.engine``), so no pattern backtracks.
    """
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"'matches' needs a regular expression; '{pattern}' is not one: {exc}"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
            if nxt.isalnum() and nxt not in _REGEX_ESCAPES:
                return (
                    f"'\\{nxt}' in '{pattern}' means different things in the databases; use only "
                    "\\d, \\w, \\s (and \\D, \\W, \\S) or a backslash before punctuation"
                )
            i += 2
            continue
        if pattern.startswith("(?", i):
            return f"'(?' groups in '{pattern}' are not portable between the databases; use plain ( ) groups"
        if pattern.startswith("[[:", i) or pattern.startswith("{,", i):
            return f"'{pattern[i : i + 3]}' in '{pattern}' is not portable between the databases"
        i += 1
    if len(pattern) > MAX_PATTERN:
        return f"'matches' takes a regular expression of at most {MAX_PATTERN} characters, not {len(pattern)}"
    try:  # the engine that runs it on SQLite: linear time, whatever the pattern (no backtracking)
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"'matches' cannot run '{pattern}' in linear time: {reason}"
    return None


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
    if isinstance(condition, InSegment):
        return {IN_SEGMENT: condition.name}
    value = list(condition.value) if isinstance(condition.value, tuple) else condition.value
    if condition.measure == "days_ago":
        return {condition.column: {DAYS_AGO: {condition.op: value}}}
    return {condition.column: {condition.op: value}}
