"""Preview: the messages a few sampled customers would receive, per channel and A/B variant.

``preview_messages`` picks ``n`` treated customers per allocated channel and variant
(deterministically: the first by customer id among the treated) and renders their e-mails,
call scripts, visit briefs or webhook messages exactly as a wave would; ``write_html`` writes them
to one HTML page a person can open, each e-mail's HTML shown in a sandboxed ``iframe``. Nothing is recorded or sent.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.delivery.messages import customer_rows
from orchestrator.rules.kinds import channel_kind
from orchestrator.rules.kinds.email import KIND as EMAIL_KIND
from orchestrator.settings import private_dir, private_file
from orchestrator.templates.loader import RenderError


@dataclass(frozen=True)
class PreviewMessage:
    customer_id: str
    variant: str | None
    parts: dict[str, str] | None
    error: str | None = None
    channel: str = EMAIL_KIND.name

    @property
    def headline(self) -> str:
        """The subject (e-mail) or title (tasks) of the message."""
        parts = self.parts or {}
        return parts.get("subject") or parts.get("title") or ""

    @property
    def body(self) -> str:
        parts = self.parts or {}
        return parts.get("text") or parts.get("script") or parts.get("brief") or parts.get("html", "")


def preview_messages(settings, prepared, plan, n: int) -> list[PreviewMessage]:
    """Render the messages of up to ``n`` treated customers per channel and variant.

    ``plan`` is a ``planning.CampaignPlan`` (channel per customer) or a bare ``Selection``
    (every customer on the campaign's first channel)."""
    from orchestrator.customers.table import ID_COLUMN, customer_table
    from orchestrator.db.engine import connect
    from orchestrator.delivery.prepared import builder_for

    contacts = plan.contacts
    engine = connect(settings)
    table = customer_table(engine, settings.database.customer_table)
    out: list[PreviewMessage] = []
    for channel in prepared.spec.channels.names():
        treated = np.flatnonzero(contacts.treated & (contacts.channel == channel))
        chosen: list[int] = []
        for variant in dict.fromkeys(contacts.variant[treated].tolist()):
            chosen.extend([i for i in treated.tolist() if contacts.variant[i] == variant][:n])
        ids = contacts.customer_id[chosen].tolist()
        variants = contacts.variant[chosen].tolist()
        builder = builder_for(settings, prepared, channel, None)
        for chunk in customer_rows(engine, table, ids, variants, len(ids) or 1):
            _contexts, rendered = builder.render(chunk)
            for row, variant, parts in zip(chunk.customers, chunk.variants, rendered, strict=True):
                if isinstance(parts, RenderError):
                    out.append(PreviewMessage(row[ID_COLUMN], variant, None, str(parts.problem), channel))
                else:
                    out.append(PreviewMessage(row[ID_COLUMN], variant, parts, channel=channel))
    order = {name: i for i, name in enumerate(prepared.spec.channels.names())}
    out.sort(key=lambda m: (order[m.channel], m.variant or "", m.customer_id))
    return out


def write_html(path: Path, campaign: str, messages: list[PreviewMessage]) -> Path:
    """One page with every previewed message; the e-mail HTML is isolated in sandboxed iframes."""
    blocks = []
    for m in messages:
        title = f"{m.channel}: customer {html.escape(m.customer_id)}" + (
            f", variant {html.escape(m.variant)}" if m.variant else ""
        )
        if m.parts is None:
            body = f'<p class="error">{html.escape(m.error or "")}</p>'
        elif channel_kind(m.channel).delivery == "journal":  # an e-mail: subject, HTML and text parts
            body = f"<p><b>Subject:</b> {html.escape(m.parts.get('subject', ''))}</p>"
            if "html" in m.parts:
                body += f'<iframe sandbox srcdoc="{html.escape(m.parts["html"], quote=True)}"></iframe>'
            if "text" in m.parts:
                body += f"<details><summary>text part</summary><pre>{html.escape(m.parts['text'])}</pre></details>"
        else:
            body = f"<p><b>{html.escape(m.headline)}</b></p><pre>{html.escape(m.body)}</pre>"
        blocks.append(f"<section><h2>{title}</h2>{body}</section>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {html.escape(campaign)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;background:#f4f4f6}}
section{{background:#fff;padding:1rem 1.5rem;margin:0 0 1.5rem;border-radius:8px;box-shadow:0 1px 3px #0002}}
iframe{{width:100%;height:640px;border:1px solid #ddd}} pre{{white-space:pre-wrap}} .error{{color:#b00}}</style>
</head><body><h1>Preview of campaign {html.escape(campaign)}</h1>{"".join(blocks)}</body></html>
"""
    private_dir(path.parent)
    with private_file(path) as handle:  # 0600: a preview shows customers' data
        handle.write(page.encode("utf-8"))
    return path
