"""Rendering a wave's e-mails: customer rows in, ``Outbound`` messages (or skip reasons) out.

``MessageBuilder`` renders a ``ContactChunk`` (``orchestrator.ledger.contacts``: customer rows
plus contact id and variant) with the template of each contact's A/B variant, validates the
address, and builds the headers (stable ``Message-ID`` per contact,
signed one-click unsubscribe link, signed tracking token). ``render_check`` renders the
treated customers of a selection, a sample before a real wave or all of them in a dry run,
and collects every distinct template problem. Nothing here logs or reports customer data.

Tracking: every message carries an opaque link token (``orchestrator.templates.links.LinkTokens``,
purpose ``tracking``, so it is never valid as an unsubscribe token or vice versa) of
``(wave_id, contact_id)``, the same for a contact re-sent on the same day. It is sent as the
header ``X-Campaign-Token`` and given to templates as ``tracking_token`` and
``open_pixel_url`` (``{links.base_url}/o/{token}.gif``); the unsubscribe link carries the
contact's ``unsubscribe`` token. ``read_tracking_token`` returns ``(wave_id, contact_id)``;
a token altered, cut, made with another key or older than ``links.tracking_days`` raises
``InvalidTrackingToken`` (``PreviewLinkToken`` for a preview's). A builder without a wave
(preview, dry run, the sample rendered before a wave) makes preview tokens, which the
response API refuses. No token shows an id, let alone customer data.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from functools import partial
from typing import Any, Protocol
from urllib.parse import quote

import sqlalchemy as sa
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from channels.base import Outbound
from orchestrator.customers.table import ID_COLUMN, among_ids
from orchestrator.errors import Problem
from orchestrator.execution.progress import progress
from orchestrator.ledger import contacts as ledger
from orchestrator.rules.kinds.email import KIND as EMAIL_KIND
from orchestrator.rules.kinds.email import EmailChannelSpec
from orchestrator.rules.spec import CampaignSpec
from orchestrator.settings import Settings
from orchestrator.templates.links import ClickLinks, InvalidLinkToken, LinkTokens, click_signer, today_number
from orchestrator.templates.loader import RenderError, TemplateSet

__all__ = [
    "TRACKING_HEADER",
    "InvalidTrackingToken",
    "MessageBuilder",
    "RenderCheck",
    "customer_rows",
    "normalized_address",
    "read_tracking_token",
    "render_check",
]

TRACKING_HEADER = "X-Campaign-Token"


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(
    rf"{_ATEXT}(?:\.{_ATEXT})*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z]{{2,63}}"
)
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def normalized_address(address: str) -> str | None:
    """The address as ``email_validator`` normalises it (no DNS), or None when it is not valid.

    A plain ASCII address (dot-atom local part of at most 64 characters, host names of letters,
    digits and hyphens under an alphabetic top-level domain that is not special-use, no IDNA
    label) is checked by one regular expression and its domain lower-cased, as
    ``email_validator`` does; every other address goes through ``email_validator`` itself. A test
    compares both on a corpus of valid and invalid addresses.
    """
    if len(address) <= 254 and _PLAIN_ADDRESS.fullmatch(address):
        local, _, domain = address.rpartition("@")
        domain = domain.lower()
        if len(local) <= 64 and domain.rpartition(".")[2] not in _SPECIAL_USE and "--" not in domain:
            return f"{local}@{domain}"
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


InvalidTrackingToken = InvalidLinkToken
"""A tracking token that was altered, cut, made with another key, expired (``ExpiredLinkToken``)
or made by a preview (``PreviewLinkToken``)."""


def read_tracking_token(settings: Settings, token: str) -> tuple[int, int]:
    """``(wave_id, contact_id)`` of a tracking token made by ``MessageBuilder``; see the module docstring."""
    return LinkTokens(settings.link_secret()).read("tracking", token, max_age_days=settings.links.tracking_days)


@dataclass
class RenderCheck:
    rendered: int = 0
    errors: int = 0
    problems: list[Problem] = field(default_factory=list)  # distinct problems, file:line first
    pid: int = field(default_factory=os.getpid)  # the process that rendered (progress of chunks)

    def add(self, other: RenderCheck) -> None:
        """Count another chunk's check in; each distinct problem is kept once."""
        self.rendered += other.rendered
        self.errors += other.errors
        seen = {str(p) for p in self.problems}
        self.problems.extend(p for p in other.problems if str(p) not in seen)


