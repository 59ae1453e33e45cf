"""Customer import: a CSV or Parquet file upserted into the customer table in one transaction.

``import_customers(engine, path)`` is what ``campaign import customers FILE`` runs.

- **Formats**: CSV (``.csv``, ``.tsv``, ``.txt``, ``.tab``, each optionally ``.gz`` or ``.bz2``) and
  Parquet (``.parquet``, ``.pq``). The CSV delimiter (one of ``, ; TAB |``) and whether the first
  line is a header are sniffed unless given; without a header the columns are ``col_1..col_n``.
  UTF-8 (with or without BOM) is expected; a file that is not UTF-8 is read as Windows-1252.
- **Names**: column names become safe SQL identifiers (``orchestrator.customers.identifiers``); the report's
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
- **Privacy**: errors and the report name lines and columns, never cell values. Customers that
  were erased (``orchestrator.ledger.erasure``: a ``do_not_contact`` entry with source
  ``erasure``) are not imported again; the report counts them (``erased_skipped``).

This module shapes the rows (the key, loadable types); reading the file is
``orchestrator.customers.files``, writing to the database ``orchestrator.customers.load``, and the
report and error types live in ``orchestrator.customers.report``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from orchestrator.customers.files import CustomerFile, RowIssue, read_customer_file
from orchestrator.customers.load import load_customers
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
    source = read_customer_file(path, delimiter=delimiter, header=header, id_column=id_column)
    report = ImportReport(rows_read=source.rows_read, renamed=source.renamed())
    rows, issues = _customer_rows(source, report)
    report.bad_rows = source.bad_rows(issues)
    rows = _without_erased(engine, rows, report)
    if strict and report.bad_rows:
        message = f"{len(report.bad_rows)} bad row(s); strict mode imports nothing"
        raise ImportFailed(path, message, bad_rows=report.bad_rows, report=report)
    if rows.num_rows == 0:
        raise ImportFailed(path, "no row could be imported", bad_rows=report.bad_rows, report=report)
    try:
        with engine.begin() as conn:
            load_customers(conn, path, table, rows, report, progress, chunk_rows=CHUNK_ROWS)
    except sa.exc.DBAPIError as error:
        # The driver's message may quote cell values; name only the kind of failure.
        raise ImportFailed(
            path, f"the database refused the import ({type(error.orig).__name__}); nothing was imported"
        ) from error
    return report


# --- shaping -------------------------------------------------------------------------------


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


def _customer_rows(source: CustomerFile, report: ImportReport) -> tuple[pa.Table, list[RowIssue]]:
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
    issues: list[RowIssue] = []
    missing = pc.is_null(ids)
    if pc.any(missing).as_py():
        mask = missing.to_numpy()
        reason = f"no customer id (column '{source.originals[source.id_index or 0]}' is empty)"
        issues = [RowIssue(int(record), reason) for record in records[mask]]
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
