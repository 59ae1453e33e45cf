"""Customer import: a CSV or Parquet file upserted into the customer table in one transaction.

``import_customers(engine, path)`` is what ``campaign import customers FILE`` runs. Nothing is
guessed in a way that could overwrite or garble data; what was sniffed is in the report.

- **Formats**: CSV (``.csv``, ``.tsv``, ``.txt``, ``.tab``, each optionally ``.gz`` or ``.bz2``) and
  Parquet (``.parquet``, ``.pq``). The CSV delimiter (one of ``, ; TAB |``) and whether the first
  line is a header are sniffed unless given; without a header the columns are ``col_1..col_n``.
  The report's ``layout`` says what was chosen and how. A first line that reads as one column
  while it holds another delimiter is refused (give ``delimiter``).
- **Encoding**: UTF-8 (with or without BOM) unless ``encoding`` is given; a byte that does not
  decode fails the import with its line and byte offset (``orchestrator.customers.files``).
- **Names**: column names become safe SQL identifiers (``orchestrator.customers.identifiers``); the report's
  ``renamed`` maps each changed name to the new one.
- **Types**: inferred over the whole file: integer, number, boolean, date, datetime, text. Blanks
  (also a lone space or ``NA``) are NULL and keep a column numeric; a few cells that are not
  numbers in a column of numbers reject their rows instead of turning the column into text
  (``orchestrator.customers.columns``); ``text_columns`` stay text, and so do columns of digits
  written like codes (``007``, ``+4930...``). The report's ``types`` gives
  each column's type with the reason ("number: 7,032 numbers, 11 blanks").
- **Key**: the table's key is the text column ``customer_id``, filled from ``id_column``, else from
  the column whose name normalises to ``customer_id``. A file with neither is refused when the
  table already holds customers (its row numbers would overwrite them), unless ``generate_ids``:
  then every row is a new customer, numbered after the largest numeric id in the table (into an
  empty table: the data row numbers), and nothing existing is updated (``id_generated``). A row
  without an id is a bad row; an id used twice fails the import.
- **Refused files** (``ImportFailed``, nothing written): besides unreadable ones, an unclosed quote
  and a NUL byte, with their lines.
- **Bad rows** (wrong number of fields, no id, not a number in a numeric column) are skipped and
  reported by physical 1-based line number (Parquet: row number), and copied as they are to
  ``reject_file`` when one is given (``report.reject_file``; the reasons, ``file:line: reason``, go
  to the same name with the suffix ``.txt``); ``strict=True`` turns any bad row into ``ImportFailed``.
- **Writing**: the rows go into a temporary staging table (PostgreSQL ``COPY``, SQLite
  ``executemany``), then one ``INSERT ... SELECT ... ON CONFLICT (customer_id) DO UPDATE``. Existing
  customers are updated, new ones inserted, columns new in the file are added, columns missing in
  the file are left as they are. Any failure leaves the table as it was.
- **Privacy**: errors and the report name lines and columns, never cell values. Customers that
  were erased (``orchestrator.ledger.erasure``: a ``do_not_contact`` entry with source
  ``erasure``) are not imported again; the report counts them (``erased_skipped``).

This module shapes the rows (the key, loadable types); reading the file is
``orchestrator.customers.files``, column types ``orchestrator.customers.columns``, writing to the
database ``orchestrator.customers.load``, and the report and error types live in
``orchestrator.customers.report``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from orchestrator.customers.columns import settle_column
from orchestrator.customers.files import CustomerFile, RowIssue, column_index, listed_columns, read_customer_file
from orchestrator.customers.load import load_customers, numeric_id_ceiling
from orchestrator.customers.report import BadRow, ImportFailed, ImportReport
from orchestrator.customers.table import ID_COLUMN
from orchestrator.db.tables import ERASURE_SOURCE, Suppression, table_of

__all__ = ["BadRow", "ImportFailed", "ImportReport", "import_customers"]

CHUNK_ROWS = 50_000  # rows per staging write (and per ``progress`` call)

_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def import_customers(
    engine: sa.Engine,
    path: Path,
    *,
    table: str = "customers",
    delimiter: str | None = None,
    header: bool | None = None,
    id_column: str | None = None,
    encoding: str | None = None,
    generate_ids: bool = False,
    text_columns: Sequence[str] = (),
    strict: bool = False,
    reject_file: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert the customers in ``path`` into ``table``; see the module docstring for the contract.

    ``progress`` is called with the number of rows loaded so far after each chunk.
    Raises ``ImportFailed`` (nothing written) for a missing, empty or unreadable file, an
    unknown ``id_column``, no id column for a table that has customers (without ``generate_ids``),
    duplicate ids, columns whose type clashes with the table, or, with ``strict=True``, any bad row.
    """
    path = Path(path)
    if not _TABLE_NAME.match(table):
        raise ValueError(f"table name must match {_TABLE_NAME.pattern}; got {table!r}")
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character; got {delimiter!r}")
    source = read_customer_file(
        path, delimiter=delimiter, header=header, id_column=id_column, encoding=encoding, text_columns=text_columns
    )
    if generate_ids and source.id_index is not None:
        raise ImportFailed(
            path,
            f"--generate-ids adds every row as a new customer, but column '{source.originals[source.id_index]}' "
            "holds customer ids: leave out --generate-ids to update customers by that column",
        )
    report = ImportReport(rows_read=source.rows_read, renamed=source.renamed(), layout=source.layout.describe())
    first_id = _first_generated_id(engine, source, table, generate_ids) if source.id_index is None else 0
    rows, issues = _customer_rows(source, report, first_id, text_columns)
    report.bad_rows = source.bad_rows(issues)
    rows = _without_erased(engine, rows, report)
    if strict and report.bad_rows:
        message = f"{len(report.bad_rows)} bad row(s); strict mode imports nothing"
        raise ImportFailed(path, message, bad_rows=report.bad_rows, report=report)
    if rows.num_rows == 0:
        raise ImportFailed(path, "no row could be imported", bad_rows=report.bad_rows, report=report)
    if report.bad_rows and reject_file is not None:
        records = {issue.record for issue in source.all_issues(issues)}
        reject_file.parent.mkdir(parents=True, exist_ok=True)
        source.write_rejects(records, reject_file)
        reasons = "".join(f"{path}:{row.line}: {row.reason}\n" for row in report.bad_rows)
        reject_file.with_suffix(".txt").write_text(reasons, encoding="utf-8")
        report.reject_file = reject_file
    try:
        with engine.begin() as conn:
            load_customers(
                conn, path, table, rows, report, progress, chunk_rows=CHUNK_ROWS, insert_only=report.id_generated
            )
    except sa.exc.DBAPIError as error:
        # The driver's message may quote cell values; name only the kind of failure.
        raise ImportFailed(
            path, f"the database refused the import ({type(error.orig).__name__}); nothing was imported"
        ) from error
    return report


