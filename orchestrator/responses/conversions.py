"""Conversions: import them from a file, and attribute them to waves.

``import_conversions`` reads a CSV (or .csv.gz) with a header: ``customer_id``, the time
(``occurred_at``, ``time``, ``date`` or ``timestamp``: an ISO date or date-time; without a
time zone it is UTC), ``amount`` (optional, a number, default 0) and ``product`` (optional).
Rows are checked one by one; a bad row (unparsable date or amount, no customer) is reported
with its line number and skipped (``strict``: nothing is imported if any row is bad). Rows
are inserted in bulk; a row imported before (same customer, time, amount, product) is not
imported twice, so importing the same file again changes nothing.

``attributed`` gives, per contact of a campaign's waves, the conversions in the attribution
window after the wave date: treated and control customers alike, so the control group's
conversions are measured too.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import sqlalchemy as sa

from orchestrator.db.bulk import insert_new, raw_timestamp
from orchestrator.db.tables import Conversion, table_of, utcnow
from orchestrator.errors import Problem, ValidationFailed, did_you_mean

conversions = table_of(Conversion)

TIME_COLUMNS = ("occurred_at", "time", "date", "timestamp", "converted_at")
ID_COLUMNS = ("customer_id", "customer")
AMOUNT_COLUMNS = ("amount", "value", "revenue")


@dataclass
class ConversionImport:
    rows_read: int = 0
    imported: int = 0  # new rows
    duplicates: int = 0  # rows imported before
    bad_rows: list[Problem] = field(default_factory=list)


def _open(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115


def _pick(header: list[str], names: tuple[str, ...]) -> str | None:
    return next((h for h in header if h.strip().lower() in names), None)


def parse_time(text: str) -> datetime:
    """An ISO date or date-time; dates are midnight, naive times are UTC."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = datetime.combine(date.fromisoformat(text), time())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_amount(text: str) -> float:
    """A number like ``12.5``, ``1,234.50`` or ``12,5`` (a lone comma is a decimal comma)."""
    text = text.strip()
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    value = float(text.replace(",", ""))
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def read_conversions(path: Path) -> Iterator[tuple[int, dict | Problem]]:
    """``(line, row)`` for every data row of the file, or ``(line, Problem)`` for a bad one."""
    file = str(path)
    try:
        handle = _open(Path(path))
        reader = csv.reader(handle)
        header = next(reader, None)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed([Problem(file, None, None, f"cannot read the conversions file: {exc}")]) from exc
    if not header:
        raise ValidationFailed([Problem(file, 1, 1, "the conversions file is empty; it needs a header row")])
    header = [h.strip() for h in header]
    customer, when, amount = _pick(header, ID_COLUMNS), _pick(header, TIME_COLUMNS), _pick(header, AMOUNT_COLUMNS)
    product = _pick(header, ("product",))
    missing = [what for what, col in (("customer_id", customer), ("occurred_at (or time/date)", when)) if col is None]
    if customer is None or when is None:
        hint = "".join(did_you_mean(h, ID_COLUMNS + TIME_COLUMNS) for h in header[:1])
        raise ValidationFailed(
            [
                Problem(
                    file,
                    1,
                    1,
                    f"the conversions file needs the columns {' and '.join(missing)}; it has {', '.join(header)}{hint}",
                )
            ]
        )
    index = {name: header.index(name) for name in (customer, when, amount, product) if name is not None}
    with handle:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield line, Problem(file, line, None, f"{len(values)} fields where the header has {len(header)}")
                continue
            cid = values[index[customer]].strip()
            if not cid:
                yield line, Problem(file, line, None, "no customer_id")
                continue
            try:
                occurred = parse_time(values[index[when]])
            except ValueError:
                yield (
                    line,
                    Problem(
                        file, line, None, f"{when} is not a date or date-time like 2026-11-24 or 2026-11-24T10:30:00"
                    ),
                )
                continue
            value = 0.0
            if amount is not None and values[index[amount]].strip():
                try:
                    value = parse_amount(values[index[amount]])
                except ValueError:
                    yield line, Problem(file, line, None, f"{amount} is not a number")
                    continue
            yield (
                line,
                {
                    "customer_id": cid,
                    "occurred_at": occurred,
                    "amount": value,
                    "product": values[index[product]].strip() if product is not None else "",
                },
            )


