"""Reading a customer file into memory: an Arrow table plus where each row came from.

``read_customer_file(path, delimiter=, header=, id_column=, encoding=, text_columns=)`` returns a
``CustomerFile``, or raises ``ImportFailed`` for a missing, empty, unreadable or unsupported file, an
unknown ``id_column`` or a file that cannot be read without guessing.

- **Formats**: chosen by suffix: CSV (``.csv``, ``.tsv``, ``.txt``, ``.tab``, each optionally
  ``.gz`` or ``.bz2``) and Parquet (``.parquet``, ``.pq``).
- **CSV layout**: the delimiter (one of ``, ; TAB |``) and whether the first line is a header are
  sniffed from the first ``SAMPLE_BYTES`` / ``SAMPLE_RECORDS`` unless given; without a header the
  columns are ``col_1..col_n``. ``CustomerFile.layout`` says what was chosen and how. A first line
  that reads as one column although it holds another delimiter is refused (name ``delimiter``).
- **Encoding**: UTF-8 (with or without BOM) unless ``encoding`` is given (any Python codec name,
  e.g. ``cp1252``). A byte that is not valid in the encoding fails the import with its line and
  byte offset; nothing is re-decoded in another encoding behind the user's back. A UTF-16 byte
  order mark without ``encoding`` is refused with the option to give.
- **Types**: inferred by pyarrow over the whole file; the chosen id column and ``text_columns`` are
  always read as text, and so is a column with digits written like codes (``007``, ``+4930...``:
  a leading zero or ``+``) in the first ``SAMPLE_BYTES`` (``CustomerFile.codes``), which pyarrow
  would turn into numbers; ``orchestrator.customers.columns`` settles the rest.
- **Refused content**: a quote that is never closed (it swallows the following lines) and a NUL
  byte (PostgreSQL cannot store it) fail the import with their lines.
- **Bad rows**: rows with the wrong number of fields are skipped by the reader and kept in
  ``CustomerFile.invalid``; ``CustomerFile.bad_rows(issues)`` turns them and the caller's
  ``RowIssue`` objects (by record number) into ``BadRow`` objects by physical 1-based line number
  (blank lines and quoted newlines counted; Parquet: row number); ``write_rejects`` copies those
  rows, as they are in the file, to a reject file.
- **Names**: ``CustomerFile.names()`` gives safe SQL identifiers (``orchestrator.customers.identifiers``), with
  the id column named ``customer_id``. Nothing here touches the database.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from orchestrator.customers.identifiers import normalise_name, normalise_names
from orchestrator.customers.report import MAX_LISTED, BadRow, ImportFailed
from orchestrator.customers.table import ID_COLUMN
from orchestrator.errors import did_you_mean

__all__ = ["CustomerFile", "Layout", "RowIssue", "delimiter_name", "read_customer_file"]

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSED_SUFFIXES = (".gz", ".bz2")
DELIMITERS = ",;\t|"
SAMPLE_BYTES = 64 * 1024
SAMPLE_RECORDS = 50
DECODE_CHUNK = 1 << 20

_LOOKS_TYPED = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$|^\d{4}-\d\d-\d\d")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_CODE = re.compile(r"^\s*(\+|-?0)\d+\s*$")  # 007, +4930123456: digits that are not a quantity
CODES_REASON = "written like codes (a leading zero or '+' in the first 64 KiB), so kept as written"


def delimiter_name(delimiter: str) -> str:
    """``delimiter`` as the user types it after ``--delimiter``."""
    return "tab" if delimiter == "\t" else f"'{delimiter}'"


@dataclass(frozen=True)
class Layout:
    """How a file was read: format, delimiter, header, encoding, and for each whether it was given or sniffed."""

    format: str  # "csv" or "parquet"
    delimiter: str | None = None
    header: bool = True
    encoding: str | None = None  # a Python codec name
    names: list[str] = field(default_factory=list)  # header fields as Python's csv module reads them, or col_1..n
    how: dict[str, str] = field(default_factory=dict)  # "delimiter"/"header"/"encoding" -> "given" or why sniffed
    codes: list[int] = field(default_factory=list)  # columns with a value like 007 or +4930... in the sample

    def describe(self) -> dict[str, str]:
        """``{"format": ..., "delimiter": ..., ...}`` as the import summary prints them."""
        if self.format == "parquet":
            return {"format": "Parquet (column types from the file)"}
        return {
            "format": "CSV",
            "delimiter": f"{delimiter_name(self.delimiter or ',')} ({self.how.get('delimiter', 'sniffed')})",
            "header": f"{'yes' if self.header else 'no'} ({self.how.get('header', 'sniffed')})",
            "encoding": f"{self.encoding} ({self.how.get('encoding', 'sniffed')})",
        }


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
    layout: Layout = field(default_factory=lambda: Layout("parquet"))
    codes: dict[int, str] = field(default_factory=dict)  # columns of digits kept as text, and why

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
        issues = self.all_issues(issues)
        if not issues:
            return []
        wanted = {issue.record for issue in issues} | {issue.earlier for issue in issues if issue.earlier}
        lines = self.to_lines(wanted)
        return [
            BadRow(lines[issue.record], issue.reason.replace("{earlier}", str(lines.get(issue.earlier or 0))))
            for issue in issues
        ]

    def all_issues(self, issues: Iterable[RowIssue]) -> list[RowIssue]:
        """``issues`` and the rows the reader skipped, in file order."""
        skipped = (RowIssue(record, reason) for record, reason in self.invalid)
        return sorted([*skipped, *issues], key=lambda i: i.record)

    def write_rejects(self, records: set[int], target: Path) -> int:
        """Copy the records ``records`` as they are in the file (after the header, if any) to ``target``.

        CSV: the header line, then each rejected record's lines unchanged, in the file's encoding;
        Parquet: the rejected rows as a Parquet file. Returns the number of rows written.
        """
        if self.layout.format == "parquet":
            rows = self.table.take(pa.array(np.flatnonzero(np.isin(self.records, list(records)))))
            pq.write_table(rows, target)
            return rows.num_rows
        written = 0
        with (
            _open_text(self.path, self.layout) as text,
            target.open("w", encoding=self.layout.encoding, newline="") as out,
        ):
            for record, raw in _records_with_text(text, self.layout.delimiter or ","):
                if record <= self.header_records or record in records:
                    out.write(raw if raw.endswith(("\n", "\r")) else raw + "\n")
                    written += record > self.header_records
        return written


@dataclass(frozen=True)
class RowIssue:
    """A row left out, by record number; ``{earlier}`` in ``reason`` becomes the line of ``earlier``."""

    record: int
    reason: str
    earlier: int | None = None


def read_customer_file(
    path: Path,
    *,
    delimiter: str | None,
    header: bool | None,
    id_column: str | None,
    encoding: str | None = None,
    text_columns: Sequence[str] = (),
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
        source = _read_parquet(path, id_column)
    else:
        source = _read_csv(path, delimiter, header, id_column, encoding, text_columns)
    _refuse_nul_bytes(source)
    return source


def _choose_id(path: Path, originals: Sequence[str], id_column: str | None) -> int | None:
    if id_column is None:
        normalised = normalise_names(originals)
        return normalised.index(ID_COLUMN) if ID_COLUMN in normalised else None
    return column_index(path, originals, id_column, "id column")


def column_index(path: Path, originals: Sequence[str], name: str, what: str) -> int:
    """The position of the column ``name`` (as in the file, or normalised); ``ImportFailed`` with a hint if none."""
    normalised = normalise_names(originals)
    if name in originals:
        return list(originals).index(name)
    key = normalise_name(name, 0)
    if key in normalised:
        return normalised.index(key)
    # Suggest a name spelt the way the user spelt theirs: as in the file, or normalised.
    if key == name:
        hint = did_you_mean(key, normalised) or did_you_mean(name, originals)
    else:
        hint = did_you_mean(name, originals) or did_you_mean(key, normalised)
    raise ImportFailed(path, f"there is no {what} '{name}'{hint} (columns: {listed_columns(normalised)})")


def listed_columns(names: Sequence[str]) -> str:
    return ", ".join(names[:MAX_LISTED]) + (", ..." if len(names) > MAX_LISTED else "")


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
        layout=Layout("parquet", names=originals),
    )


def _read_csv(
    path: Path,
    delimiter: str | None,
    header: bool | None,
    id_column: str | None,
    encoding: str | None,
    text_columns: Sequence[str],
) -> CustomerFile:
    layout = _sniff(path, delimiter, header, encoding)
    id_index = _choose_id(path, layout.names, id_column)
    text_indexes = {column_index(path, layout.names, name, "column") for name in text_columns}
    if id_index is not None:
        text_indexes.add(id_index)
    codes = {i: CODES_REASON for i in layout.codes if i not in text_indexes}
    table, invalid, unterminated = _parse_csv(path, layout, sorted(text_indexes | set(codes)))
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
    source = CustomerFile(
        path=path,
        table=table,
        originals=originals,
        id_index=id_index,
        records=records,
        header_records=header_records,
        invalid=invalid,
        to_lines=lambda wanted: _physical_lines(path, layout, wanted),
        layout=layout,
        codes=codes,
    )
    _refuse_unterminated_quotes(source, unterminated)
    return source


def _read_sample(path: Path) -> bytes:
    with pa.input_stream(str(path), compression="detect") as stream:
        sample = stream.read(SAMPLE_BYTES)
        if len(sample) == SAMPLE_BYTES and b"\n" in sample:
            sample = sample[: sample.rindex(b"\n") + 1]
    return sample


def _choose_encoding(path: Path, sample: bytes, encoding: str | None) -> tuple[str, str]:
    """The codec to read ``path`` with and how it was chosen."""
    if encoding is not None:
        try:
            return codecs.lookup(encoding).name, "given"
        except LookupError as error:
            hint = did_you_mean(encoding, ["utf-8", "cp1252", "latin-1", "utf-16", "cp850", "iso8859-15"])
            raise ImportFailed(path, f"unknown encoding '{encoding}'{hint}") from error
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8", "sniffed: byte order mark"
    if sample.startswith(_UTF16_BOMS):
        raise ImportFailed(path, "the file is UTF-16 (it starts with a UTF-16 byte order mark); give --encoding utf-16")
    return "utf-8", "the default; every byte is valid UTF-8"


def _sniff(path: Path, delimiter: str | None, header: bool | None, encoding: str | None) -> Layout:
    try:
        raw = _read_sample(path)
    except (pa.ArrowException, OSError, EOFError) as error:
        raise ImportFailed(path, "the file cannot be read (damaged or not compressed as its name says)") from error
    codec, how_encoding = _choose_encoding(path, raw, encoding)
    try:
        text = codecs.getincrementaldecoder(codec)().decode(raw, final=False)
    except UnicodeDecodeError as error:
        raise ImportFailed(path, decode_failure(path, codec) or str(error)) from error
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ImportFailed(
            path,
            f"line {line} holds a NUL byte, which no text column can store: the file is damaged, or it is "
            "UTF-16 without a byte order mark (then give --encoding utf-16-le)",
        )
    if not text.strip():
        raise ImportFailed(path, "the file is empty")
    lines = io.StringIO(text, newline="").readlines()[: SAMPLE_RECORDS * 2]
    how = {"encoding": how_encoding, "delimiter": "given", "header": "given"}
    if delimiter is None:
        delimiter, how["delimiter"] = _sniff_delimiter("".join(lines), path)
    reader = csv.reader(io.StringIO("".join(lines)), delimiter=delimiter)
    records = [record for record in itertools.islice(reader, SAMPLE_RECORDS) if record]
    if not records:
        raise ImportFailed(path, "the file is empty")
    _refuse_one_column(path, delimiter, records[0], lines)
    if header is None:
        header, how["header"] = _sniff_header(records), "sniffed"
    names = records[0] if header else [f"col_{i}" for i in range(1, len(records[0]) + 1)]
    codes = _code_columns(io.StringIO(text, newline=""), delimiter, skip=1 if header else 0)
    return Layout("csv", delimiter=delimiter, header=header, encoding=codec, names=names, how=how, codes=codes)


def _code_columns(sample: io.StringIO, delimiter: str, skip: int) -> list[int]:
    """The positions where a record of the sample holds digits written like a code: ``007``, ``+4930123``."""
    reader = csv.reader(sample, delimiter=delimiter)
    found: set[int] = set()
    try:
        for record in itertools.islice(reader, skip, None):
            found.update(i for i, value in enumerate(record) if _CODE.match(value))
    except csv.Error:
        pass  # an unclosed quote, reported with its line once the whole file is read
    return sorted(found)


def _refuse_one_column(path: Path, delimiter: str, first: list[str], lines: list[str]) -> None:
    """A first record of one field, when the line holds another delimiter, means the delimiter is wrong."""
    if len(first) != 1:
        return
    others = [d for d in DELIMITERS if d != delimiter and d in lines[0]]
    if others:
        found = ", ".join(delimiter_name(d) for d in others)
        raise ImportFailed(
            path,
            f"line 1 reads as a single column with the delimiter {delimiter_name(delimiter)}, but it holds {found}; "
            f"give the delimiter, e.g. --delimiter {delimiter_name(others[0])}",
        )


def _sniff_delimiter(sample: str, path: Path) -> tuple[str, str]:
    """The delimiter and how it was found."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter, "sniffed: the same count on every line"
    except csv.Error:
        pass
    first = sample.splitlines()[0] if sample else ""
    counts = {candidate: first.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=counts.__getitem__)
    if counts[best]:
        return best, "sniffed: the most frequent on line 1"
    if {".tsv", ".tab"} & {suffix.lower() for suffix in path.suffixes}:
        return "\t", "sniffed: none on line 1, tab for the file's suffix"
    return ",", "sniffed: none on line 1, so a single column"


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


