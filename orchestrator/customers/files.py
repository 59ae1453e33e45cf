"""Reading a customer file into memory: an Arrow table plus where each row came from.

``read_customer_file(path, delimiter=, header=, id_column=)`` returns a ``CustomerFile``, or raises
``ImportFailed`` for a missing, empty, unreadable or unsupported file or an unknown ``id_column``.

- **Formats**: chosen by suffix: CSV (``.csv``, ``.tsv``, ``.txt``, ``.tab``, each optionally
  ``.gz`` or ``.bz2``) and Parquet (``.parquet``, ``.pq``).
- **CSV layout**: the delimiter (one of ``, ; TAB |``) and whether the first line is a header are
  sniffed from the first ``SAMPLE_BYTES`` / ``SAMPLE_RECORDS`` unless given; without a header the
  columns are ``col_1..col_n``.
- **Encoding**: UTF-8 (with or without BOM); if the file is not UTF-8 it is read as Windows-1252,
  then Latin-1.
- **Types**: inferred by pyarrow over the whole file; the chosen id column is always read as text.
- **Bad rows**: rows with the wrong number of fields are skipped by the reader and kept in
  ``CustomerFile.invalid``; ``CustomerFile.bad_rows(issues)`` turns them and the caller's
  ``RowIssue`` objects (by record number) into ``BadRow`` objects by physical 1-based line number
  (blank lines and quoted newlines counted; Parquet: row number).
- **Names**: ``CustomerFile.names()`` gives safe SQL identifiers (``orchestrator.customers.identifiers``), with
  the id column named ``customer_id``. Nothing here touches the database.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from orchestrator.customers.identifiers import normalise_name, normalise_names
from orchestrator.customers.report import MAX_LISTED, BadRow, ImportFailed
from orchestrator.customers.table import ID_COLUMN
from orchestrator.errors import did_you_mean

__all__ = ["CustomerFile", "RowIssue", "read_customer_file"]

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSED_SUFFIXES = (".gz", ".bz2")
DELIMITERS = ",;\t|"
SAMPLE_BYTES = 64 * 1024
SAMPLE_RECORDS = 50

_LOOKS_TYPED = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$|^\d{4}-\d\d-\d\d")


@dataclass
class CustomerFile:
    """A file read into memory: columns under their original names, in file order."""

    path: Path
    table: pa.Table
    originals: list[str]
    id_index: int | None
    records: np.ndarray  # the record number of each table row (header and skipped rows counted)
    header_records: int  # records before the first data row
    invalid: list[tuple[int, str]]  # (record number, reason) of rows the reader skipped
    to_lines: Callable[[set[int]], dict[int, int]]  # record numbers -> physical line numbers

    @property
    def rows_read(self) -> int:
        return self.table.num_rows + len(self.invalid)

    def names(self) -> list[str]:
        names = normalise_names(self.originals, reserved=[ID_COLUMN])
        if self.id_index is not None:
            names[self.id_index] = ID_COLUMN
        return names

    def renamed(self) -> dict[str, str]:
        return {old: new for old, new in zip(self.originals, self.names(), strict=True) if old != new}

    def bad_rows(self, issues: Iterable[RowIssue]) -> list[BadRow]:
        """``issues`` and the rows the reader skipped as ``BadRow`` objects, in file order."""
        skipped = (RowIssue(record, reason) for record, reason in self.invalid)
        issues = sorted([*skipped, *issues], key=lambda i: i.record)
        if not issues:
            return []
        wanted = {issue.record for issue in issues} | {issue.earlier for issue in issues if issue.earlier}
        lines = self.to_lines(wanted)
        return [
            BadRow(lines[issue.record], issue.reason.replace("{earlier}", str(lines.get(issue.earlier or 0))))
            for issue in issues
        ]


@dataclass(frozen=True)
class RowIssue:
    """A row left out, by record number; ``{earlier}`` in ``reason`` becomes the line of ``earlier``."""

    record: int
    reason: str
    earlier: int | None = None


def read_customer_file(
    path: Path, *, delimiter: str | None, header: bool | None, id_column: str | None
) -> CustomerFile:
    """``path`` read into memory; raises ``ImportFailed`` if it cannot be (see the module docstring)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        supported = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
        raise ImportFailed(
            path, f"unsupported file type '{suffix or path.name}'; expected one of {supported} (CSV may end in .gz)"
        )
    if not path.is_file():
        raise ImportFailed(path, "file not found")
    if path.stat().st_size == 0:
        raise ImportFailed(path, "the file is empty")
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path, id_column)
    return _read_csv(path, delimiter, header, id_column)


