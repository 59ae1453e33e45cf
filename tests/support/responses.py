"""Helpers of the response tests: a small ledger to respond to, and what was stored."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from orchestrator.db.tables import Arm, ResponseEvent, Suppression, table_of
from orchestrator.delivery.tasks import outcome_signer, task_id
from orchestrator.ledger import contacts as ledger
from orchestrator.settings import Settings
from orchestrator.targeting.frame import ContactFrame
from orchestrator.templates.links import LinkTokens

events_table = table_of(ResponseEvent)
suppressions = table_of(Suppression)


@dataclass
class Ledger:
    """A wave with call-center contacts c1..c3 and e-mail contacts e1..e3: contact ids by customer."""

    wave_id: int
    ids: dict[str, int]
    settings: Settings

    def ref(self, customer: str) -> str:
        return outcome_signer(self.settings).sign(task_id(self.wave_id, self.ids[customer])).decode()

    def tracking(self, customer: str, *, preview: bool = False, issued: int | None = None) -> str:
        tokens = LinkTokens(self.settings.link_secret(), preview=preview)
        return tokens.make("tracking", self.wave_id, self.ids[customer], issued=issued)

    def unsubscribe_token(self, customer: str, *, preview: bool = False, issued: int | None = None) -> str:
        tokens = LinkTokens(self.settings.link_secret(), preview=preview)
        return tokens.make("unsubscribe", self.wave_id, self.ids[customer], issued=issued)


def make_ledger(engine: sa.Engine, settings: Settings) -> Ledger:
    campaign = ledger.ensure_campaign(engine, "responses", None)
    wave = ledger.open_wave(engine, campaign, "2026-03-02", "0" * 64)
    customers = ["c1", "c2", "c3", "e1", "e2", "e3"]
    channels = np.array(["call_center"] * 3 + ["email"] * 3, dtype=object)
    arms = np.array([Arm.TREATMENT.value] * 6, dtype=object)
    ledger.record_contacts(engine, wave.id, ContactFrame.of(customers, arms, channel=channels))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(ledger.contacts.c.customer_id, ledger.contacts.c.id).where(ledger.contacts.c.wave_id == wave.id)
        )
        ids = {customer: contact for customer, contact in rows}
    return Ledger(wave.id, ids, settings)


def stored(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    events_table.c.source,
                    events_table.c.event_id,
                    events_table.c.contact_id,
                    events_table.c.type,
                    events_table.c.value,
                    events_table.c.occurred_at,
                ).order_by(events_table.c.id)
            )
        ]


def suppressed(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        query = sa.select(suppressions.c.customer_id, suppressions.c.channel, suppressions.c.reason).order_by(
            suppressions.c.customer_id
        )
        return [tuple(r) for r in conn.execute(query)]
