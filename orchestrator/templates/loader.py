"""Campaign managers' message templates: load, check statically, render in a sandbox.

A template is a folder ``templates/<channel>/<name>/`` with one Jinja file per part of the
message; the channel's ``ChannelLayout`` (declared by its kind, ``orchestrator.rules.kinds``,
and passed in by the caller) says which parts it has and which are required. For e-mail:

    subject.txt   required; rendered, then stripped and joined to one line (no header injection)
    body.html     HTML part, autoescaped
    body.txt      plain-text part, not escaped
                  (at least one body is required; both are recommended)

Shared partials live next to the template folders, e.g. ``templates/email/_layout.html``, and
are named from the templates folder: ``{% extends "email/_layout.html" %}``. Files starting
with ``_`` are partials and never a part.

Contract:

- ``TemplateSet.load`` compiles every part once and checks what can be checked without data
  (folder and parts present, syntax, included templates exist, known filters, no access to
  ``_private`` attributes). All errors are raised together as ``ValidationFailed``, each a
  ``Problem`` with file and line.
- ``TemplateSet.check(columns)`` lists every variable that is neither a customer column nor
  one of ``ENGINE_VARIABLES``, at every file:line that uses it, with a suggestion.
- ``render`` / ``render_many`` run in Jinja's immutable sandbox with ``StrictUndefined``: a
  missing value is an error, never an empty string; ``None`` prints as empty. A failure is a
  ``RenderError`` whose ``Problem`` names the template file, line and reason, never a
  customer's value.
- Every message renders under the set's ``RenderBudget`` (``orchestrator.templates.budget``:
  operations, seconds, characters per message); a message over budget is a ``RenderError``
  at the file and line that ran, and after ``wave_overruns`` such messages ``render_many``
  raises ``RenderBudgetExhausted`` (a ``ValidationFailed``), which stops a wave cleanly.

Filters for campaign managers, besides Jinja's built-in ones (``title``, ``upper``,
``default``, ``round``, ``truncate``, ...):

    {{ revenue_12m|money }}                    1234.5 -> "1,234.50"
    {{ revenue_12m|money(0) }}                 1234.5 -> "1,234"
    {{ revenue_12m|money(thousands=".", decimal=",") }}  -> "1.234,50"
    {{ 12345|number }}                         -> "12,345"
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, select_autoescape
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import Problem, ValidationFailed, did_you_mean
from orchestrator.templates.analysis import _analyse, _Analysis, _collect_variables, _family, _source
from orchestrator.templates.budget import BudgetedEnvironment, BudgetExceeded, RenderBudget, exhausted, metered
from orchestrator.templates.filters import FILTERS, _FilterError, money, number  # noqa: F401 (money, number re-exported)

__all__ = [
    "ENGINE_VARIABLES",
    "ChannelLayout",
    "Part",
    "RenderError",
    "TemplateSet",
    "check_template",
]

ENGINE_VARIABLES: frozenset[str] = frozenset(
    {"campaign", "wave", "unsubscribe_url", "customer_id", "tracking_token", "open_pixel_url", "click"}
)
"""Variables the engine passes to every template, whatever the customer table holds."""


@dataclass(frozen=True, slots=True)
class Part:
    """One file of a template and the key of its text in ``TemplateSet.render``'s result."""

    key: str
    filename: str
    description: str
    single_line: bool = False  # stripped and joined to one line after rendering (mail headers)


@dataclass(frozen=True, slots=True)
class ChannelLayout:
    """The parts a channel's templates consist of."""

    parts: tuple[Part, ...]
    required: tuple[tuple[str, ...], ...]  # each entry: at least one of these part keys must exist
    recommended: tuple[str, ...] = ()  # a warning when one of these is missing

    def part(self, key: str) -> Part:
        return next(p for p in self.parts if p.key == key)


class RenderError(Exception):
    """A message could not be rendered for one customer.

    ``problem`` has the template file and line (where known) and the reason, e.g.
    ``undefined variable 'first_name'``; it never contains the customer's values.
    """

    def __init__(self, problem: Problem, part: str, variable: str | None = None, over_budget: bool = False):
        self.problem = problem
        self.part = part
        self.variable = variable
        self.over_budget = over_budget  # the message went over its RenderBudget
        super().__init__(str(problem))

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.problem, self.part, self.variable, self.over_budget)


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _environment(templates_dir: Path) -> BudgetedEnvironment:
    env = BudgetedEnvironment(
        loader=FileSystemLoader(os.fspath(templates_dir)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "htm"), default_for_string=False, default=False),
        keep_trailing_newline=True,
        auto_reload=False,  # compiled once per TemplateSet; no file stat per render
        finalize=_finalize,
    )
    env.filters.update(FILTERS)
    env.bound_filters()
    return env


