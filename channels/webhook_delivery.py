"""Signed webhook delivery with retries, and the base class of the webhook channels.

``WebhookDelivery(endpoint, settings).post(batch_key, body)`` POSTs one JSON body to one
receiver and returns a ``PostResult`` once the receiver accepted it (2xx):

* **Signed** per Standard Webhooks (``standardwebhooks`` library): ``webhook-id`` is the
  batch key (the same on every retry and re-run, so the receiver can drop redeliveries),
  ``webhook-timestamp`` is fresh on every try, ``webhook-signature`` is ``v1,<base64
  HMAC-SHA256>`` with the endpoint's secret. ``User-Agent`` names the engine.
* **Retried** (tenacity; ``settings.max_attempts`` tries in all, exponential back-off from
  ``retry_wait`` up to ``retry_wait_max`` plus up to ``retry_wait`` of jitter) on timeouts,
  connection errors (refused, reset, dropped mid-response), HTTP 5xx, 408 and 429. A
  ``Retry-After`` (seconds or HTTP date) on 429/503 is honoured as the least wait; one
  longer than ``retry_after_max`` ends the tries at once. What stays failing raises
  ``TransientDeliveryError`` ("call_center receiver: HTTP 503 after 6 tries"): the
  contacts stay pending for the next run.
* **Rejected**: any other 3xx/4xx is permanent and not retried: ``BatchRejected`` with the
  ``status`` and a sanitized ``reason`` (at most 200 characters of the response, e-mail
  addresses and phone-like numbers blanked). A request httpx cannot make at all (URL
  scheme) raises ``PermanentDeliveryError``.

Errors and log lines name the receiver (the channel) and the status, never the URL, the
secret or anything from the payload. ``HTTPX_ERRORS`` maps every ``httpx`` request error.

``TaskListChannel`` (base of ``CallCenterChannel``, ``FieldForceChannel`` and the generic
``WebhookChannel``) turns one ``send`` into one POST of the payload its subclass builds.
"""

from __future__ import annotations

import abc
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from math import floor
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ValidationError
from standardwebhooks import Webhook
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from channels.base import (
    Channel,
    DeliveryReport,
    DeliveryResult,
    Outbound,
    PermanentDeliveryError,
    ResultCallback,
    TransientDeliveryError,
)
from orchestrator.settings import WebhookEndpoint, WebhookSettings

__all__ = [
    "HTTPX_ERRORS",
    "USER_AGENT",
    "BatchRejected",
    "PostResult",
    "TaskListChannel",
    "WebhookDelivery",
    "parse_retry_after",
    "sanitize_reason",
]

log = logging.getLogger(__name__)

try:
    _VERSION = version("campaign-orchestrator")
except PackageNotFoundError:  # pragma: no cover - running from a checkout without install
    _VERSION = "0"
USER_AGENT = f"campaign-orchestrator/{_VERSION} (webhooks)"

HTTPX_ERRORS: dict[type[httpx.RequestError], Literal["transient", "permanent"]] = {
    httpx.TimeoutException: "transient",  # connect, read, write and pool timeouts
    httpx.NetworkError: "transient",  # refused, reset, closed
    httpx.RemoteProtocolError: "transient",  # the receiver dropped the connection mid-response
    httpx.ProxyError: "transient",
    httpx.DecodingError: "transient",  # a garbled response body: the batch may not have arrived
    httpx.LocalProtocolError: "permanent",  # a request we cannot make (bad header value)
    httpx.UnsupportedProtocol: "permanent",  # the URL's scheme
    httpx.TooManyRedirects: "permanent",  # (redirects are not followed)
}
"""How each ``httpx`` error raised by a POST is handled; the most specific class wins."""

RETRY_STATUS = frozenset({408, 429})  # and every 5xx
RETRY_AFTER_STATUS = frozenset({429, 503})