def _choose_id(path: Path, originals: Sequence[str], id_column: str | None) -> int | None:
    normalised = normalise_names(originals)
    if id_column is None:
        return normalised.index(ID_COLUMN) if ID_COLUMN in normalised else None
    if id_column in originals:
        return list(originals).index(id_column)
    key = normalise_name(id_column, 0)
    if key in normalised:
        return normalised.index(key)
    # Suggest a name spelt the way the user spelt theirs: as in the file, or normalised.
    if key == id_column:
        hint = did_you_mean(key, normalised) or did_you_mean(id_column, originals)
    else:
        hint = did_you_mean(id_column, originals) or did_you_mean(key, normalised)
    listed = ", ".join(normalised[:MAX_LISTED]) + (", ..." if len(normalised) > MAX_LISTED else "")
    raise ImportFailed(path, f"there is no id column '{id_column}'{hint} (columns: {listed})")


def _read_parquet(path: Path, id_column: str | None) -> CustomerFile:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise ImportFailed(path, "not a readable Parquet file") from error
    if table.num_columns == 0:
        raise ImportFailed(path, "the file has no columns")
    originals = table.column_names
    return CustomerFile(
        path=path,
        table=table,
        originals=originals,
        id_index=_choose_id(path, originals, id_column),
        records=np.arange(1, table.num_rows + 1),
        header_records=0,
        invalid=[],
        to_lines=lambda records: {record: record for record in records},
    )


@dataclass(frozen=True)
class _CsvLayout:
    delimiter: str
    header: bool
    encoding: str
    names: list[str]  # header fields as Python's csv module reads them, or col_1..col_n


def _read_csv(path: Path, delimiter: str | None, header: bool | None, id_column: str | None) -> CustomerFile:
    layout = _sniff(path, delimiter, header)
    id_index = _choose_id(path, layout.names, id_column)
    table, invalid, layout = _parse_csv(path, layout, id_index)
    if layout.header:
        originals = table.column_names
        if originals != layout.names:  # the two parsers disagree on the header; trust pyarrow
            id_index = _choose_id(path, originals, id_column)
    else:
        originals = [f"col_{i}" for i in range(1, table.num_columns + 1)]
    header_records = 1 if layout.header else 0
    if table.num_rows == 0 and not invalid:
        raise ImportFailed(path, "the file has a header but no data rows" if layout.header else "the file is empty")
    skipped = np.array(sorted(record for record, _ in invalid), dtype=np.int64)
    every = np.arange(header_records + 1, header_records + table.num_rows + len(invalid) + 1, dtype=np.int64)
    records = np.setdiff1d(every, skipped, assume_unique=True) if len(skipped) else every
    return CustomerFile(
        path=path,
        table=table,
        originals=originals,
        id_index=id_index,
        records=records,
        header_records=header_records,
        invalid=invalid,
        to_lines=lambda wanted: _physical_lines(path, layout, wanted),
    )


def _read_sample(path: Path) -> bytes:
    with pa.input_stream(str(path), compression="detect") as stream:
        sample = stream.read(SAMPLE_BYTES)
        if len(sample) == SAMPLE_BYTES and b"\n" in sample:
            sample = sample[: sample.rindex(b"\n") + 1]
    return sample.removeprefix(b"\xef\xbb\xbf")


def _decode(sample: bytes) -> tuple[str, str]:
    try:
        return sample.decode("utf-8"), "utf8"
    except UnicodeDecodeError:
        return sample.decode("cp1252", errors="replace"), "cp1252"


