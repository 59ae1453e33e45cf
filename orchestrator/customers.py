"""Customer import: a CSV or Parquet file upserted into the customer table in one transaction.

``import_customers(engine, path)`` is what ``campaign import customers FILE`` runs.

- **Formats**: CSV (``.csv``, ``.tsv``, ``.txt``, ``.tab``, each optionally ``.gz`` or ``.bz2``) and
  Parquet (``.parquet``, ``.pq``). The CSV delimiter (one of ``, ; TAB |``) and whether the first
  line is a header are sniffed unless given; without a header the columns are ``col_1..col_n``.
  UTF-8 (with or without BOM) is expected; a file that is not UTF-8 is read as Windows-1252.
- **Names**: column names become safe SQL identifiers (``orchestrator.identifiers``); the report's
  ``renamed`` maps each changed name to the new one.
- **Types**: inferred by pyarrow over the whole file: integer, number, boolean, date, datetime,
  text (anything else). An empty text cell is NULL.
- **Key**: the table's key is the text column ``customer_id``. It is filled from ``id_column``,
  else from the column whose name normalises to ``customer_id``, else with the data row number
  (``id_generated``). A row without an id is a bad row; an id used twice fails the import.
- **Bad rows** (wrong number of fields, no id) are skipped and reported by physical 1-based line
  number (Parquet: row number); ``strict=True`` turns any bad row into ``ImportFailed``.
- **Writing**: the rows go into a temporary staging table (PostgreSQL ``COPY``, SQLite
  ``executemany``), then one ``INSERT ... SELECT ... ON CONFLICT (customer_id) DO UPDATE``. Existing
  customers are updated, new ones inserted, columns new in the file are added, columns missing in
  the file are left as they are. Any failure leaves the table as it was.
- **Privacy**: errors and the report name lines and columns, never cell values.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.customer_table import ID_COLUMN, ColumnKind, kind_of
from orchestrator.identifiers import normalise_name, normalise_names
from orchestrator.problems import Problem, did_you_mean

__all__ = ["BadRow", "ImportFailed", "ImportReport", "import_customers"]

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSED_SUFFIXES = (".gz", ".bz2")
DELIMITERS = ",;\t|"
CHUNK_ROWS = 50_000
SAMPLE_BYTES = 64 * 1024
SAMPLE_RECORDS = 50
MAX_LISTED = 20
STAGING_TABLE = "customer_import_staging"

_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_LOOKS_TYPED = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$|^\d{4}-\d\d-\d\d")


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that was not imported: its physical 1-based line in the file and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import read and did. ``updated`` counts every existing customer in the file."""

    rows_read: int = 0
    rows_imported: int = 0
    inserted: int = 0
    updated: int = 0
    columns: dict[str, ColumnKind] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)
    id_generated: bool = False


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


