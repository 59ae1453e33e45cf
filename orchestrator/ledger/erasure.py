"""Erasure (the right to be forgotten): a customer's personal data removed or pseudonymised everywhere.

``erase(engine, settings, customer_ids, actor=)`` is ``campaign erase`` and ``POST /v1/erasures``.
For the given ids, in bulk (a temporary table of ids, one statement per table, never one per
customer):

* **customer table**: the rows are deleted;
* **ledger** (``contacts``), **response events**, **conversions**: the customer id is replaced by a
  random pseudonym (``erased-<16 hex>``, one per person, the same in every table and never stored
  next to the real id), and the events' free text ``detail`` is cleared. Counts, arms, channels,
  values and dates stay, so the success report of every past wave (lift, confidence intervals,
  revenue) is unchanged;
* **snapshots** (``<data_dir>/snapshots/wave-*.parquet``, with the not-treated reasons
  ``wave-<id>-reasons.parquet``): the person's rows are removed, and
  contact columns a snapshot of an older version still held are dropped; **model training sets
  built later** read these snapshots, so they never see the person (``training_data`` joins
  snapshot rows with ledger rows, and neither has the real id any more);
* **previews** (``<data_dir>/preview/*.html``) and **approval samples** (``<data_dir>/approvals/``,
  JSON and HTML) that show one of the ids are deleted (an approval keeps its digests and counts);
* **suppressions**: the person's entries are replaced by one ``do_not_contact`` entry on every
  channel (``*``) with source ``erasure``: the only place the real id stays, so that the contact
  policy never selects them and ``campaign import customers`` skips them when a later import
  brings them back (``orchestrator.customers.importer``);
* **audit**: one ``audit_events`` row (``orchestrator.db.audit``): who asked, when, how many rows
  of what; no id, no personal data.

The database work is one transaction (all or nothing); the files are handled first, so a run
that fails half-way is completed by running it again (erasing is idempotent: an id already
erased finds nothing left but its ``do_not_contact`` entry). Files other than the engine's own
(an HTML page written with ``--output`` elsewhere, copies, backups) are not reached; see
docs/operations.md.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from orchestrator.customers.table import ID_COLUMN
from orchestrator.db import audit
from orchestrator.db.bulk import bulk_insert
from orchestrator.db.tables import (
    ERASURE_SOURCE,
    Contact,
    Conversion,
    ResponseEvent,
    Suppression,
    table_of,
    utcnow,
)
from orchestrator.ledger.snapshots import contact_columns
from orchestrator.settings import Settings, private_file

__all__ = ["ERASED_PREFIX", "ErasureReport", "erase", "read_id_file"]

ERASED_PREFIX = "erased-"
MAX_ID = 200

contacts = table_of(Contact)
events = table_of(ResponseEvent)
conversions = table_of(Conversion)
suppressions = table_of(Suppression)


@dataclass
class ErasureReport:
    """What ``erase`` did: rows and files per kind (also the audit event's counts)."""

    audit_id: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def read_id_file(path: Path) -> list[str]:
    """Customer ids in a text file, one per line (blank lines and ``#`` comments skipped).

    Raises ``ValueError`` naming the line of an id longer than 200 characters.
    """
    ids = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if len(value) > MAX_ID:
            raise ValueError(f"{path}:{number}: a customer id is at most {MAX_ID} characters long")
        ids.append(value)
    return ids


def erase(engine: sa.Engine, settings: Settings, customer_ids: Iterable[str], *, actor: str) -> ErasureReport:
    """Erase ``customer_ids`` everywhere (see the module docstring); ``actor`` says who asked (audited)."""
    ids = sorted({str(i).strip() for i in customer_ids if str(i).strip()})
    if not ids:
        raise ValueError("The 'customer_ids' parameter of erase must name at least one customer id.")
    too_long = [i for i in ids if len(i) > MAX_ID]
    if too_long:
        raise ValueError(f"A customer id is at most {MAX_ID} characters long; one of {len(too_long)} is longer.")
    report = ErasureReport()
    report.counts.update(_erase_files(settings, ids))
    with engine.begin() as conn:
        report.counts.update(_erase_rows(conn, settings, ids))
        report.audit_id = audit.record(
            conn,
            actor=actor,
            action="erase",
            subject=f"{len(ids)} customer{'s' if len(ids) != 1 else ''}",
            counts=report.counts,
        )
    return report


def _erase_rows(conn: sa.Connection, settings: Settings, ids: list[str]) -> dict[str, int]:
    staging = sa.Table(
        "tmp_erasure",
        sa.MetaData(),
        sa.Column("customer_id", sa.String(MAX_ID), primary_key=True),
        sa.Column("pseudonym", sa.String(MAX_ID), nullable=False),
        prefixes=["TEMPORARY"],
    )
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TABLE IF EXISTS temp.tmp_erasure")
    staging.create(conn)
    bulk_insert(conn, staging.name, ["customer_id", "pseudonym"], ((i, _pseudonym()) for i in ids))
    erased = sa.select(staging.c.customer_id)
    counts: dict[str, int] = {"customers_requested": len(ids)}

    table = _customer_table(conn, settings.database.customer_table)
    counts["customer_rows_deleted"] = (
        conn.execute(sa.delete(table).where(table.c[ID_COLUMN].in_(erased))).rowcount if table is not None else 0
    )
    for name, target, extra in (
        ("contacts_pseudonymised", contacts, {}),
        ("events_pseudonymised", events, {"detail": None}),
        ("conversions_pseudonymised", conversions, {}),
    ):
        pseudonym = (
            sa.select(staging.c.pseudonym).where(staging.c.customer_id == target.c.customer_id).scalar_subquery()
        )
        statement = sa.update(target).where(target.c.customer_id.in_(erased)).values(customer_id=pseudonym, **extra)
        counts[name] = conn.execute(statement).rowcount
    counts["suppressions_replaced"] = conn.execute(
        sa.delete(suppressions).where(suppressions.c.customer_id.in_(erased))
    ).rowcount
    conn.execute(
        sa.insert(suppressions).from_select(
            ["customer_id", "channel", "reason", "source", "created_at"],
            sa.select(
                staging.c.customer_id,
                sa.literal("*", suppressions.c.channel.type),
                sa.literal("do_not_contact", suppressions.c.reason.type),
                sa.literal(ERASURE_SOURCE, suppressions.c.source.type),
                sa.literal(utcnow(), suppressions.c.created_at.type),
            ),
        )
    )
    staging.drop(conn)
    return counts


def _pseudonym() -> str:
    return ERASED_PREFIX + secrets.token_hex(8)


def _customer_table(conn: sa.Connection, name: str) -> sa.Table | None:
    if not sa.inspect(conn).has_table(name):
        return None
    return sa.Table(name, sa.MetaData(), autoload_with=conn)


def _erase_files(settings: Settings, ids: list[str]) -> dict[str, int]:
    """Snapshot rows of ``ids`` removed (and contact columns dropped); previews that show one deleted."""
    wanted = pa.array(ids, type=pa.string())
    contact = contact_columns()
    rewritten = removed = 0
    for path in sorted((settings.paths.data_dir / "snapshots").glob("wave-*.parquet")):
        schema = pq.read_schema(path)
        ids_in_file = pq.read_table(path, columns=[ID_COLUMN]).column(ID_COLUMN).cast(pa.string())
        hits = pc.is_in(ids_in_file, value_set=wanted)
        n = pc.sum(hits).as_py() or 0
        stale = [name for name in schema.names if name != ID_COLUMN and name.lower() in contact]
        if not n and not stale:
            continue
        table = pq.read_table(path)
        table = table.filter(pc.invert(pc.is_in(table.column(ID_COLUMN).cast(pa.string()), value_set=wanted)))
        table = table.drop_columns(stale).replace_schema_metadata(schema.metadata)
        partial = path.with_suffix(f".{os.getpid()}.erasing")
        private_file(partial).close()
        pq.write_table(table, partial)
        os.replace(partial, path)
        rewritten += 1
        removed += n
    previews = 0
    for path in sorted((settings.paths.data_dir / "preview").glob("*.html")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if any(f"customer {_html(i)}</h2>" in text or f"customer {_html(i)}, variant" in text for i in ids):
            path.unlink()
            previews += 1
    samples = 0
    for path in sorted((settings.paths.data_dir / "approvals").glob("*/wave-*")):
        text = path.read_text(encoding="utf-8", errors="replace")
        shown = (
            any(f'"customer_id": {json.dumps(i)}' in text for i in ids)
            if path.suffix == ".json"
            else any(f"customer {_html(i)}</h2>" in text or f"customer {_html(i)}, variant" in text for i in ids)
        )
        if shown:
            path.unlink()
            samples += 1
    return {
        "snapshot_rows_removed": removed,
        "snapshots_rewritten": rewritten,
        "preview_files_deleted": previews,
        "approval_samples_deleted": samples,
    }


def _html(text: str) -> str:
    import html

    return html.escape(text)
