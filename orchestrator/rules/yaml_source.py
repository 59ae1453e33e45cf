"""YAML files written by campaign managers, loaded with the place of every value.

``parse_yaml(text, file)`` returns the plain Python data (dicts, lists, str, int, float,
bool, None, date, datetime) and a ``Positions`` lookup that turns a path into the
document, such as ``("channels", "email", "sender")`` or ``("audience", "all", 2)``, into
a 1-based ``(line, col)``. Validators report ``Problem`` objects through
``Positions.problem(loc, message)``, so every message reads ``file:line:col: message``.

Scalars follow the YAML 1.2 core schema, not PyYAML's YAML 1.1 default: only
``true``/``false`` are booleans (``yes``, ``no``, ``on``, ``off`` stay text), ``12:30``
is text, not the number 750, and ``010`` is the number 10. ISO dates and timestamps
(``2026-01-31``) become ``date``/``datetime``. Nothing but plain data is ever constructed.

Errors: a syntax error is one ``Problem`` at the place PyYAML stopped ("YAML syntax
error: ..."). Duplicate keys, keys that are lists or mappings and explicit tags
(``!!python/...``) are problems too, but the rest of the document is still returned so
that later checks report everything else in the same run.

``model_problems(error, model, positions)`` turns a pydantic ``ValidationError`` from
validating such data into problems at their places, in words a campaign manager reads.

Limits, so a careless or hostile file costs bounded time and memory (each a ``Problem`` at
its place, the rest of the document not read further where it would cost more):
``MAX_BYTES`` of text, ``MAX_DEPTH`` levels of nesting, ``MAX_ITEMS`` items in one list or
mapping, ``MAX_ALIASES`` uses of an alias, and ``MAX_VALUES`` values in the document with
every alias expanded (a "billion laughs" file of 642 bytes expands to 10^9 values: refused
after ``MAX_VALUES``).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import Problem, ValidationFailed, did_you_mean

__all__ = [
    "CUSTOM_ERROR",
    "Loc",
    "Positions",
    "YamlDocument",
    "describe",
    "load_yaml",
    "model_problems",
    "parse_yaml",
]

Loc = tuple[str | int, ...]
"""A path into a document: mapping keys and list indexes, outermost first."""

Where = Literal["key", "value"]

MAX_BYTES = 1_000_000
"""Largest rules, policy, segment or capacity file, in bytes of text."""
MAX_DEPTH = 40
"""Deepest nesting of lists and mappings."""
MAX_ITEMS = 100_000
"""Most items in one list or mapping (an ``in`` list of up to this many values is compiled to one bound
parameter, ``rules.conditions``; long id lists still belong in id-list files)."""
MAX_ALIASES = 200
"""Most uses of aliases (``*name``) in one document."""
MAX_VALUES = 100_000
"""Most values (scalars, lists, mappings) in one document with every alias expanded."""

CUSTOM_ERROR = "campaign"
"""Type of the ``PydanticCustomError`` whose message ``model_problems`` shows unchanged."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (plus ISO timestamps)."""


_Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        "tag:yaml.org,2002:int",
        r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
        "-+0123456789",
    ),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (
        "tag:yaml.org,2002:timestamp",
        r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}"
        r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
        r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$",
        "0123456789",
    ),
]:
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _construct_int(loader: yaml.SafeLoader, node: ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0) if text.startswith("0x") else int(text)


