"""Field-force visit lists over a signed webhook (``field_force.visit_list`` version 1).

One ``send`` POSTs one ``VisitList`` (``channels.payloads``) for ONE rep, with every
message of the batch as a ``VisitTask``; delivery, signing, retries and outcomes are those
of ``channels.webhook_delivery`` (``TaskListChannel``, ``WebhookDelivery``).

Payload (``Outbound``), as the core builds it:

* ``recipient``: the rep id; every message of a batch must be for the same rep
  (``ValueError`` otherwise: the core splits batches by rep);
* ``key``: the task id (``VisitTask.task_id``, also the result's ``provider_id``);
* ``parts["brief"]``: the visit brief (required); ``parts["title"]``: the visit title (optional);
* ``fields``: ``customer_id``, ``customer_name``, ``address`` (optional), ``territory``,
  ``rep_id`` (must equal ``recipient`` when given), ``priority`` (int), ``due_date``
  (``date`` or ISO string), ``campaign``, ``wave``, ``outcome_ref``, ``outcome_url``
  (optional). Other keys are ignored. The list's ``territory`` is the first visit's.

Limits: one POST per batch; the batch is atomic (all sent, all permanent, or
``TransientDeliveryError``). ``send`` needs a ``batch_key`` (the ``webhook-id``). Thread-safe.

Settings: the endpoint (``WebhookSettings.endpoints["field_force"]``: ``url``, ``secret``)
and ``WebhookSettings`` (``timeout``, ``max_attempts``, ``retry_wait``, ``retry_wait_max``,
``retry_after_max``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from channels.base import Outbound
from channels.payloads import VisitList, VisitTask
from channels.webhook_delivery import TaskListChannel

__all__ = ["FieldForceChannel"]

_FIELDS = (
    "customer_id", "customer_name", "address", "territory", "priority", "due_date", "campaign", "wave",
    "outcome_ref", "outcome_url",
)  # fmt: skip


class FieldForceChannel(TaskListChannel):
    """Sends each batch as one visit list (for one rep) to ``endpoint``."""

    name = "field_force"

    def payload(self, batch: Sequence[Outbound], *, batch_key: str, created_at: datetime) -> VisitList:
        reps = {m.recipient for m in batch}
        if len(reps) != 1:
            raise ValueError(
                f"Every visit of one field-force batch must be for the same rep (the recipient); got {len(reps)} reps. "
                "Split the batch by rep."
            )
        rep_id = batch[0].recipient
        visits = []
        for message in batch:
            if str(message.fields.get("rep_id", rep_id)) != rep_id:
                raise ValueError(
                    f"The visit for contact {message.contact_id} has a fields['rep_id'] different from its recipient; "
                    "both must name the rep."
                )
            values = {k: message.fields[k] for k in _FIELDS if k in message.fields}
            values.update(task_id=message.key, brief=message.parts.get("brief"), title=message.parts.get("title"))
            visits.append(self.task(VisitTask, message, values))
        return VisitList(
            batch_id=batch_key, rep_id=rep_id, territory=visits[0].territory, created_at=created_at, visits=visits
        )
