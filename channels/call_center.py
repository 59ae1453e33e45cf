"""Call-center task lists over a signed webhook (``call_center.task_list`` version 1).

One ``send`` POSTs one ``CallTaskList`` (``channels.payloads``) with every message of the
batch as a ``CallTask``; delivery, signing, retries and outcomes are those of
``channels.webhook_delivery`` (``TaskListChannel``, ``WebhookDelivery``).

Payload (``Outbound``), as the core builds it:

* ``recipient``: the phone number (used when ``fields["phone"]`` is missing);
* ``key``: the task id (``CallTask.task_id``, also the result's ``provider_id``);
* ``parts["script"]``: the call script (required); ``parts["title"]``: the task title (optional);
* ``fields``: ``customer_id``, ``customer_name`` (optional), ``phone``, ``priority`` (int),
  ``due_from`` and ``due_to`` (``date`` or ISO ``YYYY-MM-DD`` string), ``campaign``, ``wave``,
  ``outcome_ref``, ``outcome_url`` (optional). Other keys are ignored. Every message of a
  batch has the same ``campaign`` and ``wave``.

Limits: one POST per batch (``WebhookSettings.batch_size`` tasks at most is the core's
business); the batch is atomic (all sent, all permanent, or ``TransientDeliveryError``).
``send`` needs a ``batch_key`` (the ``webhook-id``). Thread-safe.

Settings: the endpoint (``WebhookSettings.endpoints["call_center"]``: ``url``, ``secret``)
and ``WebhookSettings`` (``timeout``, ``max_attempts``, ``retry_wait``, ``retry_wait_max``,
``retry_after_max``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from channels.base import Outbound
from channels.payloads import CallTask, CallTaskList
from channels.webhook_delivery import TaskListChannel

__all__ = ["CallCenterChannel"]

_FIELDS = (
    "customer_id",
    "customer_name",
    "phone",
    "priority",
    "due_from",
    "due_to",
    "campaign",
    "wave",
    "outcome_ref",
    "outcome_url",
)


class CallCenterChannel(TaskListChannel):
    """Sends each batch as one call-center task list to ``endpoint``."""

    name = "call_center"

    def payload(self, batch: Sequence[Outbound], *, batch_key: str, created_at: datetime) -> CallTaskList:
        tasks = []
        for message in batch:
            values = {k: message.fields[k] for k in _FIELDS if k in message.fields}
            values.setdefault("phone", message.recipient)
            values.update(task_id=message.key, script=message.parts.get("script"), title=message.parts.get("title"))
            tasks.append(self.task(CallTask, message, values))
        campaign = self.common(batch, "campaign", what="call-center task list")
        wave = self.common(batch, "wave", what="call-center task list")
        return CallTaskList(batch_id=batch_key, campaign=campaign, wave=wave, created_at=created_at, tasks=tasks)