def _construct_float(loader: yaml.SafeLoader, node: ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float("nan") if text == ".nan" else float(text)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


@dataclass(frozen=True)
class Positions:
    """Where each value (and each mapping key) of one YAML document starts, 1-based."""

    file: str
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict, repr=False)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict, repr=False)

    def value(self, loc: Sequence[str | int]) -> tuple[int | None, int | None]:
        """Start of the value at ``loc``, or of the nearest enclosing value that exists."""
        return self._lookup(tuple(loc), "value")

    def key(self, loc: Sequence[str | int]) -> tuple[int | None, int | None]:
        """Start of the mapping key of ``loc`` (its value's place for list items)."""
        return self._lookup(tuple(loc), "key")

    def problem(
        self,
        loc: Sequence[str | int],
        message: str,
        *,
        at: Where = "value",
        severity: Literal["error", "warning"] = "error",
    ) -> Problem:
        """A ``Problem`` at the key or the value of ``loc`` in this file."""
        line, col = self.key(loc) if at == "key" else self.value(loc)
        return Problem(self.file, line, col, message, severity)

    def _lookup(self, loc: Loc, at: Where) -> tuple[int | None, int | None]:
        if at == "key" and loc in self.keys:
            return self.keys[loc]
        while True:
            if loc in self.values:
                return self.values[loc]
            if not loc:
                return None, None
            loc = loc[:-1]


@dataclass(frozen=True)
class YamlDocument:
    """Plain data of one YAML document and where each part of it was written."""

    data: object
    positions: Positions


def parse_yaml(text: str, file: str) -> tuple[YamlDocument | None, list[Problem]]:
    """The document in ``text`` and every problem in it; ``None`` on a syntax error.

    ``file`` is only used in the problems and positions, as the name shown to the user.
    """
    if len(text) > MAX_BYTES:
        return None, [
            Problem(file, None, None, f"the file is {len(text):,} characters long; at most {MAX_BYTES:,} are read")
        ]
    deep = _deep_flow(text)
    if deep is not None:  # PyYAML would take seconds to find out (and recurse once per level)
        return None, [Problem(file, deep, None, f"nested too deeply: at most {MAX_DEPTH} levels of lists and mappings")]
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, file)]
    except yaml.YAMLError as exc:  # errors without a mark, e.g. unreadable characters
        return None, [Problem(file, None, None, f"YAML syntax error: {exc}")]
    except RecursionError:
        return None, [Problem(file, None, None, f"nested too deeply: at most {MAX_DEPTH} levels of lists and mappings")]
    builder = _Builder(file)
    if root is None:
        builder.values[()] = (1, 1)
        return YamlDocument(None, builder.positions()), []
    data = builder.build(root, ())
    return YamlDocument(data, builder.positions()), builder.problems


_QUOTED_OR_COMMENT = re.compile(r"'[^'\n]*'|\"(?:[^\"\\\n]|\\.)*\"|(?:^|(?<=\s))#[^\n]*", re.M)
_BRACKET = re.compile(r"[\[\]{}]")