def _sniff(path: Path, delimiter: str | None, header: bool | None) -> _CsvLayout:
    try:
        text, encoding = _decode(_read_sample(path))
    except (pa.ArrowException, OSError, EOFError) as error:
        raise ImportFailed(path, "the file cannot be read (damaged or not compressed as its name says)") from error
    if not text.strip():
        raise ImportFailed(path, "the file is empty")
    lines = io.StringIO(text, newline="").readlines()[: SAMPLE_RECORDS * 2]
    if delimiter is None:
        delimiter = _sniff_delimiter("".join(lines), path)
    reader = csv.reader(io.StringIO("".join(lines)), delimiter=delimiter)
    records = [record for record in itertools.islice(reader, SAMPLE_RECORDS) if record]
    if not records:
        raise ImportFailed(path, "the file is empty")
    if header is None:
        header = _sniff_header(records)
    names = records[0] if header else [f"col_{i}" for i in range(1, len(records[0]) + 1)]
    return _CsvLayout(delimiter=delimiter, header=header, encoding=encoding, names=names)


def _sniff_delimiter(sample: str, path: Path) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    first = sample.splitlines()[0] if sample else ""
    counts = {candidate: first.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=counts.__getitem__)
    if counts[best]:
        return best
    return "\t" if {".tsv", ".tab"} & {suffix.lower() for suffix in path.suffixes} else ","


def _sniff_header(records: list[list[str]]) -> bool:
    """Whether the first record is a header; when nothing tells, it is."""
    first = records[0]
    if any(_LOOKS_TYPED.match(value) for value in first):
        return False
    if ID_COLUMN in normalise_names(first):
        return True
    data = [record for record in records[1:] if len(record) == len(first)]
    votes = 0
    for position, name in enumerate(first):
        values = [record[position] for record in data if record[position] != ""]
        if values and all(_LOOKS_TYPED.match(value) for value in values):
            return True  # text above a column of numbers or dates
        if name in values:
            votes -= 1  # a value seen again further down, e.g. "yes" in a yes/no column
        elif len({len(value) for value in values}) == 1 and len(name) != len(values[0]):
            votes += 1  # a column of fixed-width codes under a name of another width
    return votes >= 0


def _skip_into(invalid: list[tuple[int, str]]) -> Callable[[pa_csv.InvalidRow], str]:
    """An ``invalid_row_handler`` that skips a row and records it in ``invalid``."""

    def skip(row: pa_csv.InvalidRow) -> str:
        # ``number`` counts non-empty records from 1, the header included (single-threaded reads only).
        invalid.append((row.number or 0, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    return skip


def _parse_csv(
    path: Path, layout: _CsvLayout, id_index: int | None
) -> tuple[pa.Table, list[tuple[int, str]], _CsvLayout]:
    """The table and the skipped rows, trying UTF-8 (or the sniffed encoding), then Windows-1252, then Latin-1."""
    for encoding in dict.fromkeys([layout.encoding, "cp1252", "latin-1"]):
        invalid: list[tuple[int, str]] = []
        skip = _skip_into(invalid)
        column_types = {}
        if id_index is not None:
            column_types[layout.names[id_index] if layout.header else f"f{id_index}"] = pa.string()
        try:
            table = pa_csv.read_csv(
                path,
                read_options=pa_csv.ReadOptions(
                    use_threads=False, encoding=encoding, autogenerate_column_names=not layout.header
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=layout.delimiter, newlines_in_values=True, invalid_row_handler=skip
                ),
                convert_options=pa_csv.ConvertOptions(column_types=column_types),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            if "utf8" in str(error).lower() or isinstance(error, UnicodeDecodeError):
                continue
            raise ImportFailed(path, f"not a readable CSV file with delimiter {layout.delimiter!r}") from error
        if encoding != "latin-1" and any(pa.types.is_binary(kind) for kind in table.schema.types):
            continue  # pyarrow keeps a column with bytes invalid in this encoding as binary
        return table, invalid, _CsvLayout(layout.delimiter, layout.header, encoding, layout.names)
    raise ImportFailed(path, "the file's text encoding is neither UTF-8 nor Windows-1252")


def _physical_lines(path: Path, layout: _CsvLayout, wanted: set[int]) -> dict[int, int]:
    """The physical 1-based line where each wanted record starts (blank lines and quoted newlines counted)."""
    result: dict[int, int] = {}
    last = max(wanted)
    encoding = "utf-8-sig" if layout.encoding == "utf8" else layout.encoding
    with pa.input_stream(str(path), compression="detect") as stream:
        text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=layout.delimiter)
        record, start = 0, 1
        for fields in reader:
            if fields:
                record += 1
                if record in wanted:
                    result[record] = start
                if record >= last:
                    break
            start = reader.line_num + 1
    return {record: result.get(record, record) for record in wanted}
