"""Why a selected customer was not treated: the ledger's ``contact_reasons`` table.

The contact ledger records the treated, control and global-control customers of a wave; every
other customer a wave's campaign selected (passed its audience, lists and contact policy) gets
one row here with a reason code (``orchestrator.targeting.planning.NOT_TREATED``:
``below_score_cut``, ``lost_arbitration`` with the winning campaign as ``detail``,
``no_eligible_channel``, ``channel_full``, ``not_worth_cost``, ``control_unallocated``).

``write(engine, wave_id, not_treated)`` replaces the wave's rows in one transaction, in bulk
(COPY on PostgreSQL), so a wave planned again after a crash before its contacts were recorded
writes them again without duplicates; ``of_customer(engine, customer_id)`` reads one customer's
rows (``campaign explain --customer``); ``counts(engine, wave_id)`` per reason. Erasure
removes a customer's rows (``orchestrator.ledger.erasure``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from orchestrator.db.bulk import bulk_insert
from orchestrator.db.tables import Campaign, ContactReason, Wave, table_of
from orchestrator.targeting.planning import NotTreated

__all__ = ["Reason", "contact_reasons", "counts", "of_customer", "write"]

contact_reasons = table_of(ContactReason)
waves = table_of(Wave)
campaigns = table_of(Campaign)


@dataclass(frozen=True)
class Reason:
    campaign: str
    wave_key: str
    wave_id: int
    reason: str
    detail: str | None


def write(engine: sa.Engine, wave_id: int, not_treated: NotTreated) -> int:
    """Replace the wave's reasons with ``not_treated`` (bulk); the rows written."""
    with engine.begin() as conn:
        conn.execute(sa.delete(contact_reasons).where(contact_reasons.c.wave_id == wave_id))
        if not len(not_treated):
            return 0
        rows = zip(
            [wave_id] * len(not_treated),
            not_treated.customer_id.tolist(),
            not_treated.reason.tolist(),
            not_treated.detail.tolist(),
            strict=True,
        )
        return bulk_insert(conn, contact_reasons.name, ["wave_id", "customer_id", "reason", "detail"], rows)


def counts(engine: sa.Engine, wave_id: int) -> dict[str, int]:
    """Customers per reason code of the wave."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(contact_reasons.c.reason, sa.func.count())
            .where(contact_reasons.c.wave_id == wave_id)
            .group_by(contact_reasons.c.reason)
        ).all()
    return {reason: int(n) for reason, n in rows}


def of_customer(engine: sa.Engine, customer_id: str, *, campaign: str | None = None) -> list[Reason]:
    """The customer's reasons (of ``campaign``'s waves), newest wave first."""
    query = (
        sa.select(campaigns.c.name, waves.c.key, waves.c.id, contact_reasons.c.reason, contact_reasons.c.detail)
        .join(waves, waves.c.id == contact_reasons.c.wave_id)
        .join(campaigns, campaigns.c.id == waves.c.campaign_id)
        .where(contact_reasons.c.customer_id == customer_id)
        .order_by(waves.c.id.desc())
    )
    if campaign is not None:
        query = query.where(campaigns.c.name == campaign)
    with engine.connect() as conn:
        return [Reason(*row) for row in conn.execute(query)]
