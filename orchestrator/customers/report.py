"""What a customer import reports: ``ImportReport``, ``BadRow`` and the error ``ImportFailed``.

Shared by the reading (``orchestrator.customers.files``) and loading (``orchestrator.customers.load``)
halves of ``orchestrator.customers.importer``, which re-exports all three. Messages name lines and columns,
never cell values; ``ImportFailed`` lists at most ``MAX_LISTED`` bad rows in its text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.customers.table import ColumnKind
from orchestrator.errors import Problem

__all__ = ["MAX_LISTED", "BadRow", "ImportFailed", "ImportReport"]

MAX_LISTED = 20


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that was not imported: its physical 1-based line in the file and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import read and did. ``updated`` counts every existing customer in the file; ``bad_rows`` were
    skipped (and copied to ``reject_file`` when the caller asked for one)."""

    rows_read: int = 0
    rows_imported: int = 0
    inserted: int = 0
    updated: int = 0
    columns: dict[str, ColumnKind] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)
    id_generated: bool = False
    erased_skipped: int = 0  # rows of erased customers (do_not_contact from an erasure): not imported
    layout: dict[str, str] = field(default_factory=dict)  # format, delimiter, header, encoding: what and how chosen
    types: dict[str, str] = field(default_factory=dict)  # column -> its type and why, e.g. "number: 7,032 numbers"
    ids: str = ""  # where the ids came from: "from column 'id'" or "generated: 1 to 500"
    reject_file: Path | None = None  # where the bad rows were copied to, as they are in the file


class ImportFailed(ValueError):
    """The import was refused and nothing was written; ``bad_rows`` and ``report`` say why."""

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        bad_rows: Sequence[BadRow] = (),
        report: ImportReport | None = None,
    ):
        self.path = path
        self.message = message
        self.bad_rows = list(bad_rows)
        self.report = report
        text = f"{path}: {message}"
        listed = [f"{path}:{row.line}: {row.reason}" for row in self.bad_rows[:MAX_LISTED]]
        if len(self.bad_rows) > MAX_LISTED:
            listed.append(f"... and {len(self.bad_rows) - MAX_LISTED} more")
        super().__init__("\n".join([text, *listed]))

    @property
    def problems(self) -> list[Problem]:
        """The failure as ``Problem`` objects, one per bad row (or one for the whole file)."""
        if not self.bad_rows:
            return [Problem(str(self.path), None, None, self.message)]
        return [Problem(str(self.path), row.line, None, row.reason) for row in self.bad_rows]