# --- shaping -------------------------------------------------------------------------------


def _first_generated_id(engine: sa.Engine, source: CustomerFile, table: str, generate_ids: bool) -> int:
    """The number before the first generated id: the largest numeric id in ``table`` (0 when it is empty).

    Without ``generate_ids`` only an empty (or missing) table gets ids: row numbers could overwrite customers.
    """
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(table):
            return 0
        target = sa.Table(table, sa.MetaData(), autoload_with=conn)
        if ID_COLUMN not in target.c:
            return 0  # load_customers refuses the table
        customers = conn.execute(sa.select(sa.func.count()).select_from(target)).scalar_one()
        if customers == 0:
            return 0
        if not generate_ids:
            names = listed_columns(source.names())
            raise ImportFailed(
                source.path,
                f"the file has no customer id column (columns: {names}) and table '{table}' already holds "
                f"{customers:,} customers, so ids made from row numbers would overwrite them; name the id column "
                "with --id-column COLUMN, or give --generate-ids to add every row as a new customer",
            )
        return numeric_id_ceiling(conn, target)


def _customer_rows(
    source: CustomerFile, report: ImportReport, first_id: int, text_columns: Sequence[str]
) -> tuple[pa.Table, list[RowIssue]]:
    """The rows to write (``customer_id`` first, loadable types) and the rows left out."""
    names = source.names()
    if source.id_index is None:
        report.id_generated = True
        numbers = source.records - source.header_records + first_id
        ids = pa.chunked_array([pa.array(numbers).cast(pa.string())])
        report.ids = f"generated: {numbers.min() if len(numbers) else 0} to {numbers.max() if len(numbers) else 0}"
        report.types[ID_COLUMN] = "text: generated (the file has no customer id column)"
    else:
        ids = source.table.column(source.id_index)
        ids = pc.utf8_trim_whitespace(ids if ids.type == pa.string() else ids.cast(pa.string()))
        ids = pc.if_else(pc.equal(ids, ""), pa.scalar(None, pa.string()), ids)
        report.ids = f"from column '{source.originals[source.id_index]}'"
        report.types[ID_COLUMN] = f"text: the customer id (column '{source.originals[source.id_index]}')"
    keep_text = {_position(source, name) for name in text_columns}
    columns = {ID_COLUMN: ids}
    not_numbers = np.zeros(source.table.num_rows, dtype=bool)
    issues: list[RowIssue] = []
    for index, (name, column) in enumerate(zip(names, source.table.columns, strict=True)):
        if index == source.id_index:
            continue
        why = "kept as text (--text)" if index in keep_text else source.codes.get(index)
        settled = settle_column(source.path, name, column, keep_text=why)
        columns[name] = settled.column
        report.types[name] = settled.reason
        if settled.bad is not None:
            reason = f"column '{name}' holds numbers, but not in this row; correct it, or import with --text {name}"
            issues += [RowIssue(int(record), reason) for record in source.records[settled.bad]]
            not_numbers |= settled.bad
    rows = pa.table(columns)
    missing = pc.is_null(ids).to_numpy(zero_copy_only=False)
    if missing.any():
        reason = f"no customer id (column '{source.originals[source.id_index or 0]}' is empty)"
        issues += [RowIssue(int(record), reason) for record in source.records[missing & ~not_numbers]]
    left_out = missing | not_numbers
    records = source.records
    if left_out.any():
        rows = rows.filter(pa.array(~left_out))
        records = records[~left_out]
    duplicates = _duplicates(rows.column(ID_COLUMN), records)
    if duplicates:
        raise ImportFailed(
            source.path,
            f"{len(duplicates)} row(s) repeat the customer id of an earlier line; ids must be unique",
            bad_rows=[row for row in source.bad_rows(duplicates) if row.reason.startswith("duplicate")],
            report=report,
        )
    return rows, issues


