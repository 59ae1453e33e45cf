"""Messages for any other system over a signed webhook (``webhook.message_list`` version 1).

A rules file's ``webhook:`` channel names an endpoint (``WebhookSettings.endpoints[name]``);
one ``WebhookChannel`` per endpoint, built with ``name=`` that endpoint name (it becomes the
list's ``endpoint``). One ``send`` POSTs one ``MessageList`` (``channels.payloads``);
delivery, signing, retries and outcomes are those of ``channels.webhook_delivery``
(``TaskListChannel``, ``WebhookDelivery``).

Payload (``Outbound``), as the core builds it:

* ``recipient``: the customer's address on the receiving system (customer id or address);
* ``key``: the task id (``Message.task_id``, also the result's ``provider_id``);
* ``parts["text"]``: the message text (required); ``parts["title"]``: a title (optional);
* ``fields``: ``customer_id``, ``campaign``, ``wave``, ``outcome_ref``, ``outcome_url``
  (optional), ``data`` (a dict of further JSON values, optional). Other keys are ignored.

Limits: one POST per batch; the batch is atomic (all sent, all permanent, or
``TransientDeliveryError``). ``send`` needs a ``batch_key`` (the ``webhook-id``). Thread-safe.

Settings: the endpoint (``url``, ``secret``) and ``WebhookSettings`` (``timeout``,
``max_attempts``, ``retry_wait``, ``retry_wait_max``, ``retry_after_max``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from channels.base import Outbound
from channels.payloads import Message, MessageList
from channels.webhook_delivery import TaskListChannel

__all__ = ["WebhookChannel"]

_FIELDS = ("customer_id", "campaign", "wave", "outcome_ref", "outcome_url", "data")


class WebhookChannel(TaskListChannel):
    """Sends each batch as one message list to ``endpoint`` (named ``name``, default ``"webhook"``)."""

    name = "webhook"

    def payload(self, batch: Sequence[Outbound], *, batch_key: str, created_at: datetime) -> MessageList:
        messages = []
        for message in batch:
            values = {k: message.fields[k] for k in _FIELDS if k in message.fields}
            values.update(
                task_id=message.key,
                recipient=message.recipient,
                text=message.parts.get("text"),
                title=message.parts.get("title"),
            )
            if values.get("data") is None:
                values.pop("data", None)
            messages.append(self.task(Message, message, values))
        return MessageList(batch_id=batch_key, endpoint=self.endpoint_name, created_at=created_at, messages=messages)
