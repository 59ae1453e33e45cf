"""Point-in-time feature snapshots: what the engine knew about each customer when a wave selected them.

Right after a wave's contacts are recorded, the customer rows of every contact of the wave
(treated and control; not the global control) are written to
``<data_dir>/snapshots/wave-<id>.parquet``: ``customer_id`` and every customer column that
is a model feature, streamed from ONE join query in chunks, written to a temporary file and
renamed (a crash never leaves half a snapshot). Training later joins these snapshots with the
attributed outcomes (``orchestrator.learning.training_data`` reads every column but the id as a
feature), so a model never learns from data that changed after the contact.

**Only model features, never contact data.** ``contact_columns(spec)`` names the columns left
out: ``CONTACT_COLUMNS`` (e-mail, phone, names, street addresses, written out here), the
defaults of the channel kinds' contact column keys (``CONTACT_KEYS``: ``address_column``,
``phone_column``, ``name_columns``, ``address_columns``) and the columns the campaign's own
channel sections name under those keys. Every other column is kept. Snapshot files are
readable by their owner only (0600, folder 0700).

**Customers passed over.** Next to it, ``wave-<id>-passed.parquet`` holds the same columns of
a sample (at most ``PASSED_OVER_SAMPLE``, drawn by a stable hash) of the campaign's candidates
that the wave did not contact and no other campaign of its cycle took: customers whose
outcome is the no-contact outcome, chosen by their columns alone (the score, the capacity, the
allocation). Learning uses them next to the random control group to learn what customers do
uncontacted; success control never does (they are not a random group). Its metadata says which
share of them was kept. ``write_snapshot_in_background`` writes it after the snapshot, in the same
thread. A run that dies before writing it loses it; nothing else depends on it.

A wave recorded by a run that died before its snapshot was written gets it from the next run
(``ensure_snapshot``), taken then; that is the only case where a snapshot is later than the
selection, and it is flagged in the file's metadata.

Off the critical path: ``write_snapshot_in_background`` writes it in a thread of this process
(one per wave) while the wave sends; ``SnapshotWriter.wait()`` joins it and raises its error.
``ensure_snapshot`` / ``ensure_snapshot_in_background`` join a writer already running for the
wave instead of starting a second one. Nothing is lost if the process dies meanwhile: the file
appears whole (renamed from a temporary file) or not at all, and the next run writes it late.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from orchestrator.customers.table import ID_COLUMN, customer_table
from orchestrator.db.tables import Arm, Contact, table_of, utcnow
from orchestrator.rules.kinds import kinds
from orchestrator.settings import Settings, private_dir, private_file

contacts = table_of(Contact)
CHUNK = 50_000

CONTACT_COLUMNS: frozenset[str] = frozenset(
    {
        "email", "e_mail", "email_address", "mail",
        "phone", "phone_number", "mobile", "mobile_phone", "telephone", "fax",
        "first_name", "last_name", "middle_name", "full_name", "name", "given_name", "family_name", "surname",
        "title_name", "salutation",
        "address", "street", "street_address", "address_line_1", "address_line_2", "house_number",
        "postcode", "postal_code", "zip", "zip_code", "city",
    }
)  # fmt: skip
"""Customer columns that are contact data by their name (compared in lower case)."""

CONTACT_KEYS = ("address_column", "phone_column", "name_columns", "address_columns")
"""Keys of channel sections (``ChannelKind.columns``) whose columns are contact data."""


def contact_columns(spec: object | None = None) -> frozenset[str]:
    """The columns a snapshot leaves out: ``CONTACT_COLUMNS``, the channel kinds' defaults of
    ``CONTACT_KEYS``, and the columns ``spec``'s channel sections name under those keys (lower case)."""
    names = set(CONTACT_COLUMNS)
    for kind in kinds():
        for column_key in kind.columns:
            if column_key.key in CONTACT_KEYS:
                default = column_key.default
                names.update([default] if isinstance(default, str) else default)
    channels = getattr(spec, "channels", None)
    if channels is not None:
        for name in channels.names():
            section = channels.section(name)
            for key in CONTACT_KEYS:
                value = getattr(section, key, None)
                if isinstance(value, str):
                    names.add(value)
                elif isinstance(value, (tuple, list)):
                    names.update(str(v) for v in value)
    return frozenset(n.lower() for n in names)


