"""What a campaign rules file may say: the v1 format, as pydantic models.

A rules file is a YAML mapping under ``rules/``, one campaign per file::

    name: winback-email            # required; lower-case letters, digits, '-' and '_' (max 100)
    description: Win back lapsed gold and silver customers by e-mail.   # optional
    audience:                      # optional; a condition (below); omitted = every customer
      all:
        - consent_email: true                 # a plain value means {eq: value}
        - email: {is_null: false}
        - recency_days: {between: [90, 365]}  # both ends included
        - segment: {in: [gold, silver]}
        - age: {gte: 18, lt: 80}              # several operators on one column: all of them
        - any:
            - region: North
            - revenue_12m: {gt: 1000}
        - not:
            segment: blocked
    control:                       # required
      share: 0.1                   # 0 <= share <= 0.9; use 0 for no control group
      salt: winback-2026           # optional; default: the campaign name
    channels:                      # required, at least one channel
      email:
        template: winback          # templates/email/winback/
        sender: "Acme Bank <offers@acme.example>"   # an address, or "Name <address>"
        reply_to: service@acme.example              # optional
        address_column: email      # optional; the customer column with the address
    schedule:                      # optional; exactly one of cron, interval_minutes, rrule
      cron: "0 9 * * MON"          # minute hour day-of-month month day-of-week
      timezone: Europe/Berlin      # IANA name; default UTC

Every key is checked: an unknown or misspelt key is an error, never ignored.

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
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Union

from cronsim import CronSim, CronSimError
from dateutil.rrule import rrulestr
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from orchestrator.problems import did_you_mean
from orchestrator.yaml_source import CUSTOM_ERROR, Loc, describe

__all__ = [
    "All",
    "Any",
    "CampaignSpec",
    "ChannelsSpec",
    "ColumnTest",
    "Condition",
    "ControlSpec",
    "EmailChannelSpec",
    "Issue",
    "Not",
    "OPERATORS",
    "Operator",
    "ScheduleSpec",
    "condition_to_data",
    "parse_condition",
]

# --- conditions ---------------------------------------------------------------------------

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


def _validate_audience(value: object) -> Condition | None:
    if value is None or isinstance(value, (All, Any, Not, ColumnTest)):
        return value
    condition, issues = parse_condition(value, ())
    if issues:
        first = issues[0]
        where = ".".join(str(p) for p in first.loc)
        raise _fail(f"{where + ': ' if where else ''}{first.message}")
    return condition


_AUDIENCE_SCHEMA = {
    "description": (
        "Who the campaign selects: a condition over customer columns, with the keys all/any/not "
        "or column names; omitted = every customer."
    ),
    "anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}],
}

AudienceField = Annotated[
    Union[Condition, None],
    PlainValidator(_validate_audience),
    PlainSerializer(condition_to_data),
    WithJsonSchema(_AUDIENCE_SCHEMA),
]


# --- the campaign -------------------------------------------------------------------------

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _fail(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the campaign manager as it is."""
    return PydanticCustomError(CUSTOM_ERROR, "{message}", {"message": message})


def _slug(what: str, value: str) -> str:
    if not SLUG.match(value):
        raise _fail(
            f"{what} '{value}' is not allowed: use lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit, at most 100 characters"
        )
    return value


def _address(what: str, value: str) -> str:
    _, address = parseaddr(value)
    if " " in address.strip():
        raise _fail(
            f"{what} '{value}' is not an e-mail address; put a name in front of the address in "
            "angle brackets, e.g. 'Acme Bank <offers@acme.example>'"
        )
    if not address or "@" not in address:
        raise _fail(
            f"{what} '{value}' is not an e-mail address; write 'offers@acme.example' or 'Acme <offers@acme.example>'"
        )
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise _fail(f"{what} '{value}' is not a valid e-mail address: {exc}") from exc
    return value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControlSpec(_Spec):
    """The random control group: customers selected but deliberately not contacted."""

    share: float = Field(
        strict=True,
        ge=0,
        le=0.9,
        allow_inf_nan=False,
        description="Share of the selected customers held back, 0 to 0.9 (0 = none)."
    )
    salt: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Text mixed into the random split; default the campaign name. Change it to redraw the group.",
    )


