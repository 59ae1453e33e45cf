"""Random control groups and A/B variants from a salted hash: stable, reproducible, independent of order.

A customer's position ``u`` in [0, 1) is the first 64 bits of ``blake2b(salt + NUL +
customer_id)`` over 2**64. The customer is in the control group when ``u < share``. The same
salt and customer always give the same ``u``, so a re-run, a resumed wave or another
database backend puts everyone in the same group; a new salt draws a new group.

Three draws are offered, all plain functions over arrays:

- ``control_mask(ids, share, salt)``: each customer on their own, ``u < share``. The control
  share is ``share`` on average; a customer's membership never depends on who else is selected.
- ``stratified_control_mask(ids, share, salt, strata)``: within every stratum (e.g. a score
  decile from ``score_deciles``) exactly ``round(share * n)`` customers, the ones with the
  smallest ``u``. Balanced per stratum, but a customer's membership depends on the other members
  of the stratum: adding or removing customers (or moving a customer to another stratum) can move
  a customer near the cut-off in or out of the control group. Use it when the audience of a wave
  is fixed once drawn; use ``control_mask`` when membership must stay stable as the audience
  changes between runs.
- ``assign_variants(ids, variants, salt)``: the A/B(/n) variant of each treated customer, from
  positions drawn with ``salt + ":variant"`` so that the variant is independent of the control
  draw made with ``salt``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np

_SCALE = float(2**64)
_VARIANT_SALT_SUFFIX = ":variant"
_SHARE_TOLERANCE = 1e-9


def hash_positions(customer_ids: Sequence[str], salt: str) -> np.ndarray:
    """Uniform positions in [0, 1), one per customer id."""
    # the salted prefix is hashed once; each id continues a copy of that state (the same digest as
    # hashing prefix + id, without building the concatenated bytes or a new hash object per id)
    copy = hashlib.blake2b(salt.encode() + b"\x00", digest_size=8).copy
    digests: list[bytes] = []
    append = digests.append
    for cid in customer_ids:
        h = copy()
        h.update(cid.encode())
        append(h.digest())
    return np.frombuffer(b"".join(digests), dtype=">u8").astype(np.float64) / _SCALE


def control_mask(customer_ids: Sequence[str], share: float, salt: str) -> np.ndarray:
    """Boolean array: True where the customer belongs to the control group."""
    _check_share(share)
    if share == 0.0 or len(customer_ids) == 0:
        return np.zeros(len(customer_ids), dtype=bool)
    return hash_positions(customer_ids, salt) < share


def stratified_control_mask(customer_ids: Sequence[str], share: float, salt: str, strata: np.ndarray) -> np.ndarray:
    """Boolean array: True where the customer belongs to the control group, balanced per stratum.

    ``strata`` holds one label per customer (any sortable labels, e.g. score deciles 0..9). In a
    stratum of ``n`` customers the ``round(share * n)`` customers with the smallest hash position
    (ties broken by customer id; halves rounded up) are in the control group, so every stratum's
    control share is within half a customer of ``share``. The result does not depend on the order
    of the input, only on the salt and on the members of each stratum; see the module docstring
    for the trade-off against ``control_mask``.
    """
    _check_share(share)
    n = len(customer_ids)
    strata = np.asarray(strata)
    if strata.shape != (n,):
        raise ValueError(
            f"stratified_control_mask needs one stratum label per customer id: "
            f"expected shape ({n},), got {strata.shape} instead."
        )
    mask = np.zeros(n, dtype=bool)
    if share == 0.0 or n == 0:
        return mask
    _, codes, counts = np.unique(strata, return_inverse=True, return_counts=True)
    positions = hash_positions(customer_ids, salt)
    ids = np.asarray(customer_ids, dtype=str)
    # Sorted by stratum, then position, then id: the order depends only on the data.
    order = np.lexsort((ids, positions, codes))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank_in_stratum = np.arange(n) - starts[codes[order]]
    quota = np.floor(share * counts + 0.5).astype(np.int64)
    mask[order] = rank_in_stratum < quota[codes[order]]
    return mask


def score_deciles(scores: np.ndarray) -> np.ndarray:
    """Decile of each score, 0 = lowest tenth, 9 = highest tenth, as an int array.

    The decile is ``floor(10 * k / n)`` where ``k`` is the number of scores strictly below the
    customer's score. Equal scores therefore always share a decile (the one of the lowest of them),
    whatever the input order; without ties every decile holds ``n / 10`` customers, give or take
    one. A large block of equal scores makes its decile larger and may leave the deciles above it
    empty.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"score_deciles needs a 1-d array of scores. Got shape {values.shape} instead.")
    if np.isnan(values).any():
        first = int(np.flatnonzero(np.isnan(values))[0])
        raise ValueError(f"score_deciles needs a score for every customer. Got NaN at position {first} instead.")
    n = len(values)
    below = np.searchsorted(np.sort(values), values, side="left")
    return (10 * below) // n if n else np.zeros(0, dtype=np.int64)


def assign_variants(customer_ids: Sequence[str], variants: Mapping[str, float], salt: str) -> np.ndarray:
    """Object array with the variant name of each (treated) customer.

    ``variants`` maps names to shares that add up to 1, e.g. ``{"A": 0.5, "B": 0.5}``. Each
    customer's position, drawn with ``salt + ":variant"`` (independent of the control group drawn
    with ``salt``), falls into one of consecutive intervals of [0, 1) laid out in the order of the
    variant names (sorted, so the order of the mapping does not matter). A customer keeps their
    variant across re-runs; changing the shares moves only customers near the interval bounds.
    A variant with share 0 gets nobody.
    """
    if not variants:
        raise ValueError("assign_variants needs at least one variant, e.g. {'A': 0.5, 'B': 0.5}. Got none.")
    names = sorted(variants)
    values = [float(variants[name]) for name in names]
    for name, value in zip(names, values, strict=True):
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"The share of variant {name!r} must be in [0, 1]. Got {value!r} instead.")
    shares = np.array(values)
    total = float(shares.sum())
    if abs(total - 1.0) > _SHARE_TOLERANCE:
        raise ValueError(f"The variant shares must add up to 1. Got {round(total, 12)!r} instead.")
    result = np.empty(len(customer_ids), dtype=object)
    if len(customer_ids) == 0:
        return result
    cumulative = np.cumsum(shares)
    # Normalised by the running total itself, so the bound after the last non-empty variant is
    # exactly 1.0 and trailing zero-share variants stay empty (positions are < 1).
    upper = cumulative / cumulative[-1]
    positions = hash_positions(customer_ids, salt + _VARIANT_SALT_SUFFIX)
    index = np.searchsorted(upper, positions, side="right")
    result[:] = np.asarray(names, dtype=object)[index]
    return result


def _check_share(share: float) -> None:
    if not 0.0 <= share < 1.0:
        raise ValueError(f"The control share must be in [0, 1). Got {share!r} instead.")
