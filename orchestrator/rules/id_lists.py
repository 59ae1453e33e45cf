"""Include and exclude lists: customer ids from a file or a database table.

A rules file may say::

    include:                       # only customers on at least one of these lists
      - file: lists/vip.csv        # relative to the rules file
    exclude:                       # never customers on any of these lists
      - table: complaints          # a database table with a customer_id column

An id file is UTF-8 text: either one customer id per line (an optional first line
``customer_id`` is a header), or a CSV file (``,``, ``;`` or tab) with a header row that has a
``customer_id`` column. Blank lines are skipped; ids are compared as text, exactly. Ids that
are not in the customer table are ignored.

``check_lists(data, positions, base=..., engine=...)`` reports missing or unreadable files,
files without ids (for ``include``, which would select nobody), missing tables and tables
without ``customer_id``, each at the ``file``/``table`` value in the rules file (or the id
file's row). ``list_condition(spec, table, conn)`` is the SQL condition on the customer
table: ``customer_id IN (SELECT ...)`` for the includes and ``NOT IN`` for the excludes.
A file is loaded in bulk (``COPY`` on PostgreSQL, batched ``executemany`` on SQLite) into
a temporary table on ``conn``, never inlined as parameters; the query must run on that
connection. ``drop_id_tables(conn)`` drops the temporary tables made on it.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from orchestrator.customers.table import ID_COLUMN, kind_of
from orchestrator.db.bulk import bulk_insert
from orchestrator.errors import Problem, did_you_mean
from orchestrator.rules.yaml_source import Positions

if TYPE_CHECKING:
    from orchestrator.rules.spec import CampaignSpec, IdListSpec

__all__ = ["LIST_KEYS", "IdFileError", "check_lists", "drop_id_tables", "list_condition", "read_ids"]

LIST_KEYS = ("include", "exclude")
_DELIMITERS = (",", ";", "\t")
_TEMP_TABLES = "campaign_id_tables"
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class IdFileError(ValueError):
    """An id file that cannot be read; ``row`` is the 1-based line, where known."""

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row


def read_ids(path: Path) -> Iterator[str]:
    """The customer ids in the file at ``path``, in file order (raises ``IdFileError``)."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except FileNotFoundError as exc:
        raise IdFileError("the id file does not exist") from exc
    except OSError as exc:
        raise IdFileError(f"cannot read the id file: {exc.strerror or exc}") from exc
    row = 0
    try:
        with handle:
            first = handle.readline()
            row = 1
            delimiter = next((d for d in _DELIMITERS if d in first), None)
            if delimiter is None:
                if first.strip() and first.strip().lower() != ID_COLUMN:
                    yield first.strip()
                for line in handle:
                    row += 1
                    if line.strip():
                        yield line.strip()
                return
            header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter))]
            if ID_COLUMN not in header:
                raise IdFileError(
                    f"the id file has several columns ({', '.join(header)}) but none is named '{ID_COLUMN}'; "
                    f"name the column of ids '{ID_COLUMN}' or give one id per line",
                    1,
                )
            index = header.index(ID_COLUMN)
            for fields in csv.reader(handle, delimiter=delimiter):
                row += 1
                if index < len(fields) and fields[index].strip():
                    yield fields[index].strip()
    except UnicodeDecodeError as exc:
        raise IdFileError("the id file is not UTF-8 text; save it with UTF-8 encoding", _bad_line(path)) from exc
    except csv.Error as exc:
        raise IdFileError(f"cannot read the CSV: {exc}", row) from exc


def _bad_line(path: Path) -> int | None:
    """The 1-based line of the first byte that is not UTF-8."""
    raw = Path(path).read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return raw[: exc.start].count(b"\n") + 1
    return None  # pragma: no cover - only called after a decode error


def resolve_file(base: Path, file: str) -> Path:
    """An id file's path: as written if absolute, else relative to the rules file's folder."""
    path = Path(file)
    return path if path.is_absolute() else Path(base) / path


# --- checking -----------------------------------------------------------------------------


def check_lists(data: dict, positions: Positions, *, base: Path, engine: sa.Engine | None) -> list[Problem]:
    """Problems of the ``include``/``exclude`` sources in the rules-file ``data``.

    Only well-formed sources are checked here (their form is the model's job). ``base``
    is the rules file's folder; without ``engine`` table sources get one warning.
    """
    problems: list[Problem] = []
    unchecked_tables = False
    for key in LIST_KEYS:
        sources = data.get(key)
        if not isinstance(sources, list):
            continue
        for i, source in enumerate(sources):
            if not isinstance(source, dict) or len(source) != 1:
                continue
            loc = (key, i, next(iter(source)))
            file, table = source.get("file"), source.get("table")
            if isinstance(file, str) and file:
                problems += _check_file(resolve_file(base, file), file, key, loc, positions)
            elif isinstance(table, str) and _TABLE_NAME.match(table):
                if engine is None:
                    unchecked_tables = True
                else:
                    problems += _check_table(engine, table, loc, positions)
    if unchecked_tables:
        problems.append(
            Problem(
                positions.file,
                None,
                None,
                "no database given, so the include/exclude tables were not checked",
                "warning",
            )
        )
    return problems


