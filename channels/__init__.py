"""Channels: the adapters that deliver rendered messages, registered by name.

Every channel implements one method, ``Channel.send(batch, *, on_result=None,
batch_key=None) -> DeliveryReport`` (see ``channels.base`` for the contract). ``CHANNELS`` maps each channel
name to the ``"module:Class"`` that implements it; modules are imported only when
``channel_class(name)`` asks for them, so an unused channel's dependencies never load.

* ``email``: ``channels.email:EmailChannel``, e-mail over SMTP (``SmtpSettings``);
* ``memory``: ``channels.memory:MemoryChannel``, records batches in memory (tests, dry runs);
* ``call_center``: ``channels.call_center:CallCenterChannel``, call task lists over a signed
  webhook (``WebhookEndpoint``, ``WebhookSettings``);
* ``field_force``: ``channels.field_force:FieldForceChannel``, visit lists for one rep per
  batch over a signed webhook;
* ``webhook``: ``channels.webhook:WebhookChannel``, message lists for any other system over a
  signed webhook (one channel per named endpoint).

E-mail is built by ``channels.mime`` (the MIME skeleton), streamed by ``channels.smtp_stream``
(PIPELINING), its SMTP errors read by ``channels.smtp_errors`` and optionally signed by
``channels.dkim``. The webhook channels share ``channels.webhook_delivery`` (signing, retries, error mapping)
and the payload models of ``channels.payloads``; ``orchestrator.demo.webhook_receiver`` is a
reference receiver for channel-system developers and the demo.
"""

from __future__ import annotations

import importlib

from channels.base import (
    Channel,
    DeliveryError,
    DeliveryReport,
    DeliveryResult,
    DeliveryStatus,
    Outbound,
    Outcome,
    PermanentDeliveryError,
    ResultCallback,
    TransientDeliveryError,
)
from orchestrator.errors import did_you_mean

__all__ = [
    "CHANNELS",
    "Channel",
    "DeliveryError",
    "DeliveryReport",
    "DeliveryResult",
    "DeliveryStatus",
    "Outbound",
    "Outcome",
    "PermanentDeliveryError",
    "ResultCallback",
    "TransientDeliveryError",
    "UnknownChannel",
    "channel_class",
]

CHANNELS: dict[str, str] = {
    "email": "channels.email:EmailChannel",
    "memory": "channels.memory:MemoryChannel",
    "call_center": "channels.call_center:CallCenterChannel",
    "field_force": "channels.field_force:FieldForceChannel",
    "webhook": "channels.webhook:WebhookChannel",
}
"""Channel name -> ``"module:Class"``; the one table of channels (imported lazily)."""


class UnknownChannel(LookupError, ValueError):
    """A channel name that is not in ``CHANNELS``."""


def channel_class(name: str) -> type[Channel]:
    """The channel class registered as ``name``, imported on first use.

    Raises ``UnknownChannel`` ("No such channel: 'emial'. Did you mean 'email'?") for a
    name that is not in ``CHANNELS``.
    """
    try:
        target = CHANNELS[name]
    except (KeyError, TypeError):
        hint = did_you_mean(str(name), CHANNELS)  # ", did you mean 'email'?"
        if hint:
            hint = f". D{hint[3:]}"
        else:
            hint = ". Known channels: " + ", ".join(repr(known) for known in sorted(CHANNELS))
        raise UnknownChannel(f"No such channel: {name!r}{hint}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
