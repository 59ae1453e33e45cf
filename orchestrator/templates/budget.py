"""A render budget: what one message may cost, so a runaway template fails that message, not the machine.

Templates are written by campaign managers; a careless one (nested ``range(100000)`` loops,
``'a' * 10**9``, a string doubled in a loop) would run for hours or take all memory. Every
render of a ``TemplateSet`` runs under a ``RenderBudget``:

* **operations**: each loop iteration, call (functions, methods, macros) and intercepted
  operator (``* ** + % //``) costs one; at most ``operations`` per message;
* **seconds**: wall time per message, checked as operations are counted;
* **output**: no value a template builds (a string, a list) and no part it writes may be longer
  than ``output_chars``; sizes are checked *before* ``'a' * n``, ``str.center(n)``,
  ``'%9999999d' % x`` and the like allocate, and the text written inside loops and macros is
  counted as it is produced;
* **per wave**: after ``wave_overruns`` messages of one template went over budget, rendering
  stops (``RenderBudgetExhausted``, a ``ValidationFailed`` naming the template file and line):
  a wave stops cleanly with the rest of its contacts pending, instead of failing a million
  messages one slow second at a time.

A message over budget fails with a ``RenderError`` at the template file and line that was
running (``TemplateSet.render_many`` keeps going with the next message).

How: ``BudgetedEnvironment`` is Jinja's immutable sandbox with the operators intercepted,
calls counted, every filter wrapped, ``lipsum`` removed, and the compiled code instrumented
(``instrument``): each ``for`` loop iterates through ``counted``, each ``~`` result goes
through ``sized``, each output inside a loop or macro through ``emitted``/``charge``. The
meter of the current render lives in a ``ContextVar``, so renders in several threads do not
share one; outside a render (no meter) the hooks cost nothing and limit nothing.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, nodes
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import Problem, ValidationFailed

__all__ = [
    "BudgetExceeded",
    "BudgetedEnvironment",
    "RenderBudget",
    "RenderBudgetExhausted",
    "metered",
]

MAX_INT_BITS = 8192
"""Largest integer (in bits) a template may compute: beyond it ``*`` and ``**`` refuse."""


@dataclass(frozen=True, slots=True)
class RenderBudget:
    """What rendering one message (all its parts) may cost."""

    operations: int = 200_000
    seconds: float = 2.0
    output_chars: int = 1_000_000
    wave_overruns: int = 10

    def __post_init__(self) -> None:
        for name in ("operations", "output_chars", "wave_overruns"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"The '{name}' of a RenderBudget must be a whole number of at least 1. Got {value!r}.")
        if not self.seconds > 0:
            raise ValueError(f"The 'seconds' of a RenderBudget must be more than 0. Got {self.seconds!r}.")


class BudgetExceeded(RuntimeError):
    """One message went over its render budget; the message says which limit."""


class RenderBudgetExhausted(ValidationFailed):
    """Too many messages of one template went over budget: rendering stops (the wave stops cleanly)."""


class _Meter:
    __slots__ = ("budget", "deadline", "operations", "written")

    def __init__(self, budget: RenderBudget):
        self.budget = budget
        self.operations = 0
        self.written = 0
        self.deadline = time.monotonic() + budget.seconds

    def tick(self, n: int = 1) -> None:
        self.operations += n
        if self.operations > self.budget.operations:
            raise BudgetExceeded(
                f"over the render budget: more than {self.budget.operations:,} operations for one message "
                "(loops, calls, filters); simplify the template"
            )
        if not self.operations & 63 and time.monotonic() > self.deadline:
            raise BudgetExceeded(
                f"over the render budget: more than {self.budget.seconds:g} s for one message; simplify the template"
            )

    def check_size(self, size: int, what: str = "a value") -> None:
        if size > self.budget.output_chars:
            raise BudgetExceeded(f"over the render budget: {what} of more than {self.budget.output_chars:,} characters")

    def write(self, size: int) -> None:
        self.written += size
        self.check_size(self.written, "the text written in loops and macros")


_meter: ContextVar[_Meter | None] = ContextVar("render_meter", default=None)


class metered:  # noqa: N801 - used as a context manager, like contextlib's
    """``with metered(budget):`` -- the renders in the block run under ``budget`` (one message)."""

    __slots__ = ("budget", "token")

    def __init__(self, budget: RenderBudget):
        self.budget = budget

    def __enter__(self) -> None:
        self.token = _meter.set(_Meter(self.budget))

    def __exit__(self, *_exc: object) -> None:
        _meter.reset(self.token)


# --- hooks called by instrumented template code --------------------------------------------


def counted(iterable: Iterable[Any]) -> Iterable[Any]:
    """The iterable of a ``for`` loop, each iteration counted."""
    meter = _meter.get()
    if meter is None:
        return iterable
    return _counting(iterable, meter)


def _counting(iterable: Iterable[Any], meter: _Meter) -> Iterator[Any]:
    tick = meter.tick
    for item in iterable:
        tick()
        yield item


def sized(value: Any) -> Any:
    """``value`` unchanged, once its size is within the budget."""
    meter = _meter.get()
    if meter is not None:
        _check_value(meter, value)
    return value


def emitted(value: Any) -> Any:
    """``value`` unchanged; its text counted as written (an output inside a loop or macro)."""
    meter = _meter.get()
    if meter is not None:
        meter.write(len(value) if isinstance(value, str) else 16)
    return value


def charge(size: int) -> None:
    """Count ``size`` characters of literal template text as written (inside a loop or macro)."""
    meter = _meter.get()
    if meter is not None:
        meter.write(size)


def _check_value(meter: _Meter, value: Any) -> None:
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        meter.check_size(len(value))
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise BudgetExceeded(f"over the render budget: a number of more than {MAX_INT_BITS} bits")


_PASSED = (Context, Environment, EvalContext)  # what @pass_context / @pass_environment filters get first
_SEQUENCES = (str, bytes, list, tuple)
_WIDE = re.compile(r"%[-+ #0]*(?:\*|\d{7,})|%[-+ #0]*\d*\.(?:\*|\d{7,})|\{[^{}]*?(?:\d{7,})[^{}]*\}")
"""A printf or format() field with a width or precision of a million or more (or given as ``*``)."""


def _check_binop(meter: _Meter, operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be over budget, before it is computed."""
    limit = meter.budget.output_chars
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SEQUENCES) and isinstance(times, int) and len(seq) * max(times, 0) > limit:
                meter.check_size(len(seq) * times)
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise BudgetExceeded(f"over the render budget: a number of more than {MAX_INT_BITS} bits")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if left.bit_length() * right > MAX_INT_BITS:
                raise BudgetExceeded(f"over the render budget: a number of more than {MAX_INT_BITS} bits")
    elif operator == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            meter.check_size(len(left) + len(right))
    elif operator == "%" and isinstance(left, str) and _WIDE.search(left):
        raise BudgetExceeded("over the render budget: a format width or precision of a million or more")


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _check_call(meter: _Meter, obj: Any, args: tuple, kwargs: dict) -> None:
    """Refuse a string method call whose result would be over budget, before it runs."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(obj, "__name__", "")
    if name in _WIDTH_METHODS:
        width = args[0] if args else next(iter(kwargs.values()), 0)
        if isinstance(width, int):
            meter.check_size(max(width, 0) * (max(owner.count("\t"), 1) if name == "expandtabs" else 1))
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        occurrences = owner.count(args[0]) if args[0] else len(owner) + 1
        meter.check_size(len(owner) + occurrences * max(len(args[1]) - len(args[0]), 0))


_PRECHECKED = frozenset({"center", "indent", "format", "replace"})
"""Filters whose result is refused before they run when it would be over budget."""

_GROWING = frozenset(
    {"join", "urlencode", "escape", "e", "forceescape", "tojson", "pprint", "wordwrap", "xmlattr", "urlize"}
    | {"batch", "list", "sort", "unique", "dictsort", "groupby", "items", "string", "map", "select", "reject"}
)
"""Filters whose result may be longer than their input: checked after they run. The others (``money``,
``default``, ``upper``, ``round``, ...) give a result no longer than a constant or their input's."""


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a filter), its result checked against the budget (refused before it runs where it can)."""
    if name not in _PRECHECKED and name not in _GROWING:
        return function

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        meter = _meter.get()
        if meter is None:
            return function(*args, **kwargs)
        if name in _PRECHECKED:
            _precheck_filter(meter, name, [a for a in args if not isinstance(a, _PASSED)])
        result = function(*args, **kwargs)
        _check_value(meter, result)
        return result

    return bounded


def _precheck_filter(meter: _Meter, name: str, values: list[Any]) -> None:
    if not values or not isinstance(values[0], str):
        return
    text = values[0]
    if name == "indent" and len(values) > 1 and isinstance(values[1], int):
        meter.check_size(len(text) + (text.count("\n") + 1) * max(values[1], 0))
    elif name == "center" and len(values) > 1 and isinstance(values[1], int):
        meter.check_size(max(values[1], 0))
    elif name == "format" and _WIDE.search(text):
        raise BudgetExceeded("over the render budget: a format width or precision of a million or more")
    elif name == "replace" and len(values) > 2 and isinstance(values[1], str) and isinstance(values[2], str):
        occurrences = text.count(values[1]) if values[1] else len(text) + 1
        meter.check_size(len(text) + occurrences * max(len(values[2]) - len(values[1]), 0))


# --- the environment --------------------------------------------------------------------------

_HOOKS = __name__
_REPEATING = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock)


def _hook(name: str, *args: nodes.Expr) -> nodes.Call:
    return nodes.Call(nodes.ImportedName(f"{_HOOKS}.{name}"), list(args), [], None, None)


def instrument(node: nodes.Node, repeating: bool = False) -> None:
    """Rewrite a parsed template in place so that it reports to the meter (see the module docstring)."""
    inside = repeating or isinstance(node, _REPEATING)
    if isinstance(node, nodes.For):
        node.iter = _hook("counted", node.iter)  # type: ignore[arg-type] # a For's iter is an expression
    for field, value in node.iter_fields():  # value: a node, a list of nodes, or plain data
        if isinstance(value, list):
            rewritten: list[Any] = []
            for child in value:
                if isinstance(child, nodes.Node):
                    instrument(child, inside)
                if isinstance(child, nodes.Output) and inside:
                    literal = sum(len(n.data) for n in child.nodes if isinstance(n, nodes.TemplateData))
                    if literal:
                        rewritten.append(nodes.ExprStmt(_hook("charge", nodes.Const(literal))))
                    child.nodes = [n if isinstance(n, nodes.TemplateData) else _hook("emitted", n) for n in child.nodes]
                rewritten.append(child)
            setattr(node, field, rewritten)
        elif isinstance(value, nodes.Node):
            instrument(value, inside)
            if isinstance(value, nodes.Concat):
                setattr(node, field, _hook("sized", value))


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox whose templates report their cost to the current render's meter."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.globals.pop("lipsum", None)  # n paragraphs of filler text: nothing a campaign needs

    def bound_filters(self) -> None:
        """Wrap the filters that can grow a value (call after adding the project's): refused when over budget."""
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        meter = _meter.get()
        if meter is not None:
            meter.tick()
            _check_binop(meter, operator, left, right)
        result = super().call_binop(context, operator, left, right)
        if meter is not None:
            _check_value(meter, result)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - jinja's signature
        meter = _meter.get()
        if meter is not None:
            meter.tick()
            _check_call(meter, __obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if meter is not None:
            _check_value(meter, result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _WIDE.search(value.__self__):

            def refuse(*_args: Any, **_kwargs: Any) -> str:
                raise BudgetExceeded("over the render budget: a format width or precision of a million or more")

            return refuse
        return wrapped

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False):  # noqa: ANN202, FBT001, FBT002 - jinja's signature
        instrument(source)
        return super()._generate(source, name, filename, defer_init)


def exhausted(problem: Problem, overruns: int) -> RenderBudgetExhausted:
    """The error that stops rendering after ``overruns`` messages of one template went over budget."""
    return RenderBudgetExhausted(
        [
            Problem(
                problem.file,
                problem.line,
                problem.col,
                f"{problem.message}; {overruns} messages went over the render budget, so rendering stopped "
                "(the contacts not sent stay pending): fix the template and run again",
            )
        ]
    )
