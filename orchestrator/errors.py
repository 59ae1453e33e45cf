"""Problems found in campaign managers' files, reported as ``file:line:col: message``.

Every validator (rules files, templates, imports) reports ``Problem`` objects;
``ValidationFailed`` carries a list of them so that nothing runs or is sent while any
error is open.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth a warning) at one place in one file."""

    file: str
    line: int | None
    col: int | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        prefix = "" if self.severity == "error" else "warning: "
        return f"{where}: {prefix}{self.message}"


class ValidationFailed(Exception):
    """Raised when campaign files have errors; ``problems`` lists every one of them."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = [p for p in problems]
        errors = [p for p in self.problems if p.severity == "error"]
        text = "\n".join(str(p) for p in errors) or "validation failed"
        super().__init__(f"{len(errors)} error(s):\n{text}")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``", did you mean 'x'?"`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f", did you mean '{match[0]}'?" if match else ""
