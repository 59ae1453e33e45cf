"""Seed (test) sends: a sample of a campaign's e-mails to internal addresses (``campaign run FILE --test-to``).

``send_test_messages(settings, prepared, plan, recipients, n)`` renders the e-mails of up to ``n``
treated customers per A/B variant of the campaign's plan (the first by customer id, as
``campaign preview`` picks them) and sends each of them to every address in ``recipients``
through the real e-mail channel (the same SMTP settings, DKIM signing and MIME building as a wave).
Each test message is marked: its subject starts with ``[TEST]`` and it carries the header
``X-Campaign-Test: seed``; its links (unsubscribe, clicks, tracking) are preview links that act on
nobody. Nothing is recorded: no wave, no contact, no delivery attempt, no suppression; the customers
of the sample are not contacted and nothing counts against frequency caps or capacity.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from channels.base import Outbound
from orchestrator.customers.table import customer_table
from orchestrator.db.engine import connect
from orchestrator.delivery.messages import MessageBuilder, customer_rows, normalized_address
from orchestrator.delivery.prepared import EMAIL, PreparedWave
from orchestrator.rules.kinds import channel_kind
from orchestrator.settings import Settings

__all__ = ["TEST_HEADER", "TEST_PREFIX", "SeedReport", "parse_test_addresses", "send_test_messages"]

TEST_PREFIX = "[TEST] "
"""What the subject of every test message starts with."""
TEST_HEADER = "X-Campaign-Test"
"""Header that marks a test message (value ``seed``); receivers' filters and the team can sort on it."""


@dataclass
class SeedReport:
    campaign: str
    recipients: list[str]
    rendered: int = 0  # sample messages rendered (customers x variants)
    sent: int = 0  # test messages accepted by the SMTP server (rendered x recipients)
    failed: list[str] = field(default_factory=list)  # outcome details of refused ones (no personal data)
    variants: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "test_recipients": len(self.recipients),
            "variants": self.variants,
            "rendered": self.rendered,
            "sent": self.sent,
            "failed": self.failed,
            "recorded": 0,
        }


def parse_test_addresses(text: str) -> list[str]:
    """``"a@x.example,b@y.example"`` as normalised addresses; ``ValueError`` naming a bad one."""
    addresses = [part.strip() for part in text.split(",") if part.strip()]
    if not addresses:
        raise ValueError("--test-to needs at least one address, e.g. --test-to qa@bank.example,seed@gmail.com")
    out = []
    for address in addresses:
        normal = normalized_address(address)
        if normal is None:
            raise ValueError(f"--test-to: '{address}' is not an e-mail address")
        out.append(normal)
    return list(dict.fromkeys(out))


def send_test_messages(
    settings: Settings, prepared: PreparedWave, plan, recipients: list[str], n: int = 3
) -> SeedReport:
    """Render up to ``n`` sample e-mails per variant and send each to every test address; record nothing.

    ``plan`` is the campaign's ``CampaignPlan`` (or ``Selection``) of this run, as ``campaign preview``
    uses it. Raises ``ValueError`` when the campaign has no e-mail channel.
    """
    section = prepared.spec.channels.section(EMAIL)
    report = SeedReport(prepared.spec.name, recipients)
    contacts = plan.contacts
    treated = np.flatnonzero(contacts.treated & (contacts.channel == EMAIL))
    chosen: list[int] = []
    for variant in dict.fromkeys(contacts.variant[treated].tolist()):
        chosen.extend([i for i in treated.tolist() if contacts.variant[i] == variant][:n])
        report.variants.append("default" if variant is None else str(variant))
    ids = contacts.customer_id[chosen].tolist()
    variants = contacts.variant[chosen].tolist()
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    builder = MessageBuilder(settings, prepared.spec, prepared.templates, prepared.wave_key, None)  # preview links
    domain = builder.domain
    batch: list[Outbound] = []
    for chunk in customer_rows(engine, table, ids, variants, max(len(ids), 1)):
        messages, skipped = builder.build(chunk)
        report.failed += [f"sample customer {s.contact_id}: {s.detail}" for s in skipped]
        for message in messages:
            report.rendered += 1
            parts = dict(message.parts)
            parts["subject"] = TEST_PREFIX + parts["subject"]
            headers = {**message.headers, TEST_HEADER: "seed"}
            for address in recipients:
                batch.append(
                    Outbound(
                        contact_id=len(batch) + 1,  # numbers the test messages; no ledger contact
                        recipient=address,
                        parts=parts,
                        key=f"<test.{uuid.uuid4().hex}@{domain}>",
                        headers=headers,
                    )
                )
    if not batch:
        return report
    adapter = channel_kind(EMAIL).make_adapter(settings, section)
    with adapter:
        result = adapter.send(batch)
    report.sent = result.sent
    report.failed += [f"{r.outcome}: {r.detail}" for r in result.results if r.outcome != "sent"]
    return report
