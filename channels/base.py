"""The channel contract: one method, ``send(batch) -> DeliveryReport``.

A channel adapter receives a batch of rendered ``Outbound`` messages and returns one
``DeliveryResult`` per message, in any order, never a bare bool. Errors of the libraries
underneath (smtplib, httpx, ...) are mapped where they enter the adapter:

* a failure of one message is a result with ``outcome`` ``"transient"`` (worth retrying
  later; the ledger keeps the contact pending) or ``"permanent"`` (never retried), with a
  structured ``reason`` (what the receiving side said, sanitized) and, for HTTP receivers,
  the ``http_status``; ``detail`` is the same as one line of text for the ledger and logs;
* a failure of the channel as a whole that retries could not cure (server unreachable,
  authentication refused) is raised as ``TransientDeliveryError`` or
  ``PermanentDeliveryError``; results already reported through ``on_result`` stand.

Adapters call ``on_result`` as soon as each message's fate is known, so that the caller can
journal deliveries one by one (a crash between two ledger updates then never sends twice).
An adapter that learns several results at the same moment (e-mail: the replies of several
connections read at once) may report them together through ``report_all``: a callback that
has a ``report_all(results)`` method (``orchestrator.ledger.journal.SendJournal``) then
journals them with one write, before the adapter sends anything more.

Adapters that send whole batches under an idempotency key set ``needs_batch_key = True``;
their ``send`` raises ``ValueError`` when called without a ``batch_key``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal, Self

Outcome = Literal["sent", "transient", "permanent"]


class DeliveryStatus(StrEnum):
    """The outcome of one message (``DeliveryResult.outcome``); equal to the plain strings."""

    SENT = "sent"
    TRANSIENT = "transient"  # worth retrying later; the contact stays pending
    PERMANENT = "permanent"  # never retried


class DeliveryError(Exception):
    """A channel could not deliver; the message says why (never personal data)."""


class TransientDeliveryError(DeliveryError):
    """Temporary failure (unreachable, timeout, 4xx); the contacts stay pending for a later run."""


class PermanentDeliveryError(DeliveryError):
    """Failure that retrying cannot cure (bad credentials, rejected sender, 5xx)."""


@dataclass(frozen=True, slots=True)
class Outbound:
    """One rendered message for one contact of the ledger."""

    contact_id: int
    recipient: str  # the channel address: an e-mail address, a phone number, a rep id
    parts: Mapping[str, str]  # rendered content, e.g. {"subject": ..., "html": ..., "text": ...}
    key: str  # idempotency key, stable per (wave, customer); e-mail uses it as Message-ID
    headers: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, object] = field(default_factory=dict)  # structured task data (call/visit tasks)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The fate of one message: ``outcome`` (a ``DeliveryStatus`` value) and, for a failure, why."""

    contact_id: int
    outcome: Outcome
    detail: str | None = None  # the failure as one line, e.g. "550 5.1.1 mailbox unavailable", "HTTP 400: ..."
    provider_id: str | None = None  # id the channel system knows the delivery by
    hard_bounce: bool = False  # the address does not exist (e.g. SMTP 550 5.1.1): suppress it
    reason: str | None = None  # what the receiving side said, sanitized (without the status), if anything
    http_status: int | None = None  # the HTTP status of a webhook receiver's answer, if there was one

    def __post_init__(self) -> None:
        if self.outcome not in _OUTCOMES:
            raise ValueError(
                f"The outcome of a DeliveryResult must be one of {', '.join(_OUTCOMES)}. Got {self.outcome!r} instead."
            )


_OUTCOMES = tuple(status.value for status in DeliveryStatus)


@dataclass(slots=True)
class DeliveryReport:
    """Results of one batch, one per message."""

    results: list[DeliveryResult] = field(default_factory=list)

    def add(self, result: DeliveryResult) -> None:
        self.results.append(result)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def sent(self) -> int:
        return self.count("sent")


ResultCallback = Callable[[DeliveryResult], None]


def report_all(on_result: ResultCallback, results: Sequence[DeliveryResult]) -> None:
    """Report ``results`` learnt at the same moment: ``on_result.report_all(results)`` when the callback
    has that method (one journal write for all), else ``on_result(result)`` for each, in order."""
    together = getattr(on_result, "report_all", None)
    if together is not None:
        together(results)
    else:
        for result in results:
            on_result(result)


class Channel(abc.ABC):
    """Base class of channel adapters. Subclasses set ``name`` and implement ``send``."""

    name: ClassVar[str]
    needs_batch_key: ClassVar[bool] = False  # True: every send needs a batch_key (ValueError without one)

    @abc.abstractmethod
    def send(
        self,
        batch: Sequence[Outbound],
        *,
        on_result: ResultCallback | None = None,
        batch_key: str | None = None,
    ) -> DeliveryReport:
        """Deliver ``batch``; one result per message, reported through ``on_result`` as it is known.

        ``batch_key`` is the stable idempotency key of the batch: when the same batch is sent
        again (after a crash or a transient failure) it carries the same key, so the receiving
        system can recognise the redelivery. Webhook channels send it as ``webhook-id`` and
        require it (``needs_batch_key``); channels that deliver message by message (e-mail)
        may ignore it.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once after the last batch."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
