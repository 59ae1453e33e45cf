"""The type of each imported column, and why: ``settle_column(path, name, column, keep_text=)``.

pyarrow infers types over the whole file, but a single cell it cannot parse turns a column of
numbers into text, and a blank written as a space (``" "``) counts as such a cell. Here a text
column is looked at again, column-wise:

- blanks (empty, only spaces, or a null marker such as ``NA`` or ``n/a``) are NULL;
- if every other value is a number, the column is numeric: ``integer`` when every value is a
  whole number within 64 bits, else ``number``;
- if at most ``MAX_BAD_SHARE`` of the other values (or just one) are not numbers and at least
  ``MIN_NUMBERS`` are, the column is still numeric and the cells that are not numbers are
  returned as bad cells: their rows are rejected with a reason, never the whole column turned
  into text without a word (``keep_text`` keeps a column as text);
- otherwise the column is text.

Every column comes back with a ``reason`` for the import summary, e.g. ``"number: 7,032 numbers,
11 blanks"``. Columns come back in a type the loaders write: int64, float64, bool, timestamp[us],
date32, string (an empty string is NULL) or null.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from orchestrator.customers.report import ImportFailed

__all__ = ["MAX_BAD_SHARE", "MIN_NUMBERS", "Settled", "settle_column"]

MAX_BAD_SHARE = 0.01
MIN_NUMBERS = 20
PREFIX_ROWS = 2_000  # a column whose first rows already hold too many words is text: no need to read on

NULL_MARKERS = sorted(set(pa_csv.ConvertOptions().null_values) - {""})
# Numbers without a leading "+": "+4930 123456" next to a blank written as " " stays text.
_NUMBER = r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_WHOLE = r"^-?\d{1,18}$"


@dataclass
class Settled:
    """A column in a loadable type, why it has that type, and the rows whose cell does not fit it."""

    column: pa.ChunkedArray
    reason: str
    bad: np.ndarray | None = None  # bool per row: the cell is not a number in a numeric column


def settle_column(path: Path, name: str, column: pa.ChunkedArray, *, keep_text: str | None = None) -> Settled:
    """``column`` in a loadable type with the reason for it; see the module docstring.

    ``keep_text``: keep the column as text, for this reason (e.g. ``"kept as text (--text)"``)."""
    kind = column.type
    try:
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        if pa.types.is_large_string(kind):
            column = column.cast(pa.string())
            kind = column.type
        if kind == pa.string():
            return _text_or_numbers(column, keep_text)
        return _typed(column)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ImportFailed(path, f"column '{name}' has values of type {kind} that cannot be imported") from error


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}"


def _typed(column: pa.ChunkedArray) -> Settled:
    """A column pyarrow (or Parquet) already typed."""
    kind = column.type
    values, blanks = len(column) - column.null_count, column.null_count
    counts = f"{_count(values, 'values')}, {_count(blanks, 'blanks')}"
    if pa.types.is_null(kind):
        return Settled(column, f"text: no values, {_count(len(column), 'blanks')}")
    if pa.types.is_boolean(kind):
        return Settled(column, f"boolean: {counts}")
    if pa.types.is_integer(kind):
        numbers = f"{_count(values, 'numbers')}, {_count(blanks, 'blanks')}"
        try:
            return Settled(column.cast(pa.int64()), f"integer: {numbers}")
        except pa.ArrowInvalid:  # uint64 beyond the int64 range
            return Settled(column.cast(pa.float64()), f"number: {numbers}, too large for 64-bit integers")
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return Settled(column.cast(pa.float64()), f"number: {_count(values, 'numbers')}, {_count(blanks, 'blanks')}")
    if pa.types.is_timestamp(kind):
        return Settled(column.cast(pa.timestamp("us", tz=kind.tz), safe=False), f"datetime: {counts}")
    if pa.types.is_date(kind):
        return Settled(column.cast(pa.date32()), f"date: {counts}")
    return _text(column.cast(pa.string()), "text: values of type " + str(kind))


def _text(column: pa.ChunkedArray, reason: str) -> Settled:
    return Settled(pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column), reason)


def _text_or_numbers(column: pa.ChunkedArray, keep_text: str | None) -> Settled:
    if keep_text:
        return _text(column, _text_reason(column, keep_text))
    # Most text columns show words in their first rows: decide on those without looking further.
    head = min(len(column), PREFIX_ROWS + int(3 * MAX_BAD_SHARE * len(column)))
    if head < len(column):
        trimmed, blank = _trimmed(column[:head])
        if _not_numbers(trimmed, blank) > max(1, MAX_BAD_SHARE * len(column)):
            return _text(column, _text_reason(column, f"more than {MAX_BAD_SHARE:.0%} of them not numbers"))
    trimmed, blank = _trimmed(column)
    blanks = int(pc.sum(blank).as_py() or 0)
    values = len(column) - blanks
    if values == 0:
        return Settled(pa.nulls(len(column), pa.string()), f"text: no values, {_count(len(column), 'blanks')}")
    number = pc.fill_null(pc.match_substring_regex(trimmed, _NUMBER), False)
    numbers = int(pc.sum(pc.and_(number, pc.invert(blank))).as_py() or 0)
    not_numbers = values - numbers
    if not_numbers and (numbers < MIN_NUMBERS or not_numbers > max(1, MAX_BAD_SHARE * values)):
        return _text(column, _text_reason(column, f"{_count(not_numbers, 'not numbers')}"))
    bad = pc.and_(pc.invert(number), pc.invert(blank))
    clean = pc.if_else(pc.or_(blank, bad), pa.scalar(None, pa.string()), trimmed)
    whole = pc.fill_null(pc.match_substring_regex(clean, _WHOLE), True)
    reason = f"{_count(numbers, 'numbers')}, {_count(blanks, 'blanks')}"
    if not_numbers:
        reason += f", {_count(not_numbers, 'rejected as not numbers')}"
    if pc.all(whole).as_py():
        return Settled(clean.cast(pa.int64()), "integer: " + reason, _mask(bad, not_numbers))
    return Settled(clean.cast(pa.float64()), "number: " + reason, _mask(bad, not_numbers))


def _text_reason(column: pa.ChunkedArray, why: str) -> str:
    """``text: N values, M blanks, why``; a text column's blanks are its empty cells (NULL once loaded)."""
    blanks = column.null_count + int(pc.sum(pc.equal(column, "")).as_py() or 0)
    return f"text: {_count(len(column) - blanks, 'values')}, {_count(blanks, 'blanks')}, {why}"


def _trimmed(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """The values without surrounding spaces, and which are blanks (empty, spaces, a null marker or null)."""
    trimmed = pc.utf8_trim_whitespace(column)
    markers = pa.array(NULL_MARKERS, pa.string())
    blank = pc.fill_null(pc.or_(pc.equal(trimmed, ""), pc.is_in(trimmed, value_set=markers)), True)
    return trimmed, blank


def _not_numbers(trimmed: pa.ChunkedArray, blank: pa.ChunkedArray) -> int:
    number = pc.fill_null(pc.match_substring_regex(trimmed, _NUMBER), False)
    return int(pc.sum(pc.and_(pc.invert(number), pc.invert(blank))).as_py() or 0)


def _mask(bad: pa.ChunkedArray, count: int) -> np.ndarray | None:
    return bad.to_numpy(zero_copy_only=False).astype(bool) if count else None