_EMAIL = re.compile(r"[^\s<>@:;,\"']+@[^\s<>:;,\"']+")
_NUMBER = re.compile(r"\+?\d[\d \-/().]{5,}\d")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def sanitize_reason(text: str, limit: int = 200) -> str:
    """A receiver's response as a one-line reason: no control characters, e-mail addresses or
    phone-like numbers, at most ``limit`` characters."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    text = _NUMBER.sub("<number>", _EMAIL.sub("<address>", text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date); ``None`` if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds == float("inf"):  # NaN, inf
        return None
    return max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class PostResult:
    """A batch the receiver accepted."""

    status: int  # the 2xx status code
    attempts: int  # tries it took, 1 when the first one was accepted
    receiver_id: str | None = None  # the "id" of the receiver's JSON response, if it has one


class BatchRejected(PermanentDeliveryError):
    """The receiver refused the batch for good (a 3xx/4xx other than 408/429)."""

    def __init__(self, message: str, *, status: int, reason: str):
        super().__init__(message)
        self.status = status
        self.reason = reason


class _Retry(Exception):
    """One try failed in a way worth another try."""

    def __init__(self, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class _GiveUp(Exception):
    """A transient failure not worth another try in this run (Retry-After beyond the cap)."""


def _handling(exc: httpx.RequestError) -> Literal["transient", "permanent"]:
    for cls in type(exc).__mro__:
        if cls in HTTPX_ERRORS:
            return HTTPX_ERRORS[cls]
    return "transient"  # a class newer httpx versions may add: try again


class WebhookDelivery:
    """POSTs signed JSON bodies to one endpoint, with retries (see the module docstring).

    ``client``: an ``httpx.Client`` to use (its owner closes it); by default one is made on
    first use, reused across posts and threads, and closed by ``close()``. ``name`` labels
    the receiver in errors and logs (e.g. ``"call_center"``).
    """

    def __init__(
        self,
        endpoint: WebhookEndpoint,
        settings: WebhookSettings,
        *,
        client: httpx.Client | None = None,
        name: str = "webhook",
    ):
        self.endpoint = endpoint
        self.settings = settings
        self.name = name
        try:
            self._webhook = Webhook(endpoint.secret.get_secret_value())
        except Exception as exc:  # binascii.Error, EmptyWebhookSecretError: the secret is not printed
            raise ValueError(
                f"The secret of webhook endpoint {name!r} must be 'whsec_' followed by base64, as the "
                f"receiver's Standard Webhooks library expects; the one configured is not ({type(exc).__name__})."
            ) from None
        wait = settings.retry_wait
        self._backoff = wait_exponential(multiplier=wait, max=settings.retry_wait_max) + wait_random(0, wait)  # jitter
        self._own_client = client is None
        self._client = client
        self._lock = threading.Lock()

    # -- client ------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.settings.timeout),
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=self.settings.concurrency),
                    follow_redirects=False,
                )
            return self._client

    def close(self) -> None:
        """Close the client made by this object (not an injected one); idempotent."""
        with self._lock:
            client = self._client if self._own_client else None
            if self._own_client:
                self._client = None
        if client is not None:
            client.close()

    def __enter__(self) -> WebhookDelivery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- posting -----------------------------------------------------------------------------

    def headers(self, batch_key: str, body: bytes, *, now: datetime | None = None) -> dict[str, str]:
        """The headers of one try: content type, user agent and the Standard Webhooks signature."""
        now = now or datetime.now(UTC)
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": batch_key,
            "webhook-timestamp": str(floor(now.timestamp())),
            "webhook-signature": self._webhook.sign(batch_key, now, body.decode("utf-8")),
        }

    def post(self, batch_key: str, body: bytes) -> PostResult:
        """POST ``body`` (UTF-8 JSON) as batch ``batch_key`` until accepted, rejected or out of tries."""
        if not batch_key or not batch_key.isprintable() or batch_key != batch_key.strip() or len(batch_key) > 256:
            raise ValueError(
                f"The batch_key for webhook {self.name!r} must be 1 to 256 printable characters without "
                f"surrounding spaces; it is sent as the webhook-id header. Got {batch_key!r} instead."
            )
        body.decode("utf-8")  # UnicodeDecodeError (a ValueError) before anything is sent
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retry),
            before_sleep=self._log_retry,
            reraise=True,
        )
        tries = 0
        try:
            for attempt in retrying:
                with attempt:
                    tries = attempt.retry_state.attempt_number
                    return self._try(batch_key, body, tries)
        except _Retry as exc:
            raise TransientDeliveryError(f"{self.name} receiver: {exc.detail} after {tries} tries") from exc.__cause__
        except _GiveUp as exc:
            raise TransientDeliveryError(f"{self.name} receiver: {exc} (try {tries}); left for the next run") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _try(self, batch_key: str, body: bytes, attempt: int) -> PostResult:
        try:
            response = self._http().post(self.endpoint.url, content=body, headers=self.headers(batch_key, body))
        except httpx.RequestError as exc:
            detail = f"{type(exc).__name__}"
            if _handling(exc) == "permanent":
                raise PermanentDeliveryError(
                    f"{self.name} receiver: the request cannot be made ({detail}); check the endpoint's URL"
                ) from None
            raise _Retry(detail) from exc
        status = response.status_code
        if 200 <= status < 300:
            log.info("%s receiver accepted batch %s (HTTP %d, try %d)", self.name, batch_key, status, attempt)
            return PostResult(status, attempt, _receiver_id(response))
        if status >= 500 or status in RETRY_STATUS:
            retry_after = (
                parse_retry_after(response.headers.get("retry-after")) if status in RETRY_AFTER_STATUS else None
            )
            if retry_after is not None and retry_after > self.settings.retry_after_max:
                raise _GiveUp(
                    f"HTTP {status} asks to retry after {retry_after:.0f} s, "
                    f"more than the {self.settings.retry_after_max:g} s allowed"
                )
            raise _Retry(f"HTTP {status}", retry_after)
        reason = sanitize_reason(response.text) or response.reason_phrase or "no reason given"
        log.warning("%s receiver rejected batch %s: HTTP %d", self.name, batch_key, status)
        raise BatchRejected(
            f"{self.name} receiver rejected the batch: HTTP {status}: {reason}", status=status, reason=reason
        )

    def _wait(self, state: RetryCallState) -> float:
        backoff = min(self._backoff(state), self.settings.retry_wait_max)
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Retry) and exc.retry_after is not None:
            return max(exc.retry_after, backoff)
        return backoff

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s receiver: %s on try %d; retrying in %.2f s",
            self.name,
            getattr(exc, "detail", exc),
            state.attempt_number,
            wait,
        )


def _receiver_id(response: httpx.Response) -> str | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if isinstance(value, str | int) and value != "" else None


# -- the channels ------------------------------------------------------------------------------


class TaskListChannel(Channel):
    """Base of the webhook channels: one ``send`` is one signed POST of one list.

    Subclasses set ``name`` and implement ``payload(batch, batch_key=..., created_at=...)``,
    which builds the list model from the ``Outbound`` messages (raising ``ValueError`` when
    they do not fit). The batch is atomic: when the receiver accepts it every message is
    ``"sent"`` (``provider_id`` = the task id); when it rejects it (``BatchRejected``) every
    message is ``"permanent"`` with ``http_status`` and ``reason`` (detail ``"HTTP 400:
    <reason>"``); when retries run out,
    ``TransientDeliveryError`` is raised and no result is reported. Thread-safe: batches
    may be sent from several threads at once over the one pooled client.
    """

    name: ClassVar[str]
    needs_batch_key: ClassVar[bool] = True

    def __init__(
        self,
        endpoint: WebhookEndpoint,
        settings: WebhookSettings,
        *,
        name: str | None = None,
        client: httpx.Client | None = None,
    ):
        self.endpoint = endpoint
        self.settings = settings
        self.endpoint_name = name or type(self).name
        self.delivery = WebhookDelivery(endpoint, settings, client=client, name=self.endpoint_name)

    @abc.abstractmethod
    def payload(self, batch: Sequence[Outbound], *, batch_key: str, created_at: datetime) -> BaseModel:
        """The list to POST for ``batch`` (``ValueError`` when the messages do not fit)."""

    def send(
        self, batch: Sequence[Outbound], *, on_result: ResultCallback | None = None, batch_key: str | None = None
    ) -> DeliveryReport:
        report = DeliveryReport()
        if not batch:
            return report
        if batch_key is None:
            raise ValueError(
                f"The {type(self).name} channel needs a batch_key for every batch (sent as the webhook-id the "
                "receiver drops redeliveries by); got None."
            )
        body = self.payload(batch, batch_key=batch_key, created_at=datetime.now(UTC)).model_dump_json().encode()

        def done(result: DeliveryResult) -> None:
            report.add(result)
            if on_result is not None:
                on_result(result)

        try:
            self.delivery.post(batch_key, body)
        except BatchRejected as exc:
            detail = f"HTTP {exc.status}: {exc.reason}"
            for message in batch:
                done(
                    DeliveryResult(
                        message.contact_id, "permanent", detail=detail, reason=exc.reason, http_status=exc.status
                    )
                )
            return report
        for message in batch:
            done(DeliveryResult(message.contact_id, "sent", provider_id=message.key))
        return report

    def close(self) -> None:
        self.delivery.close()

    # -- helpers for subclasses ----------------------------------------------------------------

    @staticmethod
    def task(model: type[BaseModel], message: Outbound, values: Mapping[str, Any]) -> Any:
        """``model(**values)`` for ``message``; a ``ValueError`` naming the contact and the fields
        (never their values) when the message does not fit."""
        try:
            return model.model_validate(dict(values))
        except ValidationError as exc:
            raise ValueError(
                f"The {model.__name__} for contact {message.contact_id} is invalid: {_problems(exc)}. "
                "See the channel's docstring for the parts and fields it needs."
            ) from None

    @staticmethod
    def common(batch: Sequence[Outbound], field: str, *, what: str) -> object:
        """The value of ``fields[field]`` shared by every message; ``ValueError`` when they differ."""
        values = {str(m.fields.get(field)) for m in batch}
        if len(values) != 1:
            raise ValueError(
                f"Every message of one {what} must have the same {field!r}; got {len(values)} different ones."
            )
        return batch[0].fields.get(field)


def _problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in error["loc"]) or "value"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
