"""Deliverability pre-flight of a campaign's e-mail (``campaign deliverability check FILE``).

``check_deliverability(settings, rules_path)`` validates the campaign (``stages.prepare``), renders
its e-mail for a few customers of the customer table (each A/B variant, as a wave would, with
preview links that act on nobody), builds the messages as the e-mail channel sends them (DKIM-signed
when a key covers the sender) and checks what Gmail's and Yahoo's bulk-sender rules (2024) ask:

* ``dkim``: a DKIM key (``DkimSettings``) whose domain is the From domain or a parent of it
  (DMARC alignment), readable, at least 1024 bits (2048 recommended); error when missing;
* ``one_click_unsubscribe``: ``List-Unsubscribe`` with an HTTPS URL and ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058) in every message, both covered by the DKIM signature;
* ``unsubscribe_link``: the unsubscribe URL visible in the body (a link in the HTML part and the
  URL in the text part) of every variant;
* ``plain_text_part``: every variant has a non-empty text part (``body.txt``); warning when not;
* ``message_size``: the largest sample message on the wire; warning over 102 KB (Gmail clips the
  message), error over 10 MB (refused by many receivers);
* ``complaint_rate``: spam complaints (response events of type ``complaint``) over e-mails sent in
  the last ``days`` days, for this campaign and for all campaigns (receivers rate the sending
  domain): error at 0.3 % or more, warning at 0.1 % or more.

Each finding is ``ok``, ``warning`` or ``error``; nothing is recorded or sent.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from channels.dkim import SIGNED_HEADERS, DkimSigner, from_domain, signer_for
from channels.mime import MessageSkeleton
from orchestrator.customers.table import ID_COLUMN, customer_table
from orchestrator.db.engine import connect
from orchestrator.db.tables import ContactStatus, ResponseEvent, table_of
from orchestrator.delivery.messages import MessageBuilder, customer_rows
from orchestrator.delivery.prepared import EMAIL
from orchestrator.ledger import contacts as ledger
from orchestrator.rules.kinds.email import EmailChannelSpec
from orchestrator.settings import Settings
from orchestrator.wave.stages import prepare

__all__ = [
    "COMPLAINT_ERROR",
    "COMPLAINT_WARNING",
    "CLIP_BYTES",
    "Finding",
    "Report",
    "check_deliverability",
]

COMPLAINT_ERROR = 0.003
"""Spam complaint rate Gmail and Yahoo require senders to stay under (0.3 %)."""
COMPLAINT_WARNING = 0.001
"""Complaint rate Gmail advises staying under (0.1 %)."""
CLIP_BYTES = 102_000
"""Gmail clips messages larger than about 102 KB ("[Message clipped]"), hiding the footer's unsubscribe link."""
MAX_BYTES = 10_000_000
"""Many receivers refuse messages over 10 MB."""

events = table_of(ResponseEvent)


@dataclass
class Finding:
    check: str
    status: str  # ok, warning, error
    message: str


@dataclass
class Report:
    campaign: str
    sender: str
    sample: int = 0
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, status: str, message: str) -> None:
        self.findings.append(Finding(check, status, message))

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.status == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.status == "warning")

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "sender": self.sender,
            "sample_messages": self.sample,
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [asdict(f) for f in self.findings],
        }


def check_deliverability(settings: Settings, rules_path: Path, *, days: int = 30, sample: int = 5) -> Report:
    """Check the e-mail of the campaign in ``rules_path``; raises ``ValidationFailed`` for an invalid campaign
    and ``ValueError`` when it sends no e-mail."""
    lenient = settings.model_copy(update={"dkim": settings.dkim.model_copy(update={"required": False})})
    prepared = prepare(lenient, rules_path)  # a missing required key is the ``dkim`` finding, not a failure
    section = prepared.spec.channels.section(EMAIL)  # ValueError: no e-mail channel
    assert isinstance(section, EmailChannelSpec)
    report = Report(prepared.spec.name, section.sender)
    signer = _dkim(report, settings, section.sender)
    messages = _sample(settings, prepared, section, sample)
    report.sample = sum(len(m) for m in messages.values())
    skeleton = MessageSkeleton(section.sender, section.reply_to)
    _one_click(report, messages, signer, skeleton)
    _unsubscribe_link(report, messages)
    _plain_text(report, messages)
    _size(report, messages, signer, skeleton)
    _complaints(report, settings, prepared.spec.name, days)
    return report