def _template_folder(templates_dir: Path, channel: str, name: str, layout: ChannelLayout) -> Path:
    """The folder of template ``name`` of ``channel``; raise if ``layout`` is no layout or the folder does not exist."""
    if not isinstance(layout, ChannelLayout):
        raise TypeError(
            f"The 'layout' parameter of TemplateSet.load must be a ChannelLayout (the channel kind's "
            f"layout, e.g. channel_kind({channel!r}).layout). Got {layout!r} instead."
        )
    folder = templates_dir / channel / name
    channel_dir = templates_dir / channel
    if not name or name != Path(name).name or name.startswith((".", "_")):
        message = f"template name must be a folder name in {_display(channel_dir)}, got '{name}'"
        raise ValidationFailed([Problem(_display(channel_dir), None, None, message)])
    if not folder.is_dir():
        if channel_dir.is_dir():
            choices = [p.name for p in channel_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
            message = f"template '{name}' not found in {_display(channel_dir)}{did_you_mean(name, choices)}"
        else:
            message = f"template '{name}' not found: folder {_display(channel_dir)} does not exist"
        raise ValidationFailed([Problem(_display(folder), None, None, message)])
    return folder


def _analyse_family(
    env: ImmutableSandboxedEnvironment, templates_dir: Path, roots: Iterable[str], problems: list[Problem]
) -> dict[str, _Analysis]:
    """The analysis of each of ``roots`` and of every template they depend on; what is wrong goes to ``problems``."""
    analyses: dict[str, _Analysis] = {}

    def analyse(template_name: str) -> _Analysis | None:
        if template_name in analyses:
            return analyses[template_name]
        try:
            source, filename = _source(env, template_name)
            ast = env.parse(source, template_name, filename)
        except TemplateSyntaxError as exc:
            where = _display(exc.filename or template_name)
            problems.append(Problem(where, exc.lineno, None, f"syntax error: {exc.message}"))
            return None
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(_display(templates_dir / template_name), None, None, f"cannot read: {exc}"))
            return None
        analysis, found = _analyse(env, template_name, _display(filename), ast)
        analyses[template_name] = analysis
        problems.extend(found)
        for dependency, _line in analysis.dependencies:
            analyse(dependency)
        return analysis

    for template_name in roots:
        analyse(template_name)
    return analyses


def _compile_parts(
    env: ImmutableSandboxedEnvironment,
    layout: ChannelLayout,
    part_names: dict[str, str],
    analyses: dict[str, _Analysis],
    problems: list[Problem],
) -> list[tuple[str, Template, bool]]:
    """(part, compiled template, single line) in layout order, with their includes compiled too."""
    compiled = []
    for part in layout.parts:
        if part.key in part_names:
            try:
                template = env.get_template(part_names[part.key])
                # A plain dict instead of jinja's ChainMap: render() merges it into every
                # context, and iterating a ChainMap costs a third of the render time.
                template.globals = dict(template.globals)
                for dependency in _family(analyses, part_names[part.key]):
                    env.get_template(dependency)  # compile includes now, not at the first render
            except TemplateSyntaxError as exc:
                where = _display(exc.filename or part_names[part.key])
                problems.append(Problem(where, exc.lineno, None, f"syntax error: {exc.message}"))
                continue
            compiled.append((part.key, template, part.single_line))
    return compiled


# --- paths --------------------------------------------------------------------------------


