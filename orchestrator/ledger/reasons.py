"""Why a selected customer was not treated: one Parquet file of reason codes per wave.

The contact ledger records the treated, control and global-control customers of a wave; every
other customer a wave's campaign selected (passed its audience, lists and contact policy) gets
one row in ``<data dir>/snapshots/wave-<id>-reasons.parquet`` with a reason code
(``orchestrator.targeting.planning.NOT_TREATED``: ``below_score_cut``, ``lost_arbitration`` with
the winning campaign as ``detail``, ``no_eligible_channel``, ``channel_full``,
``not_worth_cost``, ``control_unallocated``).

Columns ``customer_id``, ``reason`` and ``detail`` (dictionary-encoded: a few distinct values), written
column-wise in one go (0600, replaced atomically, so a wave planned again after a crash before
its contacts were recorded writes it again). A file, not a table: a 1,000,000-customer wave with a
10% score cut has 900,000 of them; on the shared test machine the file took 0.5 to 1.1 s (4.5 MB,
``bench/reasons_bench.py``), a bulk insert into a table 16 s (SQLite) and 35 s (PostgreSQL). Erasure removes
a person's rows like those of every snapshot (``orchestrator.ledger.erasure``).

``write(settings, wave_id, not_treated)``; ``read(settings, wave_id)``; ``counts(settings, wave_id)``;
``of_customer(settings, wave_id, customer_id) -> (reason, detail) | None``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orchestrator.settings import Settings, private_dir, private_file
from orchestrator.targeting.planning import NotTreated

__all__ = ["counts", "of_customer", "read", "reasons_path", "write"]


def reasons_path(settings: Settings, wave_id: int) -> Path:
    return settings.paths.data_dir / "snapshots" / f"wave-{wave_id}-reasons.parquet"


def write(settings: Settings, wave_id: int, not_treated: NotTreated) -> Path:
    """Write (or replace) the wave's reasons; the file."""
    table = pa.table(
        {
            "customer_id": pa.array(np.asarray(not_treated.customer_id, dtype=object), type=pa.string()),
            "reason": pa.array(np.asarray(not_treated.reason, dtype=object), type=pa.string()).dictionary_encode(),
            "detail": pa.array(np.asarray(not_treated.detail, dtype=object), type=pa.string()).dictionary_encode(),
        }
    ).replace_schema_metadata({b"wave_id": str(wave_id).encode()})
    path = reasons_path(settings, wave_id)
    private_dir(path.parent)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    try:
        private_file(partial).close()
        pq.write_table(table, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def read(settings: Settings, wave_id: int) -> NotTreated | None:
    """The wave's reasons (None if the wave wrote none: not planned, or recorded before reasons existed)."""
    path = reasons_path(settings, wave_id)
    if not path.exists():
        return None
    table = pq.read_table(path)
    column = lambda name: table.column(name).cast(pa.string()).to_numpy(zero_copy_only=False).astype(object)  # noqa: E731
    return NotTreated(column("customer_id"), column("reason"), column("detail"))


def counts(settings: Settings, wave_id: int) -> dict[str, int]:
    """Customers per reason code of the wave."""
    path = reasons_path(settings, wave_id)
    if not path.exists():
        return {}
    reasons = pq.read_table(path, columns=["reason"]).column("reason").combine_chunks()
    tally = pc.value_counts(reasons.cast(pa.string()))
    return {str(v["values"]): int(v["counts"]) for v in tally.to_pylist()}


def of_customer(settings: Settings, wave_id: int, customer_id: str) -> tuple[str, str | None] | None:
    """The customer's reason code and detail in the wave, or None."""
    path = reasons_path(settings, wave_id)
    if not path.exists():
        return None
    rows = pq.read_table(path, filters=[("customer_id", "==", customer_id)]).to_pylist()
    return (str(rows[0]["reason"]), rows[0]["detail"]) if rows else None