def _check_file(path: Path, written: str, key: str, loc: tuple, positions: Positions) -> list[Problem]:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        return [positions.problem(loc, f"the id file '{written}' {what} (looked for {path})")]
    try:
        count = sum(1 for _ in read_ids(path))
    except IdFileError as exc:
        return [Problem(str(path), exc.row, None, str(exc))]
    if count == 0 and key == "include":
        return [
            positions.problem(loc, f"the id file '{written}' has no customer ids, so 'include' would select nobody")
        ]
    return []


def _check_table(engine: sa.Engine, table: str, loc: tuple, positions: Positions) -> list[Problem]:
    inspector = sa.inspect(engine)
    if not inspector.has_table(table):
        hint = did_you_mean(table, inspector.get_table_names())
        return [positions.problem(loc, f"there is no table '{table}' in the database{hint}")]
    columns = [c["name"] for c in inspector.get_columns(table)]
    if ID_COLUMN not in columns:
        hint = did_you_mean(ID_COLUMN, columns) or f"; its columns are {', '.join(columns)}"
        return [positions.problem(loc, f"table '{table}' has no column '{ID_COLUMN}'{hint}")]
    return []


# --- compiling ----------------------------------------------------------------------------


def list_condition(spec: CampaignSpec, table: sa.Table, conn: sa.Connection) -> sa.ColumnElement[bool] | None:
    """``customer_id IN (include ids) AND customer_id NOT IN (exclude ids)``, or ``None`` without lists.

    Several ``include`` sources are combined: a customer on any of them is included.
    Raises ``ValueError`` for a missing file or table (``check_lists`` reports them first).
    """
    include = getattr(spec, "include", ()) or ()
    exclude = getattr(spec, "exclude", ()) or ()
    if not include and not exclude:
        return None
    base = Path(spec.source).parent
    ids = table.c[ID_COLUMN]
    parts: list[sa.ColumnElement[bool]] = []
    if include:
        parts.append(sa.or_(*(ids.in_(_ids_query(s, base, conn)) for s in include)))
    for source in exclude:
        parts.append(ids.not_in(_ids_query(source, base, conn)))
    return sa.and_(*parts)


def _ids_query(source: IdListSpec, base: Path, conn: sa.Connection) -> sa.Select:
    if source.file is not None:
        ids_table = _load_file(conn, resolve_file(base, source.file))
        return sa.select(ids_table.c[ID_COLUMN])
    assert source.table is not None
    if not sa.inspect(conn).has_table(source.table):
        raise ValueError(f"there is no table '{source.table}' in the database")
    reflected = sa.Table(source.table, sa.MetaData(), autoload_with=conn)
    if ID_COLUMN not in reflected.c:
        raise ValueError(f"table '{source.table}' has no column '{ID_COLUMN}'")
    column = reflected.c[ID_COLUMN]
    # NOT IN with a null in the list selects nobody, so nulls are left out; ids compare as text
    value = column if kind_of(column.type) == "text" else sa.cast(column, sa.Text)
    return sa.select(value).where(column.is_not(None))


def _load_file(conn: sa.Connection, path: Path) -> sa.Table:
    name = f"campaign_ids_{uuid.uuid4().hex[:16]}"
    ids_table = sa.Table(name, sa.MetaData(), sa.Column(ID_COLUMN, sa.Text, nullable=False), prefixes=["TEMPORARY"])
    ids_table.create(conn)
    conn.info.setdefault(_TEMP_TABLES, []).append(name)
    try:
        bulk_insert(conn, name, [ID_COLUMN], ((i,) for i in read_ids(path)))
    except IdFileError as exc:
        where = f"{path}:{exc.row}" if exc.row else str(path)
        raise ValueError(f"{where}: {exc}") from exc
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"ANALYZE {conn.dialect.identifier_preparer.quote(name)}"))
    return ids_table


def drop_id_tables(conn: sa.Connection) -> None:
    """Drop the temporary id tables ``list_condition`` made on ``conn``."""
    preparer = conn.dialect.identifier_preparer
    for name in conn.info.pop(_TEMP_TABLES, []):
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {preparer.quote(name)}"))