def _dkim(report: Report, settings: Settings, sender: str) -> DkimSigner | None:
    domain = from_domain(sender)
    keys = settings.dkim.all_keys()
    try:
        signer = signer_for(settings.dkim.model_copy(update={"required": False}), sender)
    except ValueError as exc:
        report.add("dkim", "error", str(exc))
        return None
    if signer is None:
        others = ", ".join(sorted({k.domain for k in keys}))
        hint = f"the keys are for {others}, not aligned with {domain}" if keys else "no DKIM key is configured"
        report.add(
            "dkim",
            "error",
            f"no DKIM key signs mail from {domain} ({hint}); Gmail and Yahoo require bulk senders to sign "
            "with a key of the From domain: set CAMPAIGN_DKIM_PRIVATE_KEY_FILE, CAMPAIGN_DKIM_SELECTOR and "
            "CAMPAIGN_DKIM_DOMAIN",
        )
        return None
    aligned = "the From domain" if signer.domain == domain else f"a parent of {domain} (relaxed alignment)"
    status = "ok" if signer.bits >= 2048 else "warning"
    advice = "" if status == "ok" else "; use a 2048-bit key"
    report.add(
        "dkim",
        status,
        f"signed with d={signer.domain} s={signer.selector}, {signer.bits}-bit RSA, {aligned}{advice}; "
        f"publish the public key at {signer.selector}._domainkey.{signer.domain}",
    )
    return signer


def _sample(settings: Settings, prepared, section: EmailChannelSpec, n: int) -> dict[str | None, list]:
    """``n`` messages per variant (``Outbound``), for the first customers (by id) with an e-mail address."""
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    with engine.connect() as conn:
        ids = (
            conn.execute(
                sa.select(table.c[ID_COLUMN])
                .where(table.c[section.address_column].is_not(None))
                .order_by(table.c[ID_COLUMN])
                .limit(n)
            )
            .scalars()
            .all()
        )
    builder = MessageBuilder(settings, prepared.spec, prepared.templates, prepared.wave_key, None)
    out: dict[str | None, list] = {}
    for variant in prepared.templates:
        built = []
        for chunk in customer_rows(engine, table, ids, [variant] * len(ids), max(len(ids), 1)):
            messages, _skipped = builder.build(chunk)
            built += messages
        out[variant] = built
    return out


def _label(variant: str | None) -> str:
    return "the e-mail" if variant is None else f"variant {variant}"


def _one_click(report: Report, messages: dict, signer: DkimSigner | None, skeleton: MessageSkeleton) -> None:
    problems: list[str] = []
    for variant, batch in messages.items():
        for m in batch:
            value = m.headers.get("List-Unsubscribe", "")
            if not re.search(r"<https://[^>]+>", value):
                problems.append(
                    f"{_label(variant)}: List-Unsubscribe has no HTTPS URL ({value.split(',')[0][:60]}...); "
                    "RFC 8058 one-click needs https: set CAMPAIGN_LINKS_BASE_URL to the public https address "
                    "of the response API"
                )
                break
            if m.headers.get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click":
                problems.append(f"{_label(variant)}: List-Unsubscribe-Post: List-Unsubscribe=One-Click is missing")
                break
    if problems:
        report.add("one_click_unsubscribe", "error", "; ".join(dict.fromkeys(problems)))
        return
    covered = ""
    if signer is not None:
        first = next((m for batch in messages.values() for m in batch), None)
        if first is not None:
            data = skeleton.build(first, "<sample@check>")
            header = signer.signature(data) if data is not None else b""
            signed = re.sub(rb"\s+", b"", header).partition(b"h=")[2].partition(b";")[0].split(b":")
            missing = [h.decode() for h in (b"list-unsubscribe", b"list-unsubscribe-post") if h not in signed]
            if missing:
                report.add("one_click_unsubscribe", "error", f"the DKIM signature does not cover {', '.join(missing)}")
                return
            covered = ", both covered by the DKIM signature"
    assert b"list-unsubscribe-post" in SIGNED_HEADERS
    report.add(
        "one_click_unsubscribe",
        "ok",
        f"List-Unsubscribe (HTTPS) and List-Unsubscribe-Post: List-Unsubscribe=One-Click in every message{covered}",
    )


