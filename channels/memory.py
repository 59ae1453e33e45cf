"""An in-memory channel: records every batch and delivers nothing (tests and dry runs).

Payload: any ``Outbound``; nothing is checked. Limits: none. Settings: none; failures are
configured per contact id: ``fail_permanently`` and ``fail_transiently`` give those
contacts a ``"permanent"`` / ``"transient"`` result, and ``outage_after=n`` raises
``TransientDeliveryError`` once ``n`` messages have been sent (a server going away mid-run).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from channels.base import Channel, DeliveryReport, DeliveryResult, Outbound, ResultCallback, TransientDeliveryError


class MemoryChannel(Channel):
    """Records batches in ``batches`` and delivered messages in ``sent``."""

    name = "memory"

    def __init__(
        self,
        *,
        fail_permanently: Iterable[int] = (),
        fail_transiently: Iterable[int] = (),
        outage_after: int | None = None,
    ):
        self.fail_permanently = frozenset(fail_permanently)
        self.fail_transiently = frozenset(fail_transiently)
        self.outage_after = outage_after
        self.batches: list[list[Outbound]] = []  # every batch passed to send(), as passed
        self.batch_keys: list[str | None] = []  # the batch_key of each batch, in the same order
        self.sent: list[Outbound] = []  # the messages that got a "sent" result, in order
        self.closed = False

    def send(
        self, batch: Sequence[Outbound], *, on_result: ResultCallback | None = None, batch_key: str | None = None
    ) -> DeliveryReport:
        self.closed = False
        self.batches.append(list(batch))
        self.batch_keys.append(batch_key)
        report = DeliveryReport()
        for message in batch:
            if self.outage_after is not None and len(self.sent) >= self.outage_after:
                raise TransientDeliveryError(
                    f"memory channel unreachable after {self.outage_after} messages (simulated)"
                )
            if message.contact_id in self.fail_permanently:
                result = DeliveryResult(message.contact_id, "permanent", detail="550 rejected (simulated)")
            elif message.contact_id in self.fail_transiently:
                result = DeliveryResult(message.contact_id, "transient", detail="451 deferred (simulated)")
            else:
                self.sent.append(message)
                result = DeliveryResult(message.contact_id, "sent", provider_id=message.key)
            report.add(result)
            if on_result is not None:
                on_result(result)
        return report

    def close(self) -> None:
        self.closed = True