def import_customers(
    engine: sa.Engine,
    path: Path,
    *,
    table: str = "customers",
    delimiter: str | None = None,
    header: bool | None = None,
    id_column: str | None = None,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert the customers in ``path`` into ``table``; see the module docstring for the contract.

    ``progress`` is called with the number of rows loaded so far after each chunk.
    Raises ``ImportFailed`` (nothing written) for a missing, empty or unreadable file, an
    unknown ``id_column``, duplicate ids, columns whose type clashes with the table, or, with
    ``strict=True``, any bad row.
    """
    path = Path(path)
    if not _TABLE_NAME.match(table):
        raise ValueError(f"table name must match {_TABLE_NAME.pattern}; got {table!r}")
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character; got {delimiter!r}")
    source = _read(path, delimiter=delimiter, header=header, id_column=id_column)
    report = ImportReport(rows_read=source.rows_read, renamed=source.renamed())
    rows, issues = _customer_rows(source, report)
    report.bad_rows = source.bad_rows(issues)
    if strict and report.bad_rows:
        message = f"{len(report.bad_rows)} bad row(s); strict mode imports nothing"
        raise ImportFailed(path, message, bad_rows=report.bad_rows, report=report)
    if rows.num_rows == 0:
        raise ImportFailed(path, "no row could be imported", bad_rows=report.bad_rows, report=report)
    try:
        with engine.begin() as conn:
            _write(conn, path, table, rows, report, progress)
    except sa.exc.DBAPIError as error:
        # The driver's message may quote cell values; name only the kind of failure.
        raise ImportFailed(
            path, f"the database refused the import ({type(error.orig).__name__}); nothing was imported"
        ) from error
    return report


# --- reading -------------------------------------------------------------------------------


@dataclass
class _Source:
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

    def bad_rows(self, issues: Iterable[_Issue]) -> list[BadRow]:
        """``issues`` and the rows the reader skipped as ``BadRow`` objects, in file order."""
        issues = sorted([*(_Issue(record, reason) for record, reason in self.invalid), *issues], key=lambda i: i.record)
        if not issues:
            return []
        wanted = {issue.record for issue in issues} | {issue.earlier for issue in issues if issue.earlier}
        lines = self.to_lines(wanted)
        return [
            BadRow(lines[issue.record], issue.reason.replace("{earlier}", str(lines.get(issue.earlier or 0))))
            for issue in issues
        ]


@dataclass(frozen=True)
class _Issue:
    """A row left out, by record number; ``{earlier}`` in ``reason`` becomes the line of ``earlier``."""

    record: int
    reason: str
    earlier: int | None = None


def _read(path: Path, *, delimiter: str | None, header: bool | None, id_column: str | None) -> _Source:
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


def _read_parquet(path: Path, id_column: str | None) -> _Source:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise ImportFailed(path, "not a readable Parquet file") from error
    if table.num_columns == 0:
        raise ImportFailed(path, "the file has no columns")
    originals = table.column_names
    return _Source(
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


def _read_csv(path: Path, delimiter: str | None, header: bool | None, id_column: str | None) -> _Source:
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
    return _Source(
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


def _parse_csv(
    path: Path, layout: _CsvLayout, id_index: int | None
) -> tuple[pa.Table, list[tuple[int, str]], _CsvLayout]:
    """The table and the skipped rows, trying UTF-8 (or the sniffed encoding), then Windows-1252, then Latin-1."""
    for encoding in dict.fromkeys([layout.encoding, "cp1252", "latin-1"]):
        invalid: list[tuple[int, str]] = []

        def skip(row: pa_csv.InvalidRow) -> str:
            # ``number`` counts non-empty records from 1, the header included (single-threaded reads only).
            invalid.append((row.number or 0, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
            return "skip"

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


# --- shaping -------------------------------------------------------------------------------


def _customer_rows(source: _Source, report: ImportReport) -> tuple[pa.Table, list[_Issue]]:
    """The rows to write (``customer_id`` first, loadable types) and the rows left out."""
    names = source.names()
    if source.id_index is None:
        report.id_generated = True
        ids = pa.chunked_array([pa.array(source.records - source.header_records).cast(pa.string())])
    else:
        ids = source.table.column(source.id_index)
        ids = pc.utf8_trim_whitespace(ids if ids.type == pa.string() else ids.cast(pa.string()))
        ids = pc.if_else(pc.equal(ids, ""), pa.scalar(None, pa.string()), ids)
    columns = {ID_COLUMN: ids}
    for index, (name, column) in enumerate(zip(names, source.table.columns, strict=True)):
        if index != source.id_index:
            columns[name] = _loadable(source.path, name, column)
    rows = pa.table(columns)
    records = source.records
    issues: list[_Issue] = []
    missing = pc.is_null(ids)
    if pc.any(missing).as_py():
        mask = missing.to_numpy()
        reason = f"no customer id (column '{source.originals[source.id_index or 0]}' is empty)"
        issues = [_Issue(int(record), reason) for record in records[mask]]
        rows = rows.filter(pc.invert(missing))
        records = records[~mask]
    duplicates = _duplicates(rows.column(ID_COLUMN), records)
    if duplicates:
        raise ImportFailed(
            source.path,
            f"{len(duplicates)} row(s) repeat the customer id of an earlier line; ids must be unique",
            bad_rows=[row for row in source.bad_rows(duplicates) if row.reason.startswith("duplicate")],
            report=report,
        )
    return rows, issues


def _duplicates(ids: pa.ChunkedArray, records: np.ndarray) -> list[_Issue]:
    if pc.count_distinct(ids).as_py() == len(ids):
        return []
    first: dict[str, int] = {}
    duplicates = []
    for value, record in zip(ids.to_pylist(), records.tolist(), strict=True):
        seen = first.setdefault(value, record)
        if seen != record:
            duplicates.append(_Issue(record, "duplicate customer id (first used on line {earlier})", seen))
    return duplicates


def _loadable(path: Path, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``column`` in a type the loaders write: int64, float64, bool, timestamp[us], date32, string or null."""
    kind = column.type
    try:
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        if pa.types.is_null(kind) or pa.types.is_boolean(kind) or pa.types.is_date32(kind) or kind == pa.int64():
            return column
        if pa.types.is_integer(kind):
            try:
                return column.cast(pa.int64())
            except pa.ArrowInvalid:  # uint64 beyond the int64 range
                return column.cast(pa.float64())
        if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            return column.cast(pa.float64())
        if pa.types.is_timestamp(kind):
            return column.cast(pa.timestamp("us", tz=kind.tz), safe=False)
        if pa.types.is_date(kind):
            return column.cast(pa.date32())
        if kind != pa.string():
            column = column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ImportFailed(path, f"column '{name}' has values of type {kind} that cannot be imported") from error
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def _sql_type(kind: pa.DataType) -> sa.types.TypeEngine:
    if kind == pa.int64():
        return sa.BigInteger()
    if kind == pa.float64():
        return sa.Double()
    if pa.types.is_boolean(kind):
        return sa.Boolean()
    if pa.types.is_timestamp(kind):
        return sa.DateTime(timezone=kind.tz is not None)
    if pa.types.is_date32(kind):
        return sa.Date()
    return sa.Text()


# --- writing -------------------------------------------------------------------------------


def _write(
    conn: sa.Connection,
    path: Path,
    table: str,
    rows: pa.Table,
    report: ImportReport,
    progress: Callable[[int], None] | None,
) -> None:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        raw = conn.connection.driver_connection
        if not raw.in_transaction:  # pysqlite would run the DDL outside any transaction
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect != "postgresql":
        raise ImportFailed(path, f"customer import supports SQLite and PostgreSQL, not {dialect}")

    target = _target_table(conn, path, table, rows)
    staging_columns = []
    selected = []
    for name, kind in zip(rows.column_names, rows.schema.types, strict=True):
        target_type = target.c[name].type
        staging_type = target_type if pa.types.is_null(kind) else _sql_type(kind)
        staging_columns.append(sa.Column(name, staging_type))
        selected.append((name, staging_type, target_type))
        report.columns[name] = kind_of(target_type)

    staging = sa.Table(
        STAGING_TABLE,
        sa.MetaData(),
        *staging_columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    if dialect == "sqlite":  # a temporary table lives as long as the pooled connection
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{STAGING_TABLE}")
    staging.create(conn)
    loader = _copy_rows if dialect == "postgresql" else _insert_rows
    done = 0
    for offset in range(0, rows.num_rows, CHUNK_ROWS):
        chunk = rows.slice(offset, CHUNK_ROWS)
        loader(conn, staging, chunk)
        done += chunk.num_rows
        if progress is not None:
            progress(done)

    report.updated = conn.execute(
        sa.select(sa.func.count()).select_from(staging.join(target, staging.c[ID_COLUMN] == target.c[ID_COLUMN]))
    ).scalar_one()
    report.inserted = rows.num_rows - report.updated
    report.rows_imported = rows.num_rows

    exprs = [
        staging.c[name]
        if kind_of(staging_type) == kind_of(target_type)
        else sa.cast(staging.c[name], target_type).label(name)
        for name, staging_type, target_type in selected
    ]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(target).from_select(rows.column_names, sa.select(*exprs).where(sa.true()))
    updates = {name: statement.excluded[name] for name in rows.column_names if name != ID_COLUMN}
    if updates:
        # Rows whose values did not change are not rewritten (PostgreSQL would write a new version of each).
        changed = sa.or_(*(target.c[name].is_distinct_from(value) for name, value in updates.items()))
        statement = statement.on_conflict_do_update(index_elements=[ID_COLUMN], set_=updates, where=changed)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[ID_COLUMN])
    conn.execute(statement)
    staging.drop(conn)


def _target_table(conn: sa.Connection, path: Path, table: str, rows: pa.Table) -> sa.Table:
    """The customer table, created or extended so that it has every column of ``rows``."""
    if not sa.inspect(conn).has_table(table):
        columns = [
            sa.Column(name, sa.Text() if pa.types.is_null(kind) else _sql_type(kind), primary_key=name == ID_COLUMN)
            for name, kind in zip(rows.column_names, rows.schema.types, strict=True)
        ]
        target = sa.Table(table, sa.MetaData(), *columns)
        target.create(conn)
        return target

    target = sa.Table(table, sa.MetaData(), autoload_with=conn)
    if ID_COLUMN not in target.c:
        raise ImportFailed(path, f"table '{table}' has no '{ID_COLUMN}' column, so it is not a customer table")
    clashes = []
    preparer = conn.dialect.identifier_preparer
    for name, kind in zip(rows.column_names, rows.schema.types, strict=True):
        if pa.types.is_null(kind):
            file_kind = None
        else:
            file_kind = kind_of(_sql_type(kind))
        if name not in target.c:
            sql_type = sa.Text() if file_kind is None else _sql_type(kind)
            conn.exec_driver_sql(
                f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(name)} "
                f"{sql_type.compile(dialect=conn.dialect)}"
            )
            continue
        table_kind = kind_of(target.c[name].type)
        if file_kind is None or file_kind == table_kind or table_kind == "text":
            continue
        if table_kind == "number" and file_kind == "integer":
            continue
        clashes.append(
            f"column '{name}' holds {table_kind} values in table '{table}' but the file has {file_kind} values"
        )
    if clashes:
        raise ImportFailed(path, "; ".join(clashes))
    return sa.Table(table, sa.MetaData(), autoload_with=conn)


