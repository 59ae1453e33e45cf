"""Scoring the customer table with a registered model: chunk by chunk, never one query per customer.

- ``iter_customer_frames(engine, columns, customer_ids=...)``: ``customer_id`` and ``columns`` of the
  customer table, ``chunk_size`` rows per frame (keyset chunks, or one ``IN`` query per chunk of ids).
- ``score_customers(engine, settings, name, customer_ids)``: ``(ids, scores)`` by a registered model
  (``orchestrator.scoring.registry``: ``version`` or the champion), checked against the table's
  columns first (``FeatureMismatch`` names the column). ``score_chunk`` is the same for one chunk,
  a chunk task; ``score_chunk_by_channel`` and ``score_chunk_of_features`` add a channel model's
  per-channel effects and their spread (``ChannelUpliftModel``); ``checked_model`` is the check alone.
- ``apply_score_rules(ids, scores, min_score=, top=, top_percent=)`` keeps the best, best first, ties
  by id; ``score_order`` is the same as positions, with one sort.

The models themselves (``ResponseModel``, training, evaluation) are ``orchestrator.scoring.response``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from orchestrator.customers.table import ID_COLUMN, among_ids, customer_columns, customer_table, frame_of
from orchestrator.errors import did_you_mean
from orchestrator.scoring.response import FeatureMismatch, table_kinds
from orchestrator.settings import Settings

__all__ = [
    "apply_score_rules",
    "checked_model",
    "iter_customer_frames",
    "score_chunk",
    "score_chunk_by_channel",
    "score_chunk_of_features",
    "score_customers",
    "score_order",
]

SQLITE_MAX_PARAMETERS = 30_000  # below SQLite's default limit of 32766 bound parameters


def iter_customer_frames(
    engine: sa.Engine,
    columns: Sequence[str],
    *,
    table: str = "customers",
    customer_ids: Sequence[str] | np.ndarray | None = None,
    chunk_size: int = 5_000,
) -> Iterator[pd.DataFrame]:
    """``customer_id`` and ``columns`` of the customer table, ``chunk_size`` rows per frame.

    Every customer when ``customer_ids`` is ``None`` (keyset chunks in id order), else those ids,
    one ``IN`` query per chunk of ids (ids not in the table are skipped).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1; got {chunk_size}")
    source = customer_table(engine, table)
    unknown = [c for c in columns if c not in source.c]
    if unknown:
        raise LookupError(
            f"customer table '{table}' has no column '{unknown[0]}'{did_you_mean(unknown[0], source.c.keys())}"
        )
    wanted = [ID_COLUMN, *(c for c in columns if c != ID_COLUMN)]
    selected = sa.select(*(source.c[c] for c in wanted))
    with engine.connect() as conn:
        if customer_ids is None:
            last = None
            while True:
                query = selected.order_by(source.c[ID_COLUMN]).limit(chunk_size)
                if last is not None:
                    query = query.where(source.c[ID_COLUMN] > last)
                rows = conn.execute(query).all()
                if not rows:
                    return
                yield frame_of(rows, wanted)
                if len(rows) < chunk_size:
                    return
                last = rows[-1][0]
        else:
            ids = [str(i) for i in customer_ids]
            if conn.dialect.name == "sqlite":
                chunk_size = min(chunk_size, SQLITE_MAX_PARAMETERS)
            query = selected.where(among_ids(source.c[ID_COLUMN], conn.dialect.name))
            for start in range(0, len(ids), chunk_size):
                rows = conn.execute(query, {"ids": ids[start : start + chunk_size]}).all()
                yield frame_of(rows, wanted)


def score_customers(
    engine: sa.Engine,
    settings: Settings,
    name: str,
    customer_ids: Sequence[str] | np.ndarray | None = None,
    *,
    version: int | None = None,
    table: str = "customers",
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, scores)`` of the customers in ``customer_ids`` (``None``: every customer) by model ``name``.

    The model is ``version`` or the newest champion. Ids not in the table are left out; the order
    is not meaningful (``apply_score_rules`` sorts). Raises ``ModelNotFound`` for an unknown model
    and ``FeatureMismatch`` naming the column when the table lacks a feature or its kind changed.
    ``progress`` is called with the number of customers scored in each chunk.
    """
    model = _checked_model(engine, settings, name, version, table)
    all_ids: list[np.ndarray] = []
    all_scores: list[np.ndarray] = []
    for frame in iter_customer_frames(
        engine,
        model.features_,
        table=table,
        customer_ids=customer_ids,
        chunk_size=chunk_size or settings.database.chunk_size,
    ):
        all_ids.append(frame[ID_COLUMN].to_numpy(dtype=object))
        all_scores.append(model.score_frame(frame, check=False))
        if progress is not None:
            progress(len(frame))
    if not all_ids:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.float64)
    return np.concatenate(all_ids), np.concatenate(all_scores)


def checked_model(settings: Settings, name: str, version: int | None, table: str):
    """Model ``name`` (``version`` or the champion) of the engine of ``settings``, checked against the
    customer table's columns (``FeatureMismatch`` if it cannot score them)."""
    from orchestrator.db.engine import connect

    return _checked_model(connect(settings), settings, name, version, table)


def _checked_model(engine: sa.Engine, settings: Settings, name: str, version: int | None, table: str):
    """Model ``name`` (``version`` or the champion), checked against the customer table's columns."""
    from orchestrator.scoring.registry import get, load

    model = load(settings, get(engine, name, version))
    columns = customer_columns(engine, table)
    if columns is None:
        customer_table(engine, table)  # raises the "no customer table" LookupError
    try:
        model.check_kinds(table_kinds(columns or {}))
    except FeatureMismatch as error:
        raise FeatureMismatch(f"model '{name}' cannot score customer table '{table}': {error}") from error
    return model