def _deep_flow(text: str) -> int | None:
    """The line where ``[``/``{`` brackets nest deeper than ``MAX_DEPTH`` (outside quotes and comments), if any.

    A linear pre-check: PyYAML's scanner takes seconds on thousands of nested brackets.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    plain = _QUOTED_OR_COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text)
    depth = 0
    for match in _BRACKET.finditer(plain):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        if depth > MAX_DEPTH:
            return plain.count("\n", 0, match.start()) + 1
    return None


def load_yaml(text: str, file: str) -> YamlDocument:
    """Like ``parse_yaml`` but raise ``ValidationFailed`` if the document has any error."""
    document, problems = parse_yaml(text, file)
    if document is None or any(p.severity == "error" for p in problems):
        raise ValidationFailed(problems)
    return document


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or exc.context or "unreadable YAML"
    if exc.context and exc.problem:
        what = f"{exc.context}, {exc.problem}"
    if "'\\t'" in what:
        what += " (indent with spaces, not tabs)"
    elif "mapping values are not allowed" in what:
        what += " (a value containing ': ' must be put in quotes)"
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    return Problem(file, line, col, f"YAML syntax error: {what}")


_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class _Builder:
    """Turns a composed node tree into plain data, recording positions and problems."""

    def __init__(self, file: str):
        self.file = file
        self.values: dict[Loc, tuple[int, int]] = {}
        self.keys: dict[Loc, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self._constructor = _Loader("")
        self._active: set[int] = set()
        self._built: set[int] = set()  # collections built once: building one again expands an alias
        self._values = 0
        self._aliases = 0
        self._stopped = False  # a limit was hit: the rest is not built

    def positions(self) -> Positions:
        return Positions(self.file, self.values, self.keys)

    def _problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(self.file, mark.line + 1, mark.column + 1, message))

    def _within_limits(self, node: Node, loc: Loc) -> bool:
        """Count ``node`` against the document's limits; ``False`` (with the problem) when one is hit."""
        if self._stopped:
            return False
        self._values += 1
        if isinstance(node, (MappingNode, SequenceNode)):
            if id(node) in self._built:
                self._aliases += 1
            self._built.add(id(node))
            what = "mapping" if isinstance(node, MappingNode) else "list"
            if len(node.value) > MAX_ITEMS:
                self._problem(node, f"a {what} of {len(node.value):,} items; at most {MAX_ITEMS:,} are allowed")
                return False
        if len(loc) > MAX_DEPTH:
            message = f"nested too deeply: at most {MAX_DEPTH} levels of lists and mappings"
        elif self._aliases > MAX_ALIASES:
            message = f"more than {MAX_ALIASES} uses of aliases (*name); write the values out"
        elif self._values > MAX_VALUES:
            message = (
                f"the document holds more than {MAX_VALUES:,} values with its aliases (*name) expanded; "
                "such files are not read"
            )
        else:
            return True
        self._problem(node, message)
        self._stopped = True
        return False

    def build(self, node: Node, loc: Loc) -> object:
        if not self._within_limits(node, loc):
            return None
        self.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if id(node) in self._active:
            self._problem(node, "an alias refers to a value that contains it; such loops are not allowed")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, (MappingNode, SequenceNode)) and node.tag not in _COLLECTION_TAGS:
                self._problem(node, f"YAML tags such as '{node.tag}' are not allowed")
                return None
            if isinstance(node, MappingNode):
                return self._mapping(node, loc)
            if isinstance(node, SequenceNode):
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            return self._scalar(node)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: Node) -> object:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self._problem(node, f"YAML error: {exc.problem}")
        except ValueError as exc:  # e.g. an impossible date such as 2026-02-30
            self._problem(node, f"cannot read {node.value!r}: {exc}")
        return None

    def _mapping(self, node: MappingNode, loc: Loc) -> dict:
        result: dict = {}
        first_seen: dict[Hashable, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._problem(key_node, "merge keys ('<<') are not supported; write the keys out")
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, "a key must be a single word or value, not a list or mapping")
                continue
            key = self._scalar(key_node)
            if not isinstance(key, Hashable):  # pragma: no cover - scalars are hashable
                continue
            key_line = key_node.start_mark.line + 1
            if key in first_seen:
                self._problem(key_node, f"duplicate key '{key}' (first given on line {first_seen[key]})")
                continue
            first_seen[key] = key_line
            child: Loc = (*loc, key)  # type: ignore[arg-type]
            self.keys[child] = (key_line, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, child)
            if isinstance(value_node, ScalarNode) and value_node.value == "" and value_node.style is None:
                self.values[child] = self.keys[child]  # an empty value is shown at its key
        return result


# --- pydantic errors as problems ------------------------------------------------------------


def model_problems(error: ValidationError, model: type[BaseModel], positions: Positions) -> list[Problem]:
    """Each error of validating YAML data with ``model``, at its place, in plain words.

    Pydantic's default messages ("Extra inputs are not permitted", "Input should be a
    valid number") are rewritten: unknown keys get a "did you mean", wrong types name
    what was expected and what was written. Messages raised by the models' own
    validators as ``PydanticCustomError`` are kept as they are.
    """
    return [_model_problem(e, model, positions) for e in error.errors(include_url=False)]