def _copy_rows(conn: sa.Connection, staging: sa.Table, chunk: pa.Table) -> None:
    """PostgreSQL: COPY in CSV format, where an unquoted empty field is NULL and strings are quoted."""
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in chunk.column_names)
    buffer = io.BytesIO()
    pa_csv.write_csv(chunk, buffer, pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
    with conn.connection.driver_connection.cursor() as cursor:
        with cursor.copy(f"COPY {preparer.quote(staging.name)} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getbuffer())


def _insert_rows(conn: sa.Connection, staging: sa.Table, chunk: pa.Table) -> None:
    """SQLite: executemany of plain tuples; dates and times as the text SQLAlchemy stores."""
    values = []
    for column in chunk.columns:
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column.cast(pa.timestamp("us")), "%Y-%m-%d %H:%M:%S")
        elif pa.types.is_date32(column.type):
            column = column.cast(pa.string())
        values.append(_python_values(column))
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in chunk.column_names)
    placeholders = ", ".join("?" for _ in chunk.column_names)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO {preparer.quote(staging.name)} ({columns}) VALUES ({placeholders})", zip(*values, strict=True)
        )
    finally:
        cursor.close()


def _python_values(column: pa.ChunkedArray) -> list:
    """The column as Python values, NULL as ``None`` (through numpy: several times faster than ``to_pylist``)."""
    if column.null_count == 0 or pa.types.is_string(column.type) or pa.types.is_boolean(column.type):
        return column.to_numpy().tolist()  # strings and booleans come out as objects with None
    if pa.types.is_null(column.type):
        return [None] * len(column)
    values = column.fill_null(0).to_numpy().astype(object)  # numbers: NULL would become NaN
    values[column.is_null().to_numpy()] = None
    return values.tolist()
