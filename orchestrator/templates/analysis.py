"""Static analysis of Jinja templates: what each file reads, defines and includes, from its syntax tree.

Contract:

- ``_analyse(env, name, file, ast)`` returns the ``_Analysis`` of one parsed template and the
  ``Problem``s found in it without data: unknown filters and tests, access to ``_private``
  attributes, included, extended or imported templates that do not exist or whose name is
  computed. Problems carry ``file`` and the line.
- ``_Analysis.loads`` are the reads of variables that nothing defines at that place, scoped
  as in Jinja (``for``, ``macro``, ``call``, ``with`` and ``block`` bodies); reads under
  ``|default`` or an ``is defined`` test do not count. The analysis errs towards not
  reporting: whatever slips through still fails at render time with file and line.
- ``_family(analyses, root)`` is ``root`` and every template it depends on, transitively;
  ``_collect_variables`` adds what that family reads from outside to a
  ``{variable: [(file, line), ...]}`` mapping.

Nothing here compiles or renders a template, or sees customer data.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import nodes
from jinja2.exceptions import TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import Problem, did_you_mean


@dataclass(frozen=True, slots=True)
class _Analysis:
    """What one template file reads and defines, from its syntax tree."""

    name: str
    file: str  # for problems
    loads: tuple[tuple[str, int], ...]  # (variable, line): reads not covered by an enclosing for/set/macro/with
    stores: frozenset[str]  # names defined for the whole template: top-level set, macro, import
    shared: frozenset[str]  # names defined where this template includes a partial
    dependencies: tuple[tuple[str, int], ...]  # (template name, line) of include/extends/import
    literals: frozenset[str]  # names and strings written in the template


_ALWAYS_DEFINED = frozenset({"loop", "self", "super", "caller", "varargs", "kwargs"})


def _assigned(node_or_nodes: nodes.Node | list[nodes.Node]) -> set[str]:
    """Every name assigned anywhere in the given nodes (set and for targets, macro names, imports)."""
    roots = node_or_nodes if isinstance(node_or_nodes, list) else [node_or_nodes]
    names: set[str] = set()
    for root in roots:
        for node in [root, *root.find_all(nodes.Node)]:
            if isinstance(node, nodes.Name) and node.ctx != "load":
                names.add(node.name)
            elif isinstance(node, nodes.Macro):
                names.add(node.name)
            elif isinstance(node, nodes.Import):
                names.add(node.target)
            elif isinstance(node, nodes.FromImport):
                names.update(n if isinstance(n, str) else n[1] for n in node.names)
    return names


class _Reads:
    """Reads of variables that nothing in the template defines at that place, with lines.

    Scopes as in Jinja: ``for``, ``macro``, ``call`` and ``with`` bodies see their own
    variables; a ``set`` outside them (also inside an ``if``) counts for the whole template.
    A read under ``|default(...)`` or an ``is defined`` test is not counted. Errs towards not
    reporting: whatever slips through still fails at render time with file and line.
    """

    def __init__(self) -> None:
        self.loads: list[tuple[str, int]] = []
        self.stores: set[str] = set()
        self.shared: set[str] = set()  # names visible where a partial is included (loop variables ...)

    def walk(self, node: nodes.Node, visible: frozenset[str], top: bool) -> None:
        if isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name not in visible:
                self.loads.append((node.name, node.lineno))
            return
        if isinstance(node, nodes.Include):
            self.shared |= visible
        if self._walk_scope(node, visible, top) or self._walk_guarded(node, visible, top):
            return
        for child in node.iter_child_nodes():
            self.walk(child, visible, top)

    def _walk_scope(self, node: nodes.Node, visible: frozenset[str], top: bool) -> bool:
        """Walk a node that defines names (for, macro, call, with, block, set, import); False for any other."""
        if isinstance(node, nodes.For):
            self._walk_for(node, visible, top)
        elif isinstance(node, nodes.Macro | nodes.CallBlock):
            self._walk_macro(node, visible, top)
        elif isinstance(node, nodes.With):
            for value in node.values:
                self.walk(value, visible, top)
            self._walk_body(node.body, visible | _assigned(list(node.targets)))
        elif isinstance(node, nodes.Block):
            self._walk_body(node.body, visible)
        elif isinstance(node, nodes.Assign | nodes.AssignBlock):
            if top:
                self.stores |= _assigned(node.target)
            for child in node.iter_child_nodes(exclude=("target",)):
                self.walk(child, visible, top)
        elif isinstance(node, nodes.Import | nodes.FromImport):
            if top:
                self.stores |= _assigned(node)
        else:
            return False
        return True

    def _walk_body(self, body: list[nodes.Node], visible: frozenset[str]) -> None:
        """A nested body, which sees what it assigns itself."""
        inner = visible | _assigned(body)
        for child in body:
            self.walk(child, inner, False)

    def _walk_for(self, node: nodes.For, visible: frozenset[str], top: bool) -> None:
        self.walk(node.iter, visible, top)
        inner = visible | _assigned(node.target) | _assigned(node.body) | {"loop"}
        for child in [*node.body, *([node.test] if node.test else [])]:
            self.walk(child, inner, False)
        for child in node.else_:
            self.walk(child, visible, top)

    def _walk_macro(self, node: nodes.Macro | nodes.CallBlock, visible: frozenset[str], top: bool) -> None:
        if isinstance(node, nodes.Macro) and top:
            self.stores.add(node.name)
        if isinstance(node, nodes.CallBlock):
            self.walk(node.call, visible, top)
        for default in node.defaults:
            self.walk(default, visible, top)
        self._walk_body(node.body, visible | {a.name for a in node.args} | _ALWAYS_DEFINED)

    def _walk_guarded(self, node: nodes.Node, visible: frozenset[str], top: bool) -> bool:
        """Walk an ``if`` (its body sees names tested ``is defined``) or skip a guarded read; False otherwise."""
        if isinstance(node, nodes.If):
            self.walk(node.test, visible, top)
            guarded = visible | _tested_defined(node.test)
            for child in node.body:
                self.walk(child, guarded, top)
            for child in [*node.elif_, *node.else_]:
                self.walk(child, visible, top)
            return True
        if isinstance(node, nodes.Filter) and node.name in ("default", "d") and isinstance(node.node, nodes.Name):
            for child in node.iter_child_nodes(exclude=("node",)):
                self.walk(child, visible, top)
            return True
        return (
            isinstance(node, nodes.Test) and node.name in ("defined", "undefined") and isinstance(node.node, nodes.Name)
        )


def _tested_defined(test: nodes.Node) -> set[str]:
    """Names tested with ``is defined`` in an ``if`` condition (their use inside is guarded)."""
    return {
        t.node.name
        for t in [test, *test.find_all(nodes.Test)]
        if isinstance(t, nodes.Test) and t.name == "defined" and isinstance(t.node, nodes.Name)
    }


def _analyse(
    env: ImmutableSandboxedEnvironment, name: str, file: str, ast: nodes.Template
) -> tuple[_Analysis, list[Problem]]:
    """What ``ast`` reads, defines and includes, and what is wrong in it (filters, private attributes, includes)."""
    problems: list[Problem] = []
    reads = _Reads()
    reads.walk(ast, frozenset(env.globals) | {"self", "super"}, True)
    literals = {node.name for node in ast.find_all(nodes.Name)}
    for const in ast.find_all(nodes.Const):
        if isinstance(const.value, str):
            literals.add(const.value)
    for access in ast.find_all((nodes.Getattr, nodes.Getitem)):
        attr: str | None
        if isinstance(access, nodes.Getattr):
            attr = access.attr
        elif isinstance(access, nodes.Getitem):
            attr = getattr(access.arg, "value", None)
        else:
            continue  # find_all yields only these
        if isinstance(attr, str):
            literals.add(attr)
            if attr.startswith("_"):
                problems.append(Problem(file, access.lineno, None, f"access to '{attr}' is not allowed in templates"))
    for applied in ast.find_all(nodes.Filter):
        attr = getattr(applied.args[0], "value", None) if applied.name == "attr" and applied.args else None
        if isinstance(attr, str) and attr.startswith("_"):
            problems.append(Problem(file, applied.lineno, None, f"access to '{attr}' is not allowed in templates"))
    for kind, known in (("filter", env.filters), ("test", env.tests)):
        for named in ast.find_all(nodes.Filter if kind == "filter" else nodes.Test):
            if named.name not in known:
                message = f"unknown {kind} '{named.name}'{did_you_mean(named.name, known)}"
                problems.append(Problem(file, named.lineno, None, message))

    dependencies = _dependencies(env, file, ast, problems)

    analysis = _Analysis(
        name=name,
        file=file,
        loads=tuple(reads.loads),
        stores=frozenset(reads.stores),
        shared=frozenset(reads.shared),
        dependencies=tuple(dependencies),
        literals=frozenset(literals),
    )
    return analysis, problems


def _dependencies(
    env: ImmutableSandboxedEnvironment, file: str, ast: nodes.Template, problems: list[Problem]
) -> list[tuple[str, int]]:
    """(template, line) of each include, extends and import found; a missing or computed name is a problem."""
    dependencies: list[tuple[str, int]] = []
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        if not isinstance(node, nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport):
            continue  # find_all yields only these
        target = node.template
        items = target.items if isinstance(target, nodes.List | nodes.Tuple) else []
        quoted = [i.value for i in items if isinstance(i, nodes.Const) and isinstance(i.value, str)]
        if isinstance(target, nodes.Const) and isinstance(target.value, str):
            names = [target.value]
        elif isinstance(target, nodes.List | nodes.Tuple) and len(quoted) == len(items):
            names = quoted  # the first one found is used
        else:
            problems.append(
                Problem(
                    file,
                    node.lineno,
                    None,
                    "the template name is computed, so it cannot be checked before sending; write it as a quoted name",
                    severity="warning",
                )
            )
            continue
        found = [n for n in names if _exists(env, n)]
        if found:
            dependencies.append((found[0], node.lineno))
        elif not getattr(node, "ignore_missing", False):
            wanted = " or ".join(f"'{n}'" for n in names)
            message = f"template {wanted} not found{did_you_mean(names[0], env.list_templates())}"
            problems.append(Problem(file, node.lineno, None, message))
    return dependencies


def _source(env: ImmutableSandboxedEnvironment, name: str) -> tuple[str, str]:
    """The source of template ``name`` and the file it was read from, through the environment's loader."""
    if env.loader is None:
        raise TypeError("the template environment has no loader")
    source, filename, _ = env.loader.get_source(env, name)
    return source, filename or name


def _exists(env: ImmutableSandboxedEnvironment, name: str) -> bool:
    try:
        _source(env, name)
    except TemplateNotFound:
        return False
    return True


def _family(analyses: dict[str, _Analysis], root: str) -> list[str]:
    """``root`` and every template it includes, extends or imports, transitively."""
    seen = [root]
    for name in seen:
        for dependency, _ in analyses[name].dependencies:
            if dependency in analyses and dependency not in seen:
                seen.append(dependency)
    return seen


def _collect_variables(analyses: dict[str, _Analysis], root: str, into: dict[str, list[tuple[str, int]]]) -> None:
    """Add the outside variables of ``root``'s family (itself, its includes and layouts) to ``into``.

    A partial sees what its includer sets (also loop variables around the include), a layout
    what its child sets and the reverse, so a name set at the top of any file of the family,
    or visible where a partial is included, counts as defined in all of them.
    """
    family = [analyses[n] for n in _family(analyses, root)]
    defined = set().union(*(m.stores | m.shared for m in family))
    for member in family:
        for variable, line in member.loads:
            if variable not in defined:
                places = into.setdefault(variable, [])
                if (member.file, line) not in places:
                    places.append((member.file, line))
