"""Random control groups from a salted hash: stable, reproducible, independent of order.

A customer's position ``u`` in [0, 1) is the first 64 bits of ``blake2b(salt + NUL +
customer_id)`` over 2**64. The customer is in the control group when ``u < share``. The same
salt and customer always give the same ``u``, so a re-run, a resumed wave or another
database backend puts everyone in the same group; a new salt draws a new group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_SCALE = float(2**64)


def hash_positions(customer_ids: Sequence[str], salt: str) -> np.ndarray:
    """Uniform positions in [0, 1), one per customer id."""
    prefix = salt.encode() + b"\x00"
    blake = hashlib.blake2b
    raw = b"".join(blake(prefix + cid.encode(), digest_size=8).digest() for cid in customer_ids)
    return np.frombuffer(raw, dtype=">u8").astype(np.float64) / _SCALE


def control_mask(customer_ids: Sequence[str], share: float, salt: str) -> np.ndarray:
    """Boolean array: True where the customer belongs to the control group."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"The control share must be in [0, 1). Got {share!r} instead.")
    if share == 0.0 or len(customer_ids) == 0:
        return np.zeros(len(customer_ids), dtype=bool)
    return hash_positions(customer_ids, salt) < share