def _position(source: CustomerFile, name: str) -> int:
    return column_index(source.path, source.originals, name, "column")


def _without_erased(engine: sa.Engine, rows: pa.Table, report: ImportReport) -> pa.Table:
    """``rows`` without the customers an erasure left a ``do_not_contact`` entry for (counted in the report)."""
    suppressions = table_of(Suppression)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(suppressions.name):
            return rows
        erased = (
            conn.execute(
                sa.select(suppressions.c.customer_id).where(
                    suppressions.c.reason == "do_not_contact",
                    suppressions.c.channel == "*",
                    suppressions.c.source == ERASURE_SOURCE,
                )
            )
            .scalars()
            .all()
        )
    if not erased:
        return rows
    hit = pc.is_in(rows.column(ID_COLUMN), value_set=pa.array(erased, type=pa.string()))
    report.erased_skipped = int(pc.sum(hit).as_py() or 0)
    return rows.filter(pc.invert(hit)) if report.erased_skipped else rows


def _duplicates(ids: pa.ChunkedArray, records: np.ndarray) -> list[RowIssue]:
    if pc.count_distinct(ids).as_py() == len(ids):
        return []
    first: dict[str, int] = {}
    duplicates = []
    for value, record in zip(ids.to_pylist(), records.tolist(), strict=True):
        seen = first.setdefault(value, record)
        if seen != record:
            duplicates.append(RowIssue(record, "duplicate customer id (first used on line {earlier})", seen))
    return duplicates
