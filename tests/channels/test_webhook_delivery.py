"""WebhookDelivery and the webhook channels against a real receiver (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email.utils import format_datetime

import httpx
import pytest
from standardwebhooks import Webhook

from channels import Outbound, PermanentDeliveryError, TransientDeliveryError, channel_class
from channels.call_center import CallCenterChannel
from channels.field_force import FieldForceChannel
from channels.payloads import MessageList
from channels.webhook import WebhookChannel
from channels.webhook_delivery import (
    HTTPX_ERRORS,
    USER_AGENT,
    BatchRejected,
    WebhookDelivery,
    parse_retry_after,
    sanitize_reason,
)
from orchestrator.settings import WebhookEndpoint
from tests.webhook_receiver import FAST, SECRET, TestReceiver

BODY = (
    MessageList(batch_id="batch-1", endpoint="test", created_at=dt.datetime.now(dt.UTC), messages=[])
    .model_dump_json()
    .encode()
)  # a valid list for batch key "batch-1"


def call(i: int, **fields: object) -> Outbound:
    return Outbound(
        contact_id=i,
        recipient=f"+4917000000{i:02d}",
        parts={"script": f"Hello customer {i}", "title": "Win-back call"},
        key=f"w1.c{i}",
        fields={
            "customer_id": f"C{i}",
            "customer_name": f"Name {i}",
            "phone": f"+4917000000{i:02d}",
            "priority": i % 3,
            "due_from": dt.date(2026, 3, 2),
            "due_to": "2026-03-06",
            "campaign": "winback",
            "wave": "2026-03-02",
            "outcome_ref": f"ref{i}",
            "outcome_url": "https://engine.example/outcomes",
            **fields,
        },
    )


@pytest.fixture
def receiver():
    with TestReceiver() as r:
        yield r


@pytest.fixture
def delivery(receiver):
    d = WebhookDelivery(receiver.endpoint, FAST, name="call_center")
    yield d
    d.close()


# -- signing ----------------------------------------------------------------------------------


def test_signed_per_standard_webhooks_and_accepted(receiver, delivery):
    result = delivery.post("batch-1", BODY)
    assert (result.status, result.attempts) == (200, 1)
    assert result.receiver_id  # the receipt of the reference receiver
    [headers] = receiver.requests
    assert headers["webhook-id"] == "batch-1"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT and "campaign-orchestrator" in USER_AGENT
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)  # the library verifies it


def test_wrong_secret_is_refused_with_401_and_not_retried(receiver):
    endpoint = WebhookEndpoint(url=receiver.url, secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
    with WebhookDelivery(endpoint, FAST, name="call_center") as delivery:
        with pytest.raises(BatchRejected) as caught:
            delivery.post("batch-1", BODY)
    assert caught.value.status == 401
    assert receiver.attempts["batch-1"] == 1
    assert receiver.batches == {}


def test_invalid_secret_is_a_value_error_that_does_not_show_it():
    endpoint = WebhookEndpoint(url="http://127.0.0.1:9/x", secret="whsec_not*base64!")
    with pytest.raises(ValueError, match="whsec_") as caught:
        WebhookDelivery(endpoint, FAST)
    assert "not*base64" not in str(caught.value)


@pytest.mark.parametrize("key", ["", " padded ", "line\nbreak"])
def test_bad_batch_key_is_a_value_error(delivery, key):
    with pytest.raises(ValueError, match="batch_key"):
        delivery.post(key, BODY)


# -- retries -------------------------------------------------------------------------------------


def test_500_then_success_with_the_same_webhook_id_and_fresh_signatures(receiver, delivery):
    receiver.fail(2, status=500)
    result = delivery.post("batch-1", BODY)
    assert (result.status, result.attempts) == (200, 3)
    assert receiver.attempts == Counter({"batch-1": 3})
    assert {h["webhook-id"] for h in receiver.requests} == {"batch-1"}
    for headers in receiver.requests:
        Webhook(SECRET).verify(BODY, headers)  # each try is signed on its own
    assert list(receiver.batches) == ["batch-1"]


def test_429_honours_retry_after_seconds(receiver, delivery):
    receiver.throttle(retry_after="1", status=429)
    started = time.monotonic()
    assert delivery.post("batch-1", BODY).attempts == 2
    waited = receiver.arrivals[1] - receiver.arrivals[0]
    assert 1.0 <= waited < 1.0 + 1.5
    assert time.monotonic() - started >= 1.0


def test_503_honours_retry_after_as_http_date(receiver, delivery):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    receiver.throttle(retry_after=format_datetime(when, usegmt=True), status=503)
    assert delivery.post("batch-1", BODY).attempts == 2
    waited = receiver.arrivals[1] - receiver.arrivals[0]
    assert 0.5 <= waited < 3.5  # whole seconds in the header: between 1 and 2 s from now


def test_retry_after_beyond_the_cap_gives_up_for_this_run(receiver):
    settings = FAST.model_copy(update={"retry_after_max": 2.0})
    receiver.throttle(retry_after="600", status=429)
    with WebhookDelivery(receiver.endpoint, settings, name="call_center") as delivery:
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match=r"call_center receiver: HTTP 429 .*600 s.*next run"):
            delivery.post("batch-1", BODY)
    assert time.monotonic() - started < 1.0
    assert receiver.attempts["batch-1"] == 1


def test_timeout_then_success(receiver):
    settings = FAST.model_copy(update={"timeout": 0.5})
    receiver.slow(1.5)
    with WebhookDelivery(receiver.endpoint, settings, name="call_center") as delivery:
        result = delivery.post("batch-1", BODY)
    assert result.attempts == 2
    time.sleep(1.5)  # the slow request is processed after the client gave up on it
    assert list(receiver.batches) == ["batch-1"]  # stored once
    assert receiver.redeliveries["batch-1"] == 1  # the late one is a redelivery


def test_dropped_connection_then_success_is_stored_once(receiver, delivery):
    receiver.drop()
    result = delivery.post("batch-1", BODY)
    assert result.attempts == 2
    assert receiver.attempts["batch-1"] == 2
    assert list(receiver.batches) == ["batch-1"]
    assert receiver.redeliveries["batch-1"] == 1  # processed before the drop: the retry is a redelivery


def test_exhausted_retries_raise_transient(receiver, delivery):
    receiver.fail(10, status=503)
    with pytest.raises(TransientDeliveryError, match=r"^call_center receiver: HTTP 503 after 4 tries$"):
        delivery.post("batch-1", BODY)
    assert receiver.attempts["batch-1"] == FAST.max_attempts


def test_unreachable_receiver_raises_transient():
    endpoint = WebhookEndpoint(url="http://127.0.0.1:9/hooks", secret=SECRET)  # discard port: refused
    with WebhookDelivery(endpoint, FAST, name="field_force") as delivery:
        with pytest.raises(TransientDeliveryError, match=r"field_force receiver: ConnectError after 4 tries"):
            delivery.post("batch-1", BODY)


def test_400_is_permanent_with_a_sanitized_reason_and_not_retried(receiver, delivery):
    receiver.reject(400, body='{"error": "phone +49 170 1234567 of jane@bank.example refused"}\n' + "x" * 500)
    with pytest.raises(BatchRejected) as caught:
        delivery.post("batch-1", BODY)
    assert isinstance(caught.value, PermanentDeliveryError)
    assert caught.value.status == 400
    reason = caught.value.reason
    assert reason.startswith('{"error": "phone <number> of <address> refused"}')
    assert len(reason) <= 200 and "\n" not in reason
    assert "1234567" not in str(caught.value) and "jane" not in str(caught.value)
    assert receiver.attempts["batch-1"] == 1


def test_unsupported_url_scheme_is_permanent():
    endpoint = WebhookEndpoint(url="http://127.0.0.1:9/x", secret=SECRET)
    client = httpx.Client(
        transport=httpx.MockTransport(lambda _request: (_ for _ in ()).throw(httpx.UnsupportedProtocol("x")))
    )
    with WebhookDelivery(endpoint, FAST, client=client) as delivery:
        with pytest.raises(PermanentDeliveryError, match="cannot be made"):
            delivery.post("batch-1", BODY)
    client.close()


def test_every_httpx_request_error_is_mapped():
    errors = {cls for _, cls in inspect.getmembers(httpx, inspect.isclass) if issubclass(cls, httpx.RequestError)} - {
        httpx.RequestError,
        httpx.TransportError,
        httpx.ProtocolError,
    }  # base classes httpx does not raise
    unmapped = {cls for cls in errors if not set(cls.__mro__) & set(HTTPX_ERRORS)}
    assert not unmapped


def test_parse_retry_after():
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Mon, 02 Mar 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 02 Mar 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_sanitize_reason():
    assert sanitize_reason("a\x00b\n\tc") == "a b c"
    assert sanitize_reason("call +44 20 7946 0958 now") == "call <number> now"
    assert len(sanitize_reason("y" * 1000)) == 200


# -- the channels -------------------------------------------------------------------------------


def test_call_center_payload_from_outbounds(receiver):
    with CallCenterChannel(receiver.endpoint, FAST) as channel:
        report = channel.send([call(1), call(2)], batch_key="w1-cc-0")
    assert report.sent == 2
    assert {r.provider_id for r in report.results} == {"w1.c1", "w1.c2"}
    payload = receiver.batches["w1-cc-0"]
    assert payload.type == "call_center.task_list" and payload.batch_id == "w1-cc-0"
    assert (payload.campaign, payload.wave) == ("winback", "2026-03-02")
    task = payload.tasks[0]
    assert task.task_id == "w1.c1" and task.script == "Hello customer 1" and task.title == "Win-back call"
    assert task.due_from == dt.date(2026, 3, 2) and task.due_to == dt.date(2026, 3, 6)


def test_call_center_rejection_marks_every_message_permanent(receiver):
    receiver.reject(422, body='{"detail": "unknown campaign"}')
    seen = []
    with CallCenterChannel(receiver.endpoint, FAST) as channel:
        report = channel.send([call(1), call(2)], on_result=seen.append, batch_key="k")
    assert [r.outcome for r in report.results] == ["permanent", "permanent"]
    assert report.results[0].detail == 'HTTP 422: {"detail": "unknown campaign"}'
    assert seen == report.results


def test_exhausted_retries_report_no_results(receiver):
    receiver.fail(10)
    seen = []
    with CallCenterChannel(receiver.endpoint, FAST) as channel, pytest.raises(TransientDeliveryError):
        channel.send([call(1)], on_result=seen.append, batch_key="k")
    assert seen == []


def test_batch_key_is_required(receiver):
    with CallCenterChannel(receiver.endpoint, FAST) as channel, pytest.raises(ValueError, match="batch_key"):
        channel.send([call(1)])


def test_invalid_message_names_contact_and_field_not_value(receiver):
    with CallCenterChannel(receiver.endpoint, FAST) as channel:
        with pytest.raises(ValueError, match=r"contact 7 .*priority") as caught:
            channel.send([call(7, priority="very high")], batch_key="k")
        with pytest.raises(ValueError, match="same 'wave'"):
            channel.send([call(1), call(2, wave="other")], batch_key="k")
    assert "very high" not in str(caught.value)
    assert receiver.requests == []


def visit(i: int, rep: str = "rep-7") -> Outbound:
    return Outbound(
        contact_id=i,
        recipient=rep,
        parts={"brief": f"Visit {i}"},
        key=f"w1.v{i}",
        fields={
            "customer_id": i,
            "customer_name": f"Shop {i}",
            "territory": "north",
            "rep_id": rep,
            "priority": 1,
            "due_date": "2026-03-09",
            "campaign": "winback",
            "wave": "2026-03-02",
            "outcome_ref": f"ref{i}",
        },
    )


def test_field_force_one_rep_per_list(receiver):
    with FieldForceChannel(receiver.endpoint, FAST) as channel:
        assert channel.send([visit(1), visit(2)], batch_key="w1-ff-rep-7").sent == 2
        with pytest.raises(ValueError, match="same rep"):
            channel.send([visit(3), visit(4, rep="rep-8")], batch_key="k2")
    payload = receiver.batches["w1-ff-rep-7"]
    assert payload.rep_id == "rep-7" and payload.territory == "north"
    assert [v.customer_id for v in payload.visits] == ["1", "2"]
    assert payload.visits[0].title is None and payload.visits[0].address is None


def test_generic_webhook_names_its_endpoint(receiver):
    message = Outbound(
        1, "C1", {"text": "Hi"}, "w1.m1", fields={"customer_id": "C1", "campaign": "c", "wave": "w",
                                                 "outcome_ref": "r", "data": {"offer": 5}}
    )  # fmt: skip
    with channel_class("webhook")(receiver.endpoint, FAST, name="crm") as channel:
        assert type(channel).name == "webhook" and channel.endpoint_name == "crm"
        assert channel.send([message], batch_key="k").sent == 1
    payload = receiver.batches["k"]
    assert payload.endpoint == "crm" and payload.messages[0].data == {"offer": 5}
    assert json.loads(receiver.store.lists()[0].body)["messages"][0]["recipient"] == "C1"


def test_one_client_shared_by_threads(receiver):
    with WebhookChannel(receiver.endpoint, FAST) as channel:
        msgs = [
            Outbound(i, f"C{i}", {"text": "x"}, f"m{i}", fields={"customer_id": f"C{i}", "campaign": "c", "wave": "w",
                                                               "outcome_ref": "r"})
            for i in range(40)
        ]  # fmt: skip
        with ThreadPoolExecutor(8) as pool:
            reports = list(pool.map(lambda i: channel.send(msgs[i : i + 4], batch_key=f"b{i}"), range(0, 40, 4)))
        client = channel.delivery._client
    assert sum(r.sent for r in reports) == 40
    assert client is not None and client.is_closed
    assert receiver.tasks_per_customer() == Counter({f"C{i}": 1 for i in range(40)})