def _model_problem(error: ErrorDetails, model: type[BaseModel], positions: Positions) -> Problem:
    loc = _data_loc(error["loc"], positions)
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "the file")
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        allowed = _allowed_keys(model, loc[:-1])
        hint = did_you_mean(str(key), allowed) or (f"; the keys here are: {', '.join(allowed)}" if allowed else "")
        return positions.problem(loc, f"unknown key '{key}'{hint}", at="key")
    if kind == "invalid_key":
        key = loc[-1] if loc else value
        return positions.problem(loc, f"a key must be a word, not {describe(key)}", at="key")
    if kind == "missing":
        parent = loc[:-1]
        if not parent:
            return positions.problem((), f"missing required key '{loc[-1]}'")
        return positions.problem(parent, f"'{parent[-1]}' is missing the required key '{loc[-1]}'", at="key")
    return positions.problem(loc, _message(kind, name, value, ctx, error["msg"], model, loc))


def _message(kind: str, name: str, value: object, ctx: dict, default: str, model, loc: Loc) -> str:
    got = describe(value)
    if kind == "finite_number":
        return f"'{name}' must be a finite number, not {value}"
    if kind in ("float_type", "float_parsing"):
        return f"'{name}' must be a number, not {got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"'{name}' must be a whole number, not {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"'{name}' must be true or false, not {got}"
    if kind == "string_type":
        quote = f"; put it in quotes: '{_plain(value)}'" if isinstance(value, (int, float, date)) else ""
        return f"'{name}' must be text, not {got}{quote}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        word = "at least" if kind == "greater_than_equal" else "more than"
        return f"'{name}' must be {word} {bound}, not {value}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        word = "at most" if kind == "less_than_equal" else "less than"
        return f"'{name}' must be {word} {bound}, not {value}"
    if kind == "string_too_short":
        return f"'{name}' must not be empty"
    if kind == "string_too_long":
        return f"'{name}' must be at most {ctx.get('max_length')} characters long"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        keys = ", ".join(_allowed_keys(model, loc))
        if value is None:
            return f"'{name}' is empty; it needs keys such as {keys}"
        return f"'{name}' must be a mapping with the keys {keys}, not {got}"
    if kind == "string_pattern_mismatch":
        return f"'{name}' {value!r} does not have the expected form {ctx.get('pattern')}"
    if kind == "value_error":
        return str(ctx.get("error", default))
    if kind == CUSTOM_ERROR:
        return default
    return f"'{name}': {default}"


def describe(value: object) -> str:
    """A YAML value as a campaign manager would name it: "the number 5", "the text 'x'"."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the value {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, datetime):
        return f"the date and time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, str):
        return f"the text '{value}'"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _plain(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _data_loc(loc: Sequence[str | int], positions: Positions) -> Loc:
    """``loc`` without pydantic's own segments (union members, validator names)."""
    kept: Loc = ()
    for i, part in enumerate(loc):
        candidate = (*kept, part)
        if candidate in positions.values or i == len(loc) - 1:
            kept = candidate
    return kept


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the (nested) model at ``loc`` accepts, in declaration order."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return []
        current = _model_in(current.model_fields[part].annotation)
    if current is None:
        return []
    return list(current.model_json_schema().get("properties", {}))


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def read_text_file(path: Path | str, what: str) -> tuple[str | None, list[Problem]]:
    """The UTF-8 text of a campaign manager's file, or ``None`` and the problem that says why.

    ``what`` names the file in messages, e.g. "rules file" or "policy file".
    """
    file = str(path)
    try:
        if Path(path).stat().st_size > 4 * MAX_BYTES:  # UTF-8 takes at most 4 bytes a character
            return None, [Problem(file, None, None, f"the {what} is larger than {4 * MAX_BYTES:,} bytes")]
        content = Path(path).read_bytes()
    except FileNotFoundError:
        return None, [Problem(file, None, None, f"the {what} does not exist")]
    except OSError as exc:
        return None, [Problem(file, None, None, f"cannot read the {what}: {exc.strerror or exc}")]
    try:
        return content.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        return None, [Problem(file, line, None, "the file is not UTF-8 text; save it with UTF-8 encoding")]
