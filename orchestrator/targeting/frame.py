"""``ContactFrame``: what a wave records, as equal-length columns (one position per contact).

Selection (``selection.split``) produces one with arm, variant and score; planning
(``planning.plan_cycle``) fills channel, assignee, expected value, capacity pool and the propensities; the
ledger (``orchestrator.ledger.contacts.record_contacts``) writes it in bulk. Every column is
a numpy array, so a million contacts are a handful of arrays, never a million objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from orchestrator.db.tables import Arm

__all__ = ["ContactFrame"]


@dataclass(frozen=True, eq=False)
class ContactFrame:
    """The contacts of one wave: treatment, control and global control, one position per customer.

    ``customer_id``, ``arm`` (an ``Arm`` value), ``variant`` (or None), ``channel`` (or None)
    and ``assignee`` (rep or endpoint, or None) are object arrays; ``score`` and
    ``expected_value`` float arrays (NaN: none); ``pool`` the capacity pool index of the
    allocated channel (-1: none; planning only, not recorded); ``arm_propensity`` and
    ``channel_propensity`` the probabilities with which the contact got its arm and its
    channel (NaN: not known; planning fills them); ``eligible`` the campaign's channels the
    customer could have got, comma-separated (None: not known), so that a later evaluation
    knows which choices another policy had. Build one with ``of``.
    """

    customer_id: np.ndarray
    arm: np.ndarray
    variant: np.ndarray
    channel: np.ndarray
    assignee: np.ndarray
    score: np.ndarray
    expected_value: np.ndarray
    pool: np.ndarray
    arm_propensity: np.ndarray
    channel_propensity: np.ndarray
    eligible: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.customer_id)
        wrong = {f.name: len(getattr(self, f.name)) for f in fields(self) if len(getattr(self, f.name)) != n}
        if wrong:
            got = ", ".join(f"{name}: {length}" for name, length in wrong.items())
            raise ValueError(f"Every column of a ContactFrame must have one value per customer_id ({n}). Got {got}.")

    def __len__(self) -> int:
        return len(self.customer_id)

    @classmethod
    def of(
        cls,
        customer_id: Sequence[str] | np.ndarray,
        arm: Sequence[str] | np.ndarray,
        *,
        variant: Sequence[str | None] | np.ndarray | None = None,
        channel: str | Sequence[str | None] | np.ndarray | None = None,
        assignee: Sequence[str | None] | np.ndarray | None = None,
        score: Sequence[float] | np.ndarray | None = None,
        expected_value: Sequence[float] | np.ndarray | None = None,
        pool: Sequence[int] | np.ndarray | None = None,
        arm_propensity: Sequence[float] | np.ndarray | None = None,
        channel_propensity: Sequence[float] | np.ndarray | None = None,
        eligible: Sequence[str | None] | np.ndarray | None = None,
    ) -> ContactFrame:
        """A frame from columns; a column left out is None (NaN, -1) for all, one ``channel`` name is for all."""
        ids = np.asarray(customer_id, dtype=object)
        n = len(ids)
        return cls(
            customer_id=ids,
            arm=np.asarray(arm, dtype=object),
            variant=_objects(variant, n),
            channel=_objects(channel, n),
            assignee=_objects(assignee, n),
            score=_floats(score, n),
            expected_value=_floats(expected_value, n),
            pool=np.full(n, -1, dtype=np.int64) if pool is None else np.asarray(pool, dtype=np.int64),
            arm_propensity=_floats(arm_propensity, n),
            channel_propensity=_floats(channel_propensity, n),
            eligible=_objects(eligible, n),
        )

    @classmethod
    def concat(cls, frames: Sequence[ContactFrame]) -> ContactFrame:
        """The frames one after the other."""
        if not frames:
            return cls.of([], [])
        return cls(**{f.name: np.concatenate([getattr(fr, f.name) for fr in frames]) for f in fields(cls)})

    def take(self, index: np.ndarray) -> ContactFrame:
        """The contacts at ``index`` (positions or a boolean mask), in that order."""
        return ContactFrame(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def replace(self, **columns: Any) -> ContactFrame:
        """A copy with some columns replaced (lengths checked again)."""
        return replace(self, **columns)

    @property
    def treated(self) -> np.ndarray:
        """Boolean mask of the treated contacts."""
        return self.arm == Arm.TREATMENT.value

    def count(self, arm: str) -> int:
        return int(np.count_nonzero(self.arm == arm))


def _objects(values: Any, n: int) -> np.ndarray:
    if values is None or isinstance(values, str):
        return np.full(n, values, dtype=object)
    return np.asarray(values, dtype=object)


def _floats(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return np.asarray(values, dtype=float)
