"""The webhook kind: messages for any other system, as message lists to a named endpoint (``channels.webhook``).

Section: ``template``, ``endpoint`` (a name in ``settings.webhooks.endpoints``),
``data_columns``. Templates: ``body.txt`` (required), ``title.txt``. Capacity: one pool per
endpoint (``capacity.yaml``: ``webhook: {crm: {per_day: N}}``); the contact's assignee is the
endpoint. Delivery: message lists.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from orchestrator.rules.kinds import ChannelKind, ColumnKey
from orchestrator.rules.sections import ChannelSpec, ColumnName, _slug
from orchestrator.templates.loader import ChannelLayout, Part

__all__ = ["KIND", "WebhookChannelSpec"]


class WebhookChannelSpec(ChannelSpec):
    """Messages for another system, POSTed as signed webhook batches to a named endpoint."""

    endpoint: str = Field(description="Endpoint name in the settings (CAMPAIGN_WEBHOOKS_ENDPOINTS__<NAME>__URL).")
    data_columns: tuple[ColumnName, ...] = Field((), description="Customer columns passed along as data.")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _slug("endpoint name", value)


KIND = ChannelKind(
    name="webhook",
    spec=WebhookChannelSpec,
    description="Messages to another system over a webhook.",
    layout=ChannelLayout(
        parts=(
            Part("title", "title.txt", "a one-line title", single_line=True),
            Part("text", "body.txt", "the message text"),
        ),
        required=(("text",),),
    ),
    adapter="channels.webhook:WebhookChannel",
    builder="orchestrator.delivery.tasks:message_task",
    outcome_types=("delivered", "reached", "interested", "not_interested", "sale", "unsubscribe", "complaint"),
    outcome_classes={
        "response": ("interested", "sale"),
        "conversion": ("sale",),
        "negative": ("not_interested", "unsubscribe", "complaint"),
    },
    pool="endpoint",
    daily_limit="per_day",
    columns=(ColumnKey("data_columns", ()),),
)