def _unsubscribe_link(report: Report, messages: dict) -> None:
    problems = []
    for variant, batch in messages.items():
        for m in batch:
            url = re.search(r"<(https?://[^>]+)>", m.headers.get("List-Unsubscribe", ""))
            if url is None:
                continue
            link = url.group(1)
            html, text = m.parts.get("html"), m.parts.get("text")
            if html is not None and f'href="{link}"' not in html and f"href='{link}'" not in html:
                problems.append(f"{_label(variant)}: the HTML body has no link to the unsubscribe URL")
            if text is not None and link not in text:
                problems.append(f"{_label(variant)}: the text body does not show the unsubscribe URL")
            break
    if problems:
        report.add(
            "unsubscribe_link",
            "error",
            "; ".join(problems) + ' (add <a href="{{ unsubscribe_url }}">Unsubscribe</a> to the template)',
        )
    else:
        report.add("unsubscribe_link", "ok", "every variant shows the unsubscribe link in its body")


def _plain_text(report: Report, messages: dict) -> None:
    missing = [_label(v) for v, batch in messages.items() if batch and not all(m.parts.get("text") for m in batch)]
    if missing:
        report.add(
            "plain_text_part",
            "warning",
            f"{', '.join(missing)} has no plain-text part; add body.txt (spam filters and text-only readers)",
        )
    else:
        report.add("plain_text_part", "ok", "every variant has a plain-text part")


def _size(report: Report, messages: dict, signer: DkimSigner | None, skeleton: MessageSkeleton) -> None:
    sizes = []
    for batch in messages.values():
        for m in batch:
            data = skeleton.build(m, m.key)
            if data is None:
                continue
            sizes.append(len(signer(data) if signer is not None else data))
    if not sizes:
        report.add("message_size", "warning", "no sample message could be built (no customer with an e-mail address)")
        return
    largest = max(sizes)
    if largest > MAX_BYTES:
        report.add("message_size", "error", f"the largest sample message is {largest:,} bytes; keep it under 10 MB")
    elif largest > CLIP_BYTES:
        report.add(
            "message_size",
            "warning",
            f"the largest sample message is {largest:,} bytes; Gmail clips messages over about 102 KB, "
            "hiding the unsubscribe footer",
        )
    else:
        report.add("message_size", "ok", f"the largest of {len(sizes)} sample messages is {largest:,} bytes")


def complaint_rate(settings: Settings, campaign: str | None, days: int) -> tuple[int, int]:
    """(complaints, e-mails sent) in the last ``days`` days, of one campaign or (None) of all."""
    engine = connect(settings)
    since = settings.execution.current_time() - timedelta(days=days)
    contacts, waves, campaigns = ledger.contacts, ledger.waves, ledger.campaigns
    sent_query = sa.select(sa.func.count()).where(
        contacts.c.channel == EMAIL, contacts.c.status == ContactStatus.SENT, contacts.c.sent_at >= since
    )
    complaint_query = sa.select(sa.func.count(sa.distinct(events.c.contact_id))).where(
        events.c.type == "complaint", events.c.channel == EMAIL, events.c.occurred_at >= since
    )
    if campaign is not None:
        wave_ids = (
            sa.select(waves.c.id)
            .join(campaigns, campaigns.c.id == waves.c.campaign_id)
            .where(campaigns.c.name == campaign)
            .scalar_subquery()
        )
        sent_query = sent_query.where(contacts.c.wave_id.in_(wave_ids))
        complaint_query = complaint_query.where(events.c.wave_id.in_(wave_ids))
    with engine.connect() as conn:
        return conn.execute(complaint_query).scalar_one(), conn.execute(sent_query).scalar_one()


def _complaints(report: Report, settings: Settings, campaign: str, days: int) -> None:
    for scope, name in (("this campaign", campaign), ("all campaigns", None)):
        complaints, sent = complaint_rate(settings, name, days)
        check = "complaint_rate" if name is not None else "complaint_rate_all"
        if not sent:
            report.add(check, "ok", f"{scope}: no e-mail sent in the last {days} days")
            continue
        rate = complaints / sent
        figure = f"{scope}: {complaints} complaint(s) / {sent} e-mails sent in the last {days} days = {rate:.3%}"
        if rate >= COMPLAINT_ERROR:
            report.add(check, "error", f"{figure}; at 0.3% or more Gmail and Yahoo reject or junk bulk mail")
        elif rate >= COMPLAINT_WARNING:
            report.add(check, "warning", f"{figure}; keep it under 0.1% (Gmail's advice), hard limit 0.3%")
        else:
            report.add(check, "ok", f"{figure} (limit 0.3%, advice 0.1%)")