class EmailChannelSpec(_Spec):
    """Sending by e-mail."""

    template: str = Field(description="Template folder under templates/email/.")
    sender: str = Field(description="From address, 'offers@acme.example' or 'Acme Bank <offers@acme.example>'.")
    reply_to: str | None = Field(None, description="Reply-To address, if replies go elsewhere.")
    address_column: str = Field("email", description="Customer column holding the e-mail address.")

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        return _slug("template name", value)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _address("sender", value)

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        return None if value is None else _address("reply_to", value)

    @field_validator("address_column")
    @classmethod
    def _address_column(cls, value: str) -> str:
        if not COLUMN.match(value):
            raise _fail(f"'{value}' is not a column name")
        return value


class ChannelsSpec(_Spec):
    """The channels a campaign sends on; at least one."""

    email: EmailChannelSpec | None = Field(None, description="E-mail channel.")

    @model_validator(mode="after")
    def _at_least_one(self) -> ChannelsSpec:
        if self.email is None:
            raise _fail("at least one channel is required, e.g. 'email:' with template and sender")
        return self


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class ScheduleSpec(_Spec):
    """When waves run: exactly one of ``cron``, ``interval_minutes`` or ``rrule``."""

    cron: str | None = Field(None, description="Cron expression, e.g. '0 9 * * MON' (09:00 every Monday).")
    interval_minutes: int | None = Field(
        None, strict=True, ge=1, le=527_040, description="Run every this many minutes (at most a year)."
    )
    rrule: str | None = Field(None, description="iCalendar RRULE, e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'.")
    timezone: str = Field("UTC", description="IANA time zone of the schedule, e.g. Europe/Berlin.")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronSim(value, datetime(2000, 1, 1))
            except CronSimError as exc:
                raise _fail(
                    f"invalid cron expression '{value}': {str(exc).lower()} "
                    "(the 5 fields are minute hour day-of-month month day-of-week, e.g. '0 9 * * MON')"
                ) from exc
        return value

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                rrulestr(value, dtstart=datetime(2000, 1, 1))
            except (ValueError, TypeError) as exc:
                detail = f": {exc}" if str(exc).startswith(("invalid", "unknown")) else ""
                raise _fail(
                    f"invalid rrule '{value}'{detail}; write it like 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'"
                ) from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value not in _time_zones():
            raise _fail(f"unknown time zone '{value}'{did_you_mean(value, _time_zones()) or ', e.g. Europe/Berlin'}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleSpec:
        given = [k for k in ("cron", "interval_minutes", "rrule") if getattr(self, k) is not None]
        if len(given) != 1:
            got = "none" if not given else " and ".join(given)
            raise _fail(f"a schedule needs exactly one of cron, interval_minutes or rrule; got {got}")
        return self


class CampaignSpec(_Spec):
    """One campaign rules file, validated. ``source`` and ``sha256`` identify the file."""

    name: str = Field(description="Campaign name: lower-case letters, digits, '-' and '_'.")
    description: str | None = Field(None, max_length=2000, description="What the campaign is for.")
    audience: AudienceField = None
    control: ControlSpec = Field(description="The random control group.")
    channels: ChannelsSpec = Field(description="How the campaign contacts customers.")
    schedule: ScheduleSpec | None = Field(None, description="When waves run; omitted = only when started by hand.")
    source: SkipJsonSchema[Path] = Field(description="The rules file this was read from.")
    sha256: SkipJsonSchema[str] = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _slug("name", value)


FILE_FIELDS = ("source", "sha256")
"""Fields of ``CampaignSpec`` that come from the file itself, never from its content."""
