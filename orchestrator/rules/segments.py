"""Named audience segments: reusable conditions in ``rules/segments/<name>.yaml``.

A segment file holds one mapping::

    name: lapsed                       # required; must be the file name without .yaml
    description: Last purchase 3 to 12 months ago.   # optional
    audience:                          # required; the condition grammar of condition_parser
      recency_days: {between: [90, 365]}

A rules file (or another segment) uses it as a condition item ``in_segment: lapsed``;
``not: {in_segment: lapsed}`` selects everyone else.

``resolve_segments(condition, positions, segments_dir=..., columns=...)`` returns the
condition with every ``InSegment`` filled with its segment's audience, and every problem:
an unknown segment (at the ``in_segment`` value, with a "did you mean" among the segment
files), anything wrong inside a segment file (at that file's line and column, reported
once however often the segment is used) and segments that refer to each other in a
cycle. The segments folder is ``<rules file's folder>/segments`` unless given.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from orchestrator.customers.table import ColumnKind
from orchestrator.errors import Problem, did_you_mean
from orchestrator.rules.condition_parser import (
    All,
    Any,
    ColumnTest,
    Condition,
    InSegment,
    Not,
    parse_condition,
)
from orchestrator.rules.conditions import check_audience
from orchestrator.rules.yaml_source import Positions, describe, parse_yaml

__all__ = ["SEGMENT_KEYS", "SegmentLibrary", "resolve_segments", "segments_dir_for"]

SEGMENT_KEYS = ("name", "description", "audience")


def segments_dir_for(rules_path: Path) -> Path:
    """The segments folder of a rules file: ``segments`` next to it."""
    return Path(rules_path).parent / "segments"


def resolve_segments(
    condition: Condition,
    positions: Positions,
    *,
    segments_dir: Path,
    columns: dict[str, ColumnKind] | None,
) -> tuple[Condition, list[Problem]]:
    """``condition`` with its segments read from ``segments_dir``, and every problem found."""
    library = SegmentLibrary(segments_dir, columns)
    resolved = library.resolve(condition, positions, ())
    return resolved, library.problems


class SegmentLibrary:
    """Reads segment files on demand, each once; collects their problems."""

    def __init__(self, segments_dir: Path, columns: dict[str, ColumnKind] | None):
        self.segments_dir = Path(segments_dir)
        self.columns = columns
        self.problems: list[Problem] = []
        self._done: dict[str, Condition | None] = {}

    def names(self) -> list[str]:
        """The segments that exist: the ``*.yaml`` files of the folder."""
        if not self.segments_dir.is_dir():
            return []
        return sorted(p.stem for p in self.segments_dir.glob("*.yaml") if p.is_file())

    def resolve(self, condition: Condition, positions: Positions, stack: tuple[str, ...]) -> Condition:
        """``condition`` with every ``InSegment`` below it filled in (``None`` where it failed)."""
        if isinstance(condition, (All, Any)):
            children = tuple(self.resolve(c, positions, stack) for c in condition.conditions)
            return dataclasses.replace(condition, conditions=children)
        if isinstance(condition, Not):
            return dataclasses.replace(condition, condition=self.resolve(condition.condition, positions, stack))
        if isinstance(condition, InSegment):
            return dataclasses.replace(condition, condition=self._segment(condition, positions, stack))
        assert isinstance(condition, ColumnTest)
        return condition

    def _segment(self, ref: InSegment, positions: Positions, stack: tuple[str, ...]) -> Condition | None:
        name = ref.name
        if name in stack:
            chain = " -> ".join((*stack[stack.index(name) :], name))
            self.problems.append(positions.problem(ref.loc, f"segments refer to each other in a cycle: {chain}"))
            return None
        if name in self._done:
            return self._done[name]
        path = self.segments_dir / f"{name}.yaml"
        if not path.is_file():
            known = self.names()
            if known:
                hint = did_you_mean(name, known) or f"; the segments are: {', '.join(known)}"
            else:
                hint = f"; there are no segment files in {self.segments_dir}"
            self.problems.append(positions.problem(ref.loc, f"unknown segment '{name}'{hint}"))
            self._done[name] = None
            return None
        self._done[name] = None  # until read; a cycle is caught by the stack first
        condition = self._read(path, name, (*stack, name))
        self._done[name] = condition
        return condition

    def _read(self, path: Path, name: str, stack: tuple[str, ...]) -> Condition | None:
        file = str(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            self.problems.append(Problem(file, None, None, "the segment file is not UTF-8 text"))
            return None
        except OSError as exc:
            self.problems.append(Problem(file, None, None, f"cannot read the segment file: {exc.strerror or exc}"))
            return None
        document, problems = parse_yaml(text, file)
        self.problems += problems
        if document is None:
            return None
        data, positions = document.data, document.positions
        if not isinstance(data, dict):
            what = "is empty" if data is None else "is not a mapping of keys"
            self.problems.append(positions.problem((), f"the segment file {what}; it needs the keys name and audience"))
            return None
        before = len(self.problems)
        for key in data:
            if key not in SEGMENT_KEYS:
                hint = did_you_mean(str(key), SEGMENT_KEYS) or f"; the keys are: {', '.join(SEGMENT_KEYS)}"
                self.problems.append(positions.problem((key,), f"unknown key '{key}'{hint}", at="key"))
        given = data.get("name")
        if "name" not in data:
            self.problems.append(positions.problem((), f"missing required key 'name' (the file name: {name})"))
        elif given != name:
            self.problems.append(
                positions.problem(("name",), f"the segment name must be the file name '{name}', not {describe(given)}")
            )
        if "description" in data and not isinstance(data["description"], str):
            self.problems.append(positions.problem(("description",), "'description' must be text"))
        if "audience" not in data:
            self.problems.append(positions.problem((), "missing required key 'audience'"))
            return None
        condition, issues = parse_condition(data["audience"], ("audience",), partial=True)
        self.problems += [positions.problem(i.loc, i.message, at=i.at) for i in issues]
        if condition is None:
            return None
        if self.columns is not None:
            self.problems += check_audience(condition, self.columns, positions)
        resolved = self.resolve(condition, positions, stack)
        return None if issues or len(self.problems) > before else resolved
