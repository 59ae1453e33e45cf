"""Suppression entries the engine adds on its own, from what channels report.

Contract:

* ``suppress_hard_bounces(engine, customer_ids, source=)`` puts every customer whose e-mail
  address hard-bounced (``DeliveryResult.hard_bounce``) on the suppression list for channel
  ``email`` with reason ``hard_bounce``, in bulk, through ``policy.add_suppressions``. An
  entry already there is left as it is (its first ``source`` and ``created_at`` stand), so
  calling it again with the same ids, or ids repeated in one call, adds nothing and raises
  nothing. The core calls it after each chunk of a wave; the contact policy then blocks
  those customers on e-mail in every later wave whose policy lists ``hard_bounce``.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from orchestrator.rules.kinds.email import KIND as EMAIL_KIND
from orchestrator.targeting.policy import SuppressionRow, add_suppressions

__all__ = ["HARD_BOUNCE", "suppress_hard_bounces"]

HARD_BOUNCE = "hard_bounce"
_MAX_SOURCE = 200


def suppress_hard_bounces(
    engine: sa.Engine, customer_ids: Iterable[str], *, source: str, channel: str = EMAIL_KIND.name
) -> int:
    """Suppress ``customer_ids`` on ``channel`` (e-mail) as hard bounces; returns how many entries were new.

    ``source`` says where the bounces came from, e.g. ``"wave 12"`` (cut to 200 characters).
    """
    if not source or not source.strip():
        raise ValueError(
            "The 'source' parameter of suppress_hard_bounces must say where the bounces came from, "
            f"e.g. 'wave 12'. Got {source!r} instead."
        )
    source = source.strip()[:_MAX_SOURCE]
    rows = (
        SuppressionRow(str(customer_id), HARD_BOUNCE, channel, source) for customer_id in dict.fromkeys(customer_ids)
    )
    return add_suppressions(engine, rows)
