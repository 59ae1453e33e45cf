"""The e-mail kind: messages over SMTP, one by one through the send journal.

Section (``channels: {email: ...}``): ``template``, ``sender``, ``reply_to``,
``address_column`` (plus ``eligible``, ``cost``, ``value``). Templates: ``subject.txt``
(required) and ``body.html`` / ``body.txt`` (at least one). One capacity pool ``email``
(``capacity.yaml``: ``email: {per_day: N}``). Delivery: the per-message journal; A/B variants
render with their own templates. Links in the messages (clicks, opens, unsubscribe) come back
through the response API. Signing: DKIM with the key of ``DkimSettings`` whose domain covers the
sender's (``channels.dkim.signer_for``); unsigned when there is none, unless ``CAMPAIGN_DKIM_REQUIRED``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from channels.base import Channel
from orchestrator.rules.kinds import ChannelKind, ColumnKey
from orchestrator.rules.sections import COLUMN, ChannelSpec, _address, _fail
from orchestrator.templates.loader import ChannelLayout, Part

if TYPE_CHECKING:
    from orchestrator.settings import Settings

__all__ = ["KIND", "EmailChannelSpec"]


class EmailChannelSpec(ChannelSpec):
    """Sending by e-mail."""

    template: str = Field(description="Template folder under templates/email/.")
    sender: str = Field(description="From address, 'offers@acme.example' or 'Acme Bank <offers@acme.example>'.")
    reply_to: str | None = Field(None, description="Reply-To address, if replies go elsewhere.")
    address_column: str = Field("email", description="Customer column holding the e-mail address.")

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _address("sender", value)

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        return None if value is None else _address("reply_to", value)

    @field_validator("address_column")
    @classmethod
    def _address_column(cls, value: str) -> str:
        if not COLUMN.match(value):
            raise _fail(f"'{value}' is not a column name")
        return value


def smtp_adapter(kind: ChannelKind, settings: Settings, section: EmailChannelSpec) -> Channel:
    """The e-mail adapter for the SMTP settings, sending as the section's sender, DKIM-signed when a key covers it."""
    from channels.dkim import signer_for

    adapter: Any = kind.adapter_class()  # EmailChannel(smtp, sender=, reply_to=, signer=)
    signer = signer_for(settings.dkim, section.sender)
    return adapter(settings.smtp, sender=section.sender, reply_to=section.reply_to, signer=signer)


KIND = ChannelKind(
    name="email",
    spec=EmailChannelSpec,
    description="E-mail channel.",
    layout=ChannelLayout(
        parts=(
            Part("subject", "subject.txt", "the subject line", single_line=True),
            Part("html", "body.html", "the HTML body"),
            Part("text", "body.txt", "the plain-text body"),
        ),
        required=(("subject",), ("html", "text")),
        recommended=("html", "text"),
    ),
    adapter="channels.email:EmailChannel",
    connect=smtp_adapter,  # type: ignore[arg-type]
    outcome_types=("delivered", "soft_bounce", "hard_bounce", "complaint", "unsubscribe", "open", "click"),
    outcome_classes={"response": ("click",), "conversion": (), "negative": ("unsubscribe", "complaint", "hard_bounce")},
    suppressing={"unsubscribe": "unsubscribed", "complaint": "complaint", "hard_bounce": "hard_bounce"},
    links=True,
    pool="channel",
    daily_limit="per_day",
    delivery="journal",
    columns=(ColumnKey("address_column", "email", "text", "e-mail addresses"),),
)