def _skip_into(invalid: list[tuple[int, str]], unterminated: list[int]) -> Callable[[pa_csv.InvalidRow], str]:
    """An ``invalid_row_handler`` that skips a row and records it in ``invalid`` (or ``unterminated``)."""

    def skip(row: pa_csv.InvalidRow) -> str:
        # ``number`` counts non-empty records from 1, the header included (single-threaded reads only).
        text = row.text or ""
        if "\n" in text and text.count('"') % 2:
            unterminated.append(row.number or 0)  # a quote left open to the end of the file
        invalid.append((row.number or 0, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    return skip


def _parse_csv(
    path: Path, layout: Layout, text_indexes: list[int]
) -> tuple[pa.Table, list[tuple[int, str]], list[int]]:
    """The table, the skipped rows and the records where a quote is never closed."""
    invalid: list[tuple[int, str]] = []
    unterminated: list[int] = []
    column_types = {(layout.names[i] if layout.header else f"f{i}"): pa.string() for i in text_indexes}
    encoding = "utf8" if layout.encoding == "utf-8" else layout.encoding
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(
                use_threads=False, encoding=encoding, autogenerate_column_names=not layout.header
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=layout.delimiter,
                newlines_in_values=True,
                invalid_row_handler=_skip_into(invalid, unterminated),
            ),
            convert_options=pa_csv.ConvertOptions(column_types=column_types),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        if isinstance(error, UnicodeDecodeError) or "utf8" in str(error).lower():
            raise ImportFailed(path, decode_failure(path, layout.encoding or "utf-8") or str(error)) from error
        raise ImportFailed(
            path, f"not a readable CSV file with delimiter {delimiter_name(layout.delimiter or ',')}"
        ) from error
    if any(pa.types.is_binary(kind) for kind in table.schema.types):  # pyarrow keeps invalid UTF-8 as binary
        raise ImportFailed(path, decode_failure(path, layout.encoding or "utf-8") or "the file is not valid UTF-8")
    return table, invalid, unterminated


def decode_failure(path: Path, encoding: str) -> str | None:
    """Where ``path`` first fails to decode as ``encoding``: line, byte and what to do; ``None`` if it decodes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, lines, line_start, readable = 0, 0, 0, False  # line_start: file offset where the current line starts
    with pa.input_stream(str(path), compression="detect") as stream:
        while True:
            chunk = stream.read(DECODE_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                data: bytes = error.object  # bytes held back from the last chunk, then this chunk
                base = offset - (len(data) - len(chunk))
                before = data[: error.start]
                if b"\n" in before:
                    line_start = base + before.rindex(b"\n") + 1
                position = base + error.start
                readable = readable or not before.decode(encoding, errors="ignore").isascii()
                line = lines + before.count(b"\n") + 1
                return _decode_message(encoding, line, position - line_start + 1, position, data[error.start], readable)
            if not chunk:
                return None
            readable = readable or not text.isascii()
            if b"\n" in chunk:
                lines += chunk.count(b"\n")
                line_start = offset + chunk.rindex(b"\n") + 1
            offset += len(chunk)


def _decode_message(encoding: str, line: int, column: int, offset: int, byte: int, readable: bool) -> str:
    where = f"line {line}: byte {column} of the line (offset {offset:,} in the file, value 0x{byte:02x})"
    if encoding != "utf-8":
        return f"{where} is not valid {encoding}; give the file's encoding with --encoding (nothing was imported)"
    if readable:
        advice = (
            "the text before it is valid UTF-8 with accented letters, so this byte is probably damaged: "
            "correct that line and import again"
        )
    else:
        advice = "if the file is not UTF-8, give its encoding, e.g. --encoding cp1252 (Excel on Windows) or latin-1"
    return f"{where} is not valid UTF-8; {advice} (nothing was imported)"


def _open_text(path: Path, layout: Layout) -> io.TextIOWrapper:
    stream = pa.input_stream(str(path), compression="detect")
    encoding = "utf-8-sig" if layout.encoding == "utf-8" else layout.encoding
    return io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")


def _records_with_text(text: Iterable[str], delimiter: str) -> Iterator[tuple[int, str]]:
    """Each non-empty record's number and its lines exactly as in the file (quoted newlines kept)."""
    pending: list[str] = []

    def lines() -> Iterator[str]:
        for line in text:
            pending.append(line)
            yield line

    record = 0
    for fields in csv.reader(lines(), delimiter=delimiter):
        raw = "".join(pending)
        pending.clear()
        if fields:
            record += 1
            yield record, raw


def _physical_lines(path: Path, layout: Layout, wanted: set[int]) -> dict[int, int]:
    """The physical 1-based line where each wanted record starts (blank lines and quoted newlines counted)."""
    result: dict[int, int] = {}
    last = max(wanted)
    with _open_text(path, layout) as text:
        reader = csv.reader(text, delimiter=layout.delimiter or ",")
        record, start = 0, 1
        try:
            for fields in reader:
                if fields:
                    record += 1
                    if record in wanted:
                        result[record] = start
                    if record >= last:
                        break
                start = reader.line_num + 1
        except csv.Error:  # a quote left open to the end of the file
            if record + 1 in wanted:
                result[record + 1] = start
    return {record: result.get(record, record) for record in wanted}


def _refuse_unterminated_quotes(source: CustomerFile, unterminated: list[int]) -> None:
    """A quote left open swallows the lines after it: into a skipped row (to the end of the file) or into a value."""
    delimiter = source.layout.delimiter or ","
    swallowing: list[tuple[int, str]] = [(record, "") for record in unterminated]
    width = len(source.originals)
    for name, column in zip(source.originals, source.table.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        if not _may_contain(column, b"\n"):
            continue
        multiline = pc.fill_null(pc.match_substring(column, "\n"), False)
        if not pc.any(multiline).as_py():
            continue
        for index in np.flatnonzero(multiline.to_numpy(zero_copy_only=False)):
            inner = str(column[int(index)].as_py()).splitlines()[1:-1]
            if any(line.count(delimiter) >= max(width - 1, 1) for line in inner):
                swallowing.append((int(source.records[index]), name))
    if not swallowing:
        return
    lines = source.to_lines({record for record, _ in swallowing})
    bad = sorted(
        (
            BadRow(
                lines[record],
                "a quote opened on this line is never closed: it swallows every following line"
                if not name
                else f"the quoted value of column '{name}' starting on this line runs over lines that look like "
                "rows of their own: a quote is probably never closed",
            )
            for record, name in swallowing
        ),
        key=lambda row: row.line,
    )
    raise ImportFailed(
        source.path,
        f"unterminated quote on line {bad[0].line}; close it (or double it inside a quoted value) and import again",
        bad_rows=bad,
    )


def _refuse_nul_bytes(source: CustomerFile) -> None:
    """NUL bytes in text, which PostgreSQL refuses (and SQLite truncates at): an error naming the lines."""
    found = np.zeros(source.table.num_rows, dtype=bool)
    names = []
    for name, column in zip(source.originals, source.table.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        if not _may_contain(column, b"\x00"):
            continue
        hit = pc.fill_null(pc.match_substring(column, "\x00"), False)
        if pc.any(hit).as_py():
            found |= hit.to_numpy(zero_copy_only=False)
            names.append(name)
    if not found.any():
        return
    records = source.records[found]
    lines = source.to_lines(set(records.tolist()))
    bad = [BadRow(lines[int(record)], "a NUL byte (\\0) in a value") for record in records]
    raise ImportFailed(
        source.path,
        f"{len(bad)} row(s) hold a NUL byte (in column {', '.join(repr(n) for n in names)}), which the database "
        "cannot store; remove it (the file may be damaged, or UTF-16: then give --encoding utf-16)",
        bad_rows=bad,
    )


def _may_contain(column: pa.ChunkedArray, byte: bytes) -> bool:
    """Whether a value of the string ``column`` may hold ``byte``: one scan of the data buffers, no value by value."""
    for chunk in column.chunks:
        data = chunk.buffers()[2]
        if data is not None and data.to_pybytes().find(byte) >= 0:
            return True
    return False