def score_chunk_by_channel(
    settings: Settings,
    name: str,
    version: int | None,
    table: str,
    customer_ids: Sequence[str] | np.ndarray,
    channels: Sequence[str],
    spread: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``score_chunk`` plus, for a model with per-channel effects (``ChannelUpliftModel``), the
    ``(n, len(channels))`` effects in the order of ``channels`` (NaN for a channel the model does
    not know) and, if ``spread``, how uncertain each is (``ChannelUpliftModel.spread_frame``; else
    None); ``None`` for both with a model of one score. One query for the chunk's features."""
    from orchestrator.db.engine import connect

    ids = np.asarray(customer_ids, dtype=object)
    engine = connect(settings)
    model = _checked_model(engine, settings, name, version, table)
    if not len(ids):
        return ids, *score_chunk_of_features(settings, model, pd.DataFrame(), channels, spread)
    frames = list(iter_customer_frames(engine, model.features_, table=table, customer_ids=ids, chunk_size=len(ids)))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[ID_COLUMN, *model.features_])
    return frame[ID_COLUMN].to_numpy(dtype=object), *score_chunk_of_features(settings, model, frame, channels, spread)


def score_chunk_of_features(
    settings: Settings,  # noqa: ARG001 - a chunk function takes the Settings first (execution.chunks)
    model: Any,
    frame: pd.DataFrame,
    channels: Sequence[str],
    spread: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The scores, per-channel effects and their spread (as ``score_chunk_by_channel``) of one chunk's
    feature columns, row by row in ``frame``'s order (a chunk task). ``model`` was checked against the
    customer table (``checked_model``) whose columns ``frame`` holds, so the values' kinds are not
    inferred again."""
    by_channel = hasattr(model, "effects_of")
    if not len(frame):
        empty = np.empty((0, len(channels))) if by_channel else None
        return np.empty(0, dtype=np.float64), empty, empty if spread else None
    if not by_channel:
        return model.score_frame(frame, check=False), None, None
    spreads = None
    if spread:
        effects, spreads = model.effects_and_spread_of(frame, list(channels), check=False)
    else:
        effects = model.effects_of(frame, list(channels), check=False)
    known = ~np.isnan(effects).all(axis=0)
    scores = effects[:, known].max(axis=1) if known.any() else model.score_frame(frame, check=False)
    return scores, effects, spreads


def score_chunk(
    settings: Settings, name: str, version: int | None, table: str, customer_ids: Sequence[str] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``score_customers`` for one chunk of customers, on the engine of ``settings`` (a chunk task).

    The chunk's features are read in one query (SQLite: as few as its parameter limit allows):
    a few columns of ``execution.chunk_size`` rows are small, and one query of 50,000 ids costs
    about half of ten of 5,000 (PostgreSQL, measured).
    """
    from orchestrator.db.engine import connect

    ids = np.asarray(customer_ids, dtype=object)
    if not len(ids):
        return np.empty(0, dtype=object), np.empty(0, dtype=np.float64)
    return score_customers(connect(settings), settings, name, ids, version=version, table=table, chunk_size=len(ids))


def apply_score_rules(
    ids: Sequence[str] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    min_score: float | None = None,
    top: int | None = None,
    top_percent: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The customers to keep, best score first (ties by id).

    ``top``: the best N; ``top_percent``: the best N % of the scored customers (rounded up); they
    exclude each other. ``min_score``: only those scoring at least this (applied after the cut, so
    it can only shrink it). Customers without a score (NaN) are left out.
    """
    id_array = np.asarray(ids, dtype=object)
    score_array = np.asarray(scores, dtype=np.float64)
    order, _n_ordered, n_kept = score_order(
        id_array, score_array, min_score=min_score, top=top, top_percent=top_percent
    )
    keep = order[:n_kept]
    return id_array[keep], score_array[keep]


def score_order(
    ids: Sequence[str] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    min_score: float | None = None,
    top: int | None = None,
    top_percent: float | None = None,
) -> tuple[np.ndarray, int, int]:
    """``apply_score_rules`` as positions, with one sort: ``(order, n_ordered, n_kept)``.

    ``order``: the positions of the customers with a score, best first (ties by id); the first
    ``n_ordered`` of them score at least ``min_score``, the first ``n_kept`` pass the whole cut
    (``top`` or ``top_percent``, then ``min_score``): ``apply_score_rules`` keeps ``order[:n_kept]``.
    """
    if top is not None and top_percent is not None:
        raise ValueError("give top or top_percent, not both")
    if top is not None and top < 0:
        raise ValueError(f"top must be 0 or more; got {top}")
    if top_percent is not None and not 0 < top_percent <= 100:
        raise ValueError(f"top_percent must be more than 0 and at most 100; got {top_percent}")
    id_array = np.asarray(ids, dtype=object)
    score_array = np.asarray(scores, dtype=np.float64)
    if id_array.shape != score_array.shape:
        raise ValueError(f"ids and scores differ in length: {len(id_array)} and {len(score_array)}")
    scored = np.flatnonzero(~np.isnan(score_array))
    # the last key sorts first: score descending, then id
    order = scored[np.lexsort((id_array[scored].astype(str), -score_array[scored]))]
    n_ordered = len(order)
    if min_score is not None:  # scores are descending
        n_ordered = int(np.searchsorted(-score_array[order], -min_score, side="right"))
    if top_percent is not None:
        top = math.ceil(len(order) * top_percent / 100)
    n_kept = n_ordered if top is None else min(top, n_ordered)
    return order, n_ordered, n_kept
