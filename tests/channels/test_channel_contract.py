"""One contract suite over every registered channel (``channels.CHANNELS``).

Each channel gets a ``ChannelCase``: how to build it for a test (with given contacts
failing permanently) together with a probe of the receiving side, and how to address one
contact on it. A channel added to the registry without a case here fails
``test_every_registered_channel_has_a_case``.

The receiving side of each channel is real: an SMTP server (``tests.smtp_server``) for
e-mail, the webhook test receiver (``tests.webhook_receiver``, uvicorn) for the webhook
channels. ``Harness.deliveries()`` counts, per contact id, the distinct deliveries the
receiving side knows (by its idempotency key: Message-ID, webhook-id), so exactly-once is
checked the same way for every channel.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from channels import CHANNELS, Channel, DeliveryResult, DeliveryStatus, Outbound, TransientDeliveryError, channel_class
from channels.memory import MemoryChannel
from channels.webhook_delivery import TaskListChannel
from orchestrator.rules.kinds import kind_names, kinds
from orchestrator.settings import WebhookEndpoint
from tests.smtp_server import SmtpServer
from tests.webhook_receiver import FAST, SECRET, TestReceiver

OUTCOMES = {"sent", "transient", "permanent"}


@dataclass(frozen=True)
class Harness:
    channel: Channel
    deliveries: Callable[[], Counter[int]]  # contact id -> distinct deliveries the receiving side counts


def email_outbound(i: int) -> Outbound:
    return Outbound(
        contact_id=i,
        recipient=f"c{i}@example.com",
        parts={"subject": f"Subject {i}", "text": f"Text {i}", "html": f"<p>Html {i}</p>"},
        key=f"<w1.c{i}.0000@campaign.local>",
        headers={"List-Unsubscribe": f"<https://bank.example/u/{i}>"},
    )


@contextmanager
def email_channel(failing: set[int]) -> Iterator[Harness]:
    with SmtpServer(reject={email_outbound(i).recipient for i in failing}) as server:

        def deliveries() -> Counter[int]:
            distinct = {(str(m["To"]), str(m["Message-ID"])) for m in server.messages}
            return Counter(int(to.removeprefix("c").partition("@")[0]) for to, _ in distinct)

        email: Any = channel_class("email")  # each adapter class has its own constructor
        with email(server.settings(), sender="news@bank.example") as channel:
            yield Harness(channel, deliveries)


@contextmanager
def memory_channel(failing: set[int]) -> Iterator[Harness]:
    memory: Any = channel_class("memory")
    with memory(fail_permanently=failing) as channel:
        yield Harness(channel, lambda: Counter(cid for cid, _ in {(m.contact_id, m.key) for m in channel.sent}))


COMMON = {"campaign": "winback", "wave": "2026-03-02", "outcome_url": "https://engine.example/outcomes"}


def call_outbound(i: int) -> Outbound:
    phone = f"+49170{i:07d}"
    fields = {"customer_id": f"C{i}", "customer_name": f"Name {i}", "phone": phone, "priority": 1,
              "due_from": dt.date(2026, 3, 2), "due_to": "2026-03-06", "outcome_ref": f"ref{i}", **COMMON}  # fmt: skip
    return Outbound(i, phone, {"script": f"Script {i}", "title": "Call"}, f"w1.c{i}", fields=fields)


def visit_outbound(i: int) -> Outbound:
    fields = {"customer_id": f"C{i}", "customer_name": f"Shop {i}", "address": f"Road {i}", "territory": "north",
              "rep_id": "rep-7", "priority": 1, "due_date": "2026-03-09", "outcome_ref": f"ref{i}",
              **COMMON}  # fmt: skip
    return Outbound(i, "rep-7", {"brief": f"Brief {i}"}, f"w1.v{i}", fields=fields)


def webhook_outbound(i: int) -> Outbound:
    fields = {"customer_id": f"C{i}", "outcome_ref": f"ref{i}", "data": {"n": i}, **COMMON}
    return Outbound(i, f"C{i}", {"text": f"Text {i}", "title": "Hello"}, f"w1.m{i}", fields=fields)


def webhook_case(name: str) -> Callable[[set[int]], AbstractContextManager[Harness]]:
    @contextmanager
    def make(failing: set[int]) -> Iterator[Harness]:
        with TestReceiver(path=f"/{name}") as receiver:
            receiver.reject_customers({f"C{i}" for i in failing})

            def deliveries() -> Counter[int]:
                return Counter({int(cid[1:]): n for cid, n in receiver.tasks_per_customer().items()})

            task_list: Any = channel_class(name)
            with task_list(receiver.endpoint, FAST) as channel:
                yield Harness(channel, deliveries)

    return make


@dataclass(frozen=True)
class ChannelCase:
    make: Callable[[set[int]], AbstractContextManager[Harness]]  # failing contact ids -> an open channel
    outbound: Callable[[int], Outbound]  # contact id -> a message for it on this channel
    atomic: bool = False  # a batch is accepted or rejected as a whole (webhooks)


CASES: dict[str, ChannelCase] = {
    "email": ChannelCase(email_channel, email_outbound),
    "memory": ChannelCase(memory_channel, email_outbound),
    "call_center": ChannelCase(webhook_case("call_center"), call_outbound, atomic=True),
    "field_force": ChannelCase(webhook_case("field_force"), visit_outbound, atomic=True),
    "webhook": ChannelCase(webhook_case("webhook"), webhook_outbound, atomic=True),
}


def test_every_registered_channel_has_a_case():
    assert set(CASES) == set(CHANNELS)


@pytest.fixture(params=sorted(CHANNELS))
def case(request) -> tuple[str, ChannelCase]:
    return request.param, CASES[request.param]


def test_is_a_channel_named_as_registered(case):
    name, spec = case
    with spec.make(set()) as harness:
        assert isinstance(harness.channel, Channel)
        assert type(harness.channel).name == name


def test_one_result_per_message_and_on_result_once_each(case):
    _, spec = case
    batch = [spec.outbound(i) for i in range(1, 21)]
    seen: list[DeliveryResult] = []
    with spec.make({4, 9}) as harness:
        report = harness.channel.send(batch, on_result=seen.append, batch_key="w1-b1")
        harness.channel.close()

    assert Counter(r.contact_id for r in report.results) == Counter(range(1, 21))
    assert Counter(seen) == Counter(report.results)  # once each, the same results
    assert {r.outcome for r in report.results} <= OUTCOMES
    by_id = {r.contact_id: r for r in report.results}
    failed = set(range(1, 21)) if spec.atomic else {4, 9}  # an atomic batch fails as a whole
    assert {i for i, r in by_id.items() if r.outcome == "permanent"} == failed
    assert by_id[4].detail
    assert report.sent == 20 - len(failed)
    assert all(r.provider_id for r in report.results if r.outcome == "sent")


def test_empty_batch_gives_an_empty_report(case):
    _, spec = case
    seen: list[DeliveryResult] = []
    with spec.make(set()) as harness:
        report = harness.channel.send([], on_result=seen.append, batch_key="w1-b1")
        assert harness.deliveries() == Counter()
    assert report.results == []
    assert seen == []


def test_without_on_result(case):
    _, spec = case
    with spec.make(set()) as harness:
        report = harness.channel.send([spec.outbound(1), spec.outbound(2)], batch_key="w1-b1")
    assert report.sent == 2


def test_close_is_idempotent_and_the_channel_works_after_it(case):
    _, spec = case
    with spec.make(set()) as harness:
        channel = harness.channel
        channel.close()  # before any send
        assert channel.send([spec.outbound(1)], batch_key="w1-b1").sent == 1
        channel.close()
        channel.close()
        assert channel.send([spec.outbound(2)], batch_key="w1-b2").sent == 1
        with channel:
            pass  # __exit__ closes
        channel.close()


def test_the_same_batch_resent_is_delivered_once(case):
    """A batch sent again with its batch_key (a re-run after a crash) counts once on the receiving side."""
    _, spec = case
    batch = [spec.outbound(i) for i in (1, 2, 3)]
    with spec.make(set()) as harness:
        first = harness.channel.send(batch, batch_key="w1-b1")
        again = harness.channel.send(batch, batch_key="w1-b1")
        other = harness.channel.send([spec.outbound(4)], batch_key="w1-b2")
        deliveries = harness.deliveries()
    assert first.sent == again.sent == 3 and other.sent == 1
    assert {r.provider_id for r in first.results} == {r.provider_id for r in again.results}
    assert deliveries == Counter({1: 1, 2: 1, 3: 1, 4: 1})


@pytest.mark.parametrize("name", ["call_center", "field_force", "webhook"])
def test_webhook_redelivery_is_recognised_by_the_receiver(name):
    spec = CASES[name]
    with TestReceiver(path=f"/{name}") as receiver, channel_class(name)(receiver.endpoint, FAST) as channel:
        batch = [spec.outbound(i) for i in (1, 2)]
        channel.send(batch, batch_key="w1-b1")
        channel.send(batch, batch_key="w1-b1")
        assert receiver.attempts["w1-b1"] == 2
        assert receiver.redeliveries == Counter({"w1-b1": 1})
        assert list(receiver.batches) == ["w1-b1"]


BATCH_KEYED = [name for name in sorted(CHANNELS) if channel_class(name).needs_batch_key]


def test_the_webhook_channels_declare_that_they_need_a_batch_key():
    assert BATCH_KEYED == ["call_center", "field_force", "webhook"]
    assert not channel_class("email").needs_batch_key and not channel_class("memory").needs_batch_key


@pytest.mark.parametrize("name", BATCH_KEYED)
def test_webhook_channels_need_a_batch_key(name):
    spec = CASES[name]
    with TestReceiver(path=f"/{name}") as receiver, channel_class(name)(receiver.endpoint, FAST) as channel:
        with pytest.raises(ValueError, match="batch_key"):
            channel.send([spec.outbound(1)])
        assert receiver.requests == []


@pytest.mark.parametrize("name", BATCH_KEYED)
def test_a_rejected_batch_reports_the_status_and_reason_as_fields(name):
    spec = CASES[name]
    with spec.make({2}) as harness:
        report = harness.channel.send([spec.outbound(1), spec.outbound(2)], batch_key="w1-b1")
    assert {(r.outcome, r.http_status) for r in report.results} == {(DeliveryStatus.PERMANENT, 400)}
    (result, _) = report.results
    assert result.reason and result.detail == f"HTTP 400: {result.reason}"


def test_a_task_list_channel_must_build_its_payload():
    class NoPayload(TaskListChannel):
        name = "no_payload"

    with pytest.raises(TypeError, match="abstract"):
        NoPayload(WebhookEndpoint(url="http://127.0.0.1:9/x", secret=SECRET), FAST)


def test_a_delivery_result_has_one_of_the_three_outcomes():
    assert DeliveryResult(1, "sent") == DeliveryResult(1, DeliveryStatus.SENT)
    with pytest.raises(ValueError, match="must be one of sent, transient, permanent"):
        DeliveryResult(1, "bounced")


def test_every_channel_kind_delivers_through_its_registered_channel():
    assert {kind.name: kind.adapter for kind in kinds()} == {name: CHANNELS[name] for name in kind_names()}
    assert all(issubclass(kind.adapter_class(), Channel) for kind in kinds())


# -- MemoryChannel specifics ----------------------------------------------------------------


def test_memory_channel_records_batches_and_sent():
    channel = MemoryChannel(fail_permanently={2}, fail_transiently={3})
    first = [email_outbound(i) for i in (1, 2, 3)]
    report = channel.send(first, batch_key="b1")
    channel.send([email_outbound(4)], batch_key="b2")
    assert channel.batches == [first, [email_outbound(4)]]
    assert channel.batch_keys == ["b1", "b2"]
    assert [o.contact_id for o in channel.sent] == [1, 4]
    assert [r.outcome for r in report.results] == ["sent", "permanent", "transient"]
    channel.close()
    assert channel.closed


def test_memory_channel_outage():
    channel = MemoryChannel(outage_after=2)
    seen: list[DeliveryResult] = []
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        channel.send([email_outbound(i) for i in range(5)], on_result=seen.append)
    assert [r.contact_id for r in seen] == [0, 1]
    assert len(channel.sent) == 2