def snapshot_path(settings: Settings, wave_id: int) -> Path:
    return settings.paths.data_dir / "snapshots" / f"wave-{wave_id}.parquet"


def write_snapshot(
    engine: sa.Engine,
    settings: Settings,
    wave_id: int,
    *,
    late: bool = False,
    contact: frozenset[str] | None = None,
) -> Path:
    """Write the snapshot of ``wave_id`` from the customer table now; returns its path.

    ``contact``: the columns left out (default ``contact_columns()``; pass ``contact_columns(spec)``).
    """
    table = customer_table(engine, settings.database.customer_table)
    path = snapshot_path(settings, wave_id)
    private_dir(path.parent)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    left_out = contact_columns() if contact is None else contact
    features = [c for c in table.c if c.name == ID_COLUMN or c.name.lower() not in left_out]
    query = (
        sa.select(*features)
        .join_from(contacts, table, table.c[ID_COLUMN] == contacts.c.customer_id)
        .where(contacts.c.wave_id == wave_id, contacts.c.arm != Arm.GLOBAL_CONTROL.value)
        .order_by(table.c[ID_COLUMN])
    )
    metadata = {
        b"wave_id": str(wave_id).encode(),
        b"taken_at": utcnow().isoformat().encode(),
        b"late": b"1" if late else b"0",
    }
    writer = None
    try:
        with engine.connect() as conn:
            for chunk in pd.read_sql(query, conn, chunksize=CHUNK):
                batch = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    private_file(partial).close()  # created 0600 before pyarrow writes into it
                    writer = pq.ParquetWriter(partial, batch.schema.with_metadata(metadata))
                writer.write_table(batch.cast(writer.schema))
        if writer is None:  # no contacts: an empty snapshot with the feature columns
            empty = pa.Table.from_pandas(pd.DataFrame(columns=[c.name for c in features]), preserve_index=False)
            private_file(partial).close()
            pq.write_table(empty.replace_schema_metadata(metadata), partial)
        else:
            writer.close()
            writer = None
        os.replace(partial, path)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return path


PASSED_OVER_SAMPLE = 50_000
"""Customers passed over by a wave kept in its passed-over snapshot at most."""
ID_CHUNK = 20_000  # ids per query (under SQLite's parameter limit)


def passed_over_path(settings: Settings, wave_id: int) -> Path:
    return settings.paths.data_dir / "snapshots" / f"wave-{wave_id}-passed.parquet"


def write_passed_over(
    engine: sa.Engine,
    settings: Settings,
    wave_id: int,
    customer_ids,
    *,
    contact: frozenset[str] | None = None,
    sample: int = PASSED_OVER_SAMPLE,
) -> Path | None:
    """Write the snapshot of the customers ``wave_id`` passed over (a stable sample of at most ``sample``);
    ``None`` when there are none."""
    import numpy as np

    from orchestrator.customers.table import among_ids
    from orchestrator.targeting.control import hash_positions

    ids = np.asarray(customer_ids, dtype=object).astype(str)
    if not len(ids):
        return None
    share = min(1.0, sample / len(ids))
    if share < 1.0:
        ids = ids[hash_positions(list(ids), f"passed-over\x00{wave_id}") < share]
    table = customer_table(engine, settings.database.customer_table)
    left_out = contact_columns() if contact is None else contact
    features = [c for c in table.c if c.name == ID_COLUMN or c.name.lower() not in left_out]
    path = passed_over_path(settings, wave_id)
    private_dir(path.parent)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    metadata = {b"wave_id": str(wave_id).encode(), b"share": repr(share).encode()}
    with engine.connect() as conn:
        query = sa.select(*features).where(among_ids(table.c[ID_COLUMN], conn.dialect.name))
        parts = [
            pd.read_sql(query, conn, params={"ids": list(ids[start : start + ID_CHUNK])})
            for start in range(0, len(ids), ID_CHUNK)
        ]
    frame = pd.concat(parts, ignore_index=True)
    try:
        private_file(partial).close()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(metadata), partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def read_passed_over(settings: Settings, wave_id: int) -> tuple[pd.DataFrame, float] | None:
    """The customers ``wave_id`` passed over and the share of them kept (``None`` if not written)."""
    path = passed_over_path(settings, wave_id)
    if not path.exists():
        return None
    table = pq.read_table(path)
    share = float((table.schema.metadata or {}).get(b"share", b"1.0"))
    return table.to_pandas(), share