def _display(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the current directory when it lies below it, else as given."""
    path = Path(path)
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            pass
    return str(path)


# --- the template set ---------------------------------------------------------------------


def _reload(templates_dir: Path, channel: str, name: str, layout: ChannelLayout, digest: str) -> TemplateSet:
    template = TemplateSet.load(templates_dir, channel, name, layout)
    if template.digest != digest:
        raise ValidationFailed(
            [
                Problem(
                    _display(Path(templates_dir) / channel / name),
                    None,
                    None,
                    "the template changed while the wave was running; run the wave again to send the rest with it",
                )
            ]
        )
    return template


class TemplateSet:
    """The compiled parts of one template, e.g. ``templates/email/winback/``.

    Build it with ``TemplateSet.load``. ``parts`` are the keys of ``render``'s result in
    order (e.g. ``("subject", "html", "text")``), ``files`` the file of each part.
    """

    def __init__(
        self,
        *,
        templates_dir: Path,
        channel: str,
        name: str,
        files: dict[str, Path],
        compiled: tuple[tuple[str, Template, bool], ...],
        variables: dict[str, list[tuple[str, int]]],
        literals: frozenset[str],
        warnings: list[Problem],
        digest: str = "",
        layout: ChannelLayout | None = None,
        budget: RenderBudget | None = None,
    ):
        self.budget = budget or RenderBudget()
        self._overruns = 0  # messages over budget so far (this set is one wave's in one process)
        self.layout = layout  # the parts it was loaded with (to load it again elsewhere)
        self.digest = digest  # sha256 of the sources of every file the template reads (includes too)
        self.templates_dir = templates_dir
        self.channel = channel
        self.name = name
        self.files = files
        self.parts = tuple(key for key, _, _ in compiled)
        self.warnings = warnings
        self._compiled = compiled
        self._variables = variables
        self._literals = literals
        self._template_root = os.path.join(os.path.abspath(templates_dir), "")
        self._part_files = {key: _display(path) for key, path in files.items()}

    def __repr__(self) -> str:
        return f"TemplateSet({self.channel!r}, {self.name!r}, parts={self.parts!r})"

    # -- loading

    @classmethod
    def load(cls, templates_dir: Path, channel: str, name: str, layout: ChannelLayout) -> TemplateSet:
        """Load and compile ``templates_dir/channel/name/`` with the parts of ``layout`` (the channel kind's);
        raise ``ValidationFailed`` listing every error."""
        templates_dir = Path(templates_dir)
        folder = _template_folder(templates_dir, channel, name, layout)
        problems = _layout_problems(layout, channel, folder)
        env = _environment(templates_dir)
        files = {p.key: folder / p.filename for p in layout.parts if (folder / p.filename).is_file()}

        part_names = {key: f"{channel}/{name}/{layout.part(key).filename}" for key in files}
        analyses = _analyse_family(env, templates_dir, part_names.values(), problems)

        variables: dict[str, list[tuple[str, int]]] = {}
        for template_name in part_names.values():
            if template_name in analyses:
                _collect_variables(analyses, template_name, variables)

        if any(p.severity == "error" for p in problems):
            raise ValidationFailed(problems)

        compiled = _compile_parts(env, layout, part_names, analyses, problems)
        if any(p.severity == "error" for p in problems):
            raise ValidationFailed(problems)

        literals = frozenset().union(*(a.literals for a in analyses.values()))
        digest = hashlib.sha256()
        for template_name in sorted(analyses):
            digest.update(template_name.encode() + b"\0" + _source(env, template_name)[0].encode() + b"\0")
        return cls(
            templates_dir=templates_dir,
            channel=channel,
            name=name,
            files=files,
            compiled=tuple(compiled),
            variables=variables,
            literals=literals,
            warnings=problems,
            digest=digest.hexdigest(),
            layout=layout,
        )

    def __reduce__(self):
        """Pickled as where to load it from and the digest of its sources: a worker process (Dask)
        compiles the same files and refuses to render if they changed since the wave validated them."""
        return (_reload, (self.templates_dir, self.channel, self.name, self.layout, self.digest))

    # -- static checks

    def variables(self) -> dict[str, list[tuple[str, int]]]:
        """Every variable the template reads from outside -> ``[(file, line), ...]``, includes and layouts too."""
        return {name: list(places) for name, places in self._variables.items()}

    def check(self, available: Iterable[str]) -> list[Problem]:
        """Warnings from loading.

        Also an error at every use of a variable not in ``available`` or ``ENGINE_VARIABLES``.
        """
        known = set(available) | ENGINE_VARIABLES
        problems = list(self.warnings)
        for variable, places in self._variables.items():
            if variable in known:
                continue
            hint = did_you_mean(variable, known)
            for file, line in places:
                problems.append(Problem(file, line, None, f"undefined variable '{variable}'{hint}"))
        return problems

    # -- rendering

    def render(self, context: Mapping[str, Any]) -> dict[str, str]:
        """Every part rendered with ``context``, e.g. ``{"subject": ..., "html": ..., "text": ...}``.

        All parts together run under one ``RenderBudget`` (one message)."""
        result: dict[str, str] = {}
        with metered(self.budget):
            for key, template, single_line in self._compiled:
                try:
                    text = template.render(context)
                    if len(text) > self.budget.output_chars:
                        raise BudgetExceeded(
                            f"over the render budget: the {key} part is longer than "
                            f"{self.budget.output_chars:,} characters"
                        )
                except Exception as exc:
                    raise self._error(exc, key, context) from exc
                result[key] = self._finished(key, text, single_line)
        return result

    def _finished(self, key: str, text: str, single_line: bool) -> str:
        if single_line:
            text = " ".join(text.split())
        if not text or text.isspace():
            raise RenderError(Problem(self._part_files[key], None, None, f"{key} is empty after rendering"), key)
        return text

    def render_many(self, contexts: Iterable[Mapping[str, Any]]) -> list[dict[str, str] | RenderError]:
        """``render`` for each context, in order; a failure is its ``RenderError`` in place, not raised."""
        results: list[dict[str, str] | RenderError] = []
        append = results.append
        render = self.render
        for context in contexts:
            try:
                append(render(context))
            except RenderError as exc:
                if exc.over_budget:
                    self._overruns += 1
                    if self._overruns >= self.budget.wave_overruns:
                        raise exhausted(exc.problem, self._overruns) from None
                exc.__traceback__ = None  # do not keep the frames (and the customer's data) alive
                exc.__cause__ = None
                append(exc)
        return results

    def _error(self, exc: Exception, key: str, context: Mapping[str, Any]) -> RenderError:
        file, line = self._part_files[key], None
        tb = exc.__traceback__
        while tb is not None:  # jinja rewrites frames to template file and line; the innermost wins
            filename = tb.tb_frame.f_code.co_filename
            if os.path.abspath(filename).startswith(self._template_root):
                file, line = _display(filename), tb.tb_lineno
            tb = tb.tb_next
        message, variable = self._reason(exc)
        message = _scrub(message, context)
        return RenderError(Problem(file, line, None, message), key, variable, isinstance(exc, BudgetExceeded))

    def _reason(self, exc: Exception) -> tuple[str, str | None]:
        """Why rendering failed, in words that show no value from the customer's data."""
        text = str(getattr(exc, "message", None) or exc)
        if isinstance(exc, UndefinedError):
            if m := re.fullmatch(r"'(\w+)' is undefined", text):
                return f"undefined variable '{m[1]}'", m[1]
            if m := re.fullmatch(r"(.*?) has no (?:attribute|element) (.+)", text, re.S):
                if self._written(m[2]):
                    return text, None
                return f"{m[1]} has no entry for a key taken from the data (key not shown)", None
            return "undefined value", None
        if isinstance(exc, SecurityError):
            if m := re.fullmatch(r"access to attribute (.+) of (.+) object is unsafe\.", text, re.S):
                attr = m[1] if self._written(m[1]) else "(not shown)"
                return f"blocked by the sandbox: access to attribute {attr} of {m[2]} object is unsafe", None
            return "blocked by the sandbox: unsafe operation", None
        if isinstance(exc, _FilterError | TypeError | ZeroDivisionError | BudgetExceeded):
            return text, None
        if isinstance(exc, RecursionError):
            return "macros call each other too deeply (RecursionError)", None
        return f"{type(exc).__name__} while rendering (message not shown, it may contain customer data)", None

    def _written(self, token: str) -> bool:
        """Whether ``token`` (a repr from a jinja message) is a name or string written in the templates."""
        if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
            return token[1:-1] in self._literals
        return False


def _scrub(message: str, context: Mapping[str, Any]) -> str:
    """Belt and braces: replace any of the customer's text values found in ``message``."""
    for value in context.values():
        if isinstance(value, str) and len(value) >= 3 and value in message:
            message = message.replace(value, "…")
    return message


def _layout_problems(layout: ChannelLayout, channel: str, folder: Path) -> list[Problem]:
    problems: list[Problem] = []
    present = {p.key for p in layout.parts if (folder / p.filename).is_file()}
    where = _display(folder)
    for group in layout.required:
        if present.isdisjoint(group):
            parts = [layout.part(k) for k in group]
            if len(parts) == 1:
                message = f"missing {parts[0].filename}: every {channel} template needs {parts[0].description}"
            else:
                choices = " or ".join(f"{p.filename} ({p.description})" for p in parts)
                message = f"missing {choices}: every {channel} template needs at least one"
            problems.append(Problem(where, None, None, message))
    recommended = [layout.part(k) for k in layout.recommended]
    if present.intersection(layout.recommended):
        for part in recommended:
            if part.key not in present:
                problems.append(
                    Problem(
                        where,
                        None,
                        None,
                        f"no {part.filename}: {channel} templates should have "
                        + " and ".join(p.filename for p in recommended)
                        + " so that every client can show the message",
                        severity="warning",
                    )
                )
    filenames = [p.filename for p in layout.parts]
    for path in sorted(folder.iterdir()):
        if path.name not in filenames and not path.name.startswith(("_", ".")):
            problems.append(
                Problem(
                    _display(path),
                    None,
                    None,
                    f"unexpected file '{path.name}' is not used{did_you_mean(path.name, filenames)}"
                    f" (parts: {', '.join(filenames)}; partials start with '_')",
                    severity="warning",
                )
            )
    return problems


def check_template(
    templates_dir: Path, channel: str, name: str, layout: ChannelLayout, available: Iterable[str]
) -> list[Problem]:
    """Every problem of the template ``templates_dir/channel/name`` against the columns ``available``."""
    try:
        return TemplateSet.load(templates_dir, channel, name, layout).check(available)
    except ValidationFailed as exc:
        return exc.problems