def import_conversions(
    engine: sa.Engine, path: Path, *, strict: bool = False, progress: Callable[[int], None] = lambda _n: None
) -> ConversionImport:
    """Import the file's conversions; see the module docstring."""
    report = ConversionImport()
    good: list[dict] = []
    for _line, row in read_conversions(path):
        report.rows_read += 1
        if isinstance(row, Problem):
            report.bad_rows.append(row)
        else:
            good.append(row)
    if strict and report.bad_rows:
        raise ValidationFailed(report.bad_rows)
    now = utcnow()
    source = Path(path).name[:200]
    columns = ["customer_id", "occurred_at", "amount", "product", "source", "imported_at"]
    with engine.begin() as conn:
        stamp = raw_timestamp(conn, now)
        new = insert_new(
            conn,
            conversions,
            columns,
            (
                (r["customer_id"], raw_timestamp(conn, r["occurred_at"]), r["amount"], r["product"], source, stamp)
                for r in good
            ),
            key=["customer_id", "occurred_at", "amount", "product"],
            returning="id",
        )
        progress(len(good))
    report.imported = len(new)
    report.duplicates = len(good) - report.imported
    return report


# --- attribution ------------------------------------------------------------------------------


def _window(contacts: sa.Table, day: date, window_days: int, product: str | None) -> sa.ColumnElement[bool]:
    """A contact's conversions: same customer, from the start of the wave's day for ``window_days`` days."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    join = sa.and_(
        conversions.c.customer_id == contacts.c.customer_id,
        conversions.c.occurred_at >= start,
        conversions.c.occurred_at < start + timedelta(days=window_days),
    )
    return join if product is None else sa.and_(join, conversions.c.product == product)


def attributed(
    engine: sa.Engine, wave_ids_and_dates: list[tuple[int, date]], window_days: int, *, product: str | None = None
) -> dict[int, tuple[int, float, datetime]]:
    """Per contact id of the waves: (conversions, amount, first conversion time) within the window.

    The window of a wave runs from the start of its date for ``window_days`` days. One
    aggregate query per wave, joined in the database.
    """
    from orchestrator.db.tables import Contact

    contacts = table_of(Contact)
    out: dict[int, tuple[int, float, datetime]] = {}
    with engine.connect() as conn:
        for wave_id, day in wave_ids_and_dates:
            join = _window(contacts, day, window_days, product)
            query = (
                sa.select(
                    contacts.c.id,
                    sa.func.count(),
                    sa.func.sum(conversions.c.amount),
                    sa.func.min(conversions.c.occurred_at),
                )
                .join_from(contacts, conversions, join)
                .where(contacts.c.wave_id == wave_id)
                .group_by(contacts.c.id)
            )
            for contact_id, n, amount, first in conn.execute(query):
                out[contact_id] = (int(n), float(amount or 0.0), first)
    return out


def attributed_rows(
    engine: sa.Engine, wave_ids_and_dates: list[tuple[int, date]], window_days: int, *, product: str | None = None
) -> list[tuple[int, float, datetime]]:
    """Per conversion in a wave's window: (contact id, amount, time), one row each (``attributed`` sums them).

    For windows that end early (success control cuts a contact's window at the customer's next
    contact by the same campaign), where the sums of ``attributed`` are not enough.
    """
    from orchestrator.db.tables import Contact

    contacts = table_of(Contact)
    out: list[tuple[int, float, datetime]] = []
    with engine.connect() as conn:
        for wave_id, day in wave_ids_and_dates:
            join = _window(contacts, day, window_days, product)
            query = (
                sa.select(contacts.c.id, conversions.c.amount, conversions.c.occurred_at)
                .join_from(contacts, conversions, join)
                .where(contacts.c.wave_id == wave_id)
            )
            out.extend((int(cid), float(amount or 0.0), when) for cid, amount, when in conn.execute(query))
    return out