class SnapshotWriter:
    """A snapshot being written in a background thread (or already there); ``wait()`` returns its path."""

    def __init__(self, path: Path, thread: threading.Thread | None = None):
        self.path = path
        self._thread = thread
        self._error: BaseException | None = None

    def _run(
        self,
        engine: sa.Engine,
        settings: Settings,
        wave_id: int,
        late: bool,
        contact: frozenset[str] | None,
        passed_over=None,
    ) -> None:
        try:
            write_snapshot(engine, settings, wave_id, late=late, contact=contact)
            if passed_over is not None and len(passed_over):
                write_passed_over(engine, settings, wave_id, passed_over, contact=contact)
        except BaseException as exc:  # noqa: BLE001 - raised again by wait() in the caller's thread
            self._error = exc
        finally:
            with _writers_lock:
                _writers.pop(self.path, None)

    def wait(self) -> Path:
        """Join the writer; raises what writing raised."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self.path


_writers: dict[Path, SnapshotWriter] = {}  # snapshots being written by a thread of this process
_writers_lock = threading.Lock()


def write_snapshot_in_background(
    engine: sa.Engine,
    settings: Settings,
    wave_id: int,
    *,
    late: bool = False,
    contact: frozenset[str] | None = None,
    passed_over=None,
) -> SnapshotWriter:
    """Start writing the snapshot of ``wave_id`` in a thread (or return the writer already at it);
    ``late`` and ``contact`` as for ``write_snapshot``; then, in the same thread, the snapshot of the
    customers ``passed_over`` (``write_passed_over``) if any are given."""
    path = snapshot_path(settings, wave_id)
    with _writers_lock:
        running = _writers.get(path)
        if running is not None:
            return running
        writer = SnapshotWriter(path)
        writer._thread = threading.Thread(
            target=writer._run,
            args=(engine, settings, wave_id, late, contact, passed_over),
            name=f"snapshot-wave-{wave_id}",
        )
        _writers[path] = writer
        writer._thread.start()
    return writer


def ensure_snapshot_in_background(engine: sa.Engine, settings: Settings, wave_id: int) -> SnapshotWriter:
    """The wave's snapshot: the writer at it, the file already there, or a writer started now (flagged late)."""
    path = snapshot_path(settings, wave_id)
    with _writers_lock:
        running = _writers.get(path)
    if running is not None:
        return running
    if path.exists():
        return SnapshotWriter(path)
    return write_snapshot_in_background(engine, settings, wave_id, late=True)


def ensure_snapshot(engine: sa.Engine, settings: Settings, wave_id: int) -> Path:
    """The wave's snapshot, written now (flagged late) if the run that recorded the wave died first."""
    return ensure_snapshot_in_background(engine, settings, wave_id).wait()


def read_snapshot(settings: Settings, wave_id: int, columns: list[str] | None = None) -> pd.DataFrame | None:
    """The snapshot of ``wave_id`` as a frame (``None`` if the wave has none)."""
    path = snapshot_path(settings, wave_id)
    if not path.exists():
        return None
    return pq.read_table(path, columns=columns).to_pandas()


COVARIATES_KEY = b"covariates"


def snapshot_covariates(settings: Settings, wave_id: int) -> list[str]:
    """Columns of the snapshot named as covariates when it was written (imported results' ``--covariate``)."""
    import json

    path = snapshot_path(settings, wave_id)
    if not path.exists():
        return []
    raw = (pq.read_schema(path).metadata or {}).get(COVARIATES_KEY)
    return [str(c) for c in json.loads(raw)] if raw else []


def is_late(settings: Settings, wave_id: int) -> bool:
    path = snapshot_path(settings, wave_id)
    return path.exists() and (pq.read_schema(path).metadata or {}).get(b"late") == b"1"