class MessageBuilder:
    """Turns customer rows into ``Outbound`` e-mails (or skip reasons) for one wave."""

    def __init__(
        self,
        settings: Settings,
        spec: CampaignSpec,
        templates: dict[str | None, TemplateSet],
        wave_key: str,
        wave_id: int | None,
    ):
        self.spec = spec
        self.templates = templates
        self.wave_key = wave_key
        self.wave_id = wave_id
        email = spec.channels.section(EMAIL_KIND.name)  # ValueError when the campaign has no e-mail channel
        if not isinstance(email, EmailChannelSpec):
            raise TypeError(f"the e-mail section of campaign '{spec.name}' is a {type(email).__name__}")
        self.address_column = email.address_column
        self.base_url = settings.links.base_url.rstrip("/")
        self.mailto = settings.links.unsubscribe_mailto
        preview = wave_id is None  # preview, dry run, sample: links that act on no real customer
        self.tokens = LinkTokens(settings.link_secret(), preview=preview)
        self.issued = today_number()
        self.clicks = ClickLinks(click_signer(settings.link_secret() + (":preview" if preview else "")), self.base_url)
        sender = parseaddr(email.sender)[1]
        self.domain = sender.rpartition("@")[2] or "campaign.local"

    def context(self, customer: Mapping[str, Any], contact_id: int) -> dict:
        """The template context of one contact: its customer columns plus campaign, wave and links."""
        context = {k: v for k, v in customer.items() if not k.startswith("_")}
        token = self.tokens.make("unsubscribe", self.wave_id or 0, contact_id, issued=self.issued)
        tracking = self.tokens.make("tracking", self.wave_id or 0, contact_id, issued=self.issued)
        context.update(
            campaign=self.spec.name,
            wave=self.wave_key,
            unsubscribe_url=f"{self.base_url}/unsubscribe/{token}",
            tracking_token=tracking,
            open_pixel_url=f"{self.base_url}/o/{tracking}.gif",
            click=partial(self.clicks, quote(tracking, safe="")),
        )
        return context

    def render(self, chunk: ledger.ContactChunk) -> tuple[list[dict], list[dict[str, str] | RenderError]]:
        """Contexts and rendered parts (or the error) per contact, each with its variant's template."""
        contexts = [self.context(c, cid) for c, cid in zip(chunk.customers, chunk.contact_ids, strict=True)]
        rendered: list[dict[str, str] | RenderError] = [None] * len(chunk)  # type: ignore[list-item]
        by_variant: dict[str | None, list[int]] = {}
        for i, variant in enumerate(chunk.variants):
            by_variant.setdefault(variant if variant in self.templates else None, []).append(i)
        for variant, indexes in by_variant.items():
            for i, parts in zip(
                indexes, self.templates[variant].render_many([contexts[i] for i in indexes]), strict=True
            ):
                rendered[i] = parts
        return contexts, rendered

    def build(self, chunk: ledger.ContactChunk) -> tuple[list[Outbound], list[ledger.Outcome]]:
        """Messages for the contacts of ``chunk`` and the contacts skipped, with why."""
        contexts, rendered = self.render(chunk)
        messages: list[Outbound] = []
        skipped: list[ledger.Outcome] = []
        for row, contact_id, context, parts in zip(chunk.customers, chunk.contact_ids, contexts, rendered, strict=True):
            if isinstance(parts, RenderError):
                skipped.append(ledger.Outcome(contact_id, "skipped", f"render error: {parts.problem}"))
                continue
            address = row.get(self.address_column)
            if not address:
                skipped.append(ledger.Outcome(contact_id, "skipped", "no e-mail address"))
                continue
            address = normalized_address(str(address))
            if address is None:
                skipped.append(ledger.Outcome(contact_id, "skipped", "invalid e-mail address"))
                continue
            digest = hashlib.blake2b(f"{self.wave_id}:{row[ID_COLUMN]}".encode(), digest_size=6).hexdigest()
            headers = {
                "List-Unsubscribe": f"<{context['unsubscribe_url']}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
            if self.mailto:
                headers["List-Unsubscribe"] += f", <mailto:{self.mailto}?subject=unsubscribe>"
            headers[TRACKING_HEADER] = context["tracking_token"]
            messages.append(
                Outbound(
                    contact_id=contact_id,
                    recipient=address,
                    parts=parts,
                    key=f"<w{self.wave_id}.c{contact_id}.{digest}@{self.domain}>",
                    headers=headers,
                )
            )
        return messages, skipped


def customer_rows(
    engine: sa.Engine, table: sa.Table, ids: Sequence[str], variants: Sequence[str | None], chunk_size: int
) -> Iterator[ledger.ContactChunk]:
    """Customers ``ids``, not recorded yet, as chunks (one query each) in id order, each with its variant."""
    step = min(chunk_size, 1000)  # stays far below every driver's parameter limit
    with engine.connect() as conn:
        query = sa.select(table).where(among_ids(table.c[ID_COLUMN], conn.dialect.name))
        for start in range(0, len(ids), step):
            chunk = [str(i) for i in ids[start : start + step]]
            variant_of = dict(zip(chunk, variants[start : start + step], strict=True))
            rows = [dict(r) for r in conn.execute(query, {"ids": chunk}).mappings()]
            rows.sort(key=lambda r: r[ID_COLUMN])
            yield ledger.ContactChunk.unrecorded(rows, [variant_of[row[ID_COLUMN]] for row in rows])


class Renderer(Protocol):
    """What ``render_check`` renders with: a ``MessageBuilder`` or a ``TaskBuilder``."""

    def render(self, chunk: ledger.ContactChunk) -> tuple[list[dict], list[dict[str, str] | RenderError]]: ...


def render_check(builder: Renderer, rows: Iterator[ledger.ContactChunk], total: int) -> RenderCheck:
    """Render every contact of ``rows``; count failures and keep each distinct problem once."""
    check = RenderCheck()
    seen: set[str] = set()
    with progress("render", total) as advance:
        for chunk in rows:
            _contexts, rendered = builder.render(chunk)
            errors_before = check.errors
            for parts in rendered:
                if isinstance(parts, RenderError):
                    check.errors += 1
                    if str(parts.problem) not in seen:
                        seen.add(str(parts.problem))
                        check.problems.append(parts.problem)
                else:
                    check.rendered += 1
            advance(len(chunk), failed=check.errors - errors_before)
    return check
