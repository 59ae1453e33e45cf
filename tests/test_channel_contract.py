"""One contract suite over every registered channel (``channels.CHANNELS``).

Each channel gets a ``ChannelCase``: how to build it for a test (with given contacts
failing permanently) and how to address one contact on it. A channel added to the registry
without a case here fails ``test_every_registered_channel_has_a_case``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import pytest

from channels import CHANNELS, Channel, DeliveryResult, Outbound, TransientDeliveryError, channel_class
from channels.memory import MemoryChannel
from tests.smtp_server import SmtpServer

OUTCOMES = {"sent", "transient", "permanent"}


def email_outbound(i: int) -> Outbound:
    return Outbound(
        contact_id=i,
        recipient=f"c{i}@example.com",
        parts={"subject": f"Subject {i}", "text": f"Text {i}", "html": f"<p>Html {i}</p>"},
        key=f"<w1.c{i}.0000@campaign.local>",
        headers={"List-Unsubscribe": f"<https://bank.example/u/{i}>"},
    )


@contextmanager
def email_channel(failing: set[int]) -> Iterator[Channel]:
    with SmtpServer(reject={email_outbound(i).recipient for i in failing}) as server:
        with channel_class("email")(server.settings(), sender="news@bank.example") as channel:
            yield channel


@contextmanager
def memory_channel(failing: set[int]) -> Iterator[Channel]:
    with channel_class("memory")(fail_permanently=failing) as channel:
        yield channel


@dataclass(frozen=True)
class ChannelCase:
    make: Callable[[set[int]], AbstractContextManager[Channel]]  # failing contact ids -> an open channel
    outbound: Callable[[int], Outbound]  # contact id -> a message for it on this channel


CASES: dict[str, ChannelCase] = {
    "email": ChannelCase(email_channel, email_outbound),
    "memory": ChannelCase(memory_channel, email_outbound),
}


def test_every_registered_channel_has_a_case():
    assert set(CASES) == set(CHANNELS)


@pytest.fixture(params=sorted(CHANNELS))
def case(request) -> tuple[str, ChannelCase]:
    return request.param, CASES[request.param]


def test_is_a_channel_named_as_registered(case):
    name, spec = case
    with spec.make(set()) as channel:
        assert isinstance(channel, Channel)
        assert type(channel).name == name


def test_one_result_per_message_and_on_result_once_each(case):
    _, spec = case
    batch = [spec.outbound(i) for i in range(1, 21)]
    seen: list[DeliveryResult] = []
    with spec.make({4, 9}) as channel:
        report = channel.send(batch, on_result=seen.append)
        channel.close()

    assert Counter(r.contact_id for r in report.results) == Counter(range(1, 21))
    assert Counter(seen) == Counter(report.results)  # once each, the same results
    assert {r.outcome for r in report.results} <= OUTCOMES
    by_id = {r.contact_id: r for r in report.results}
    assert {i for i, r in by_id.items() if r.outcome == "permanent"} == {4, 9}
    assert by_id[4].detail
    assert report.sent == 18
    assert all(r.provider_id for r in report.results if r.outcome == "sent")


def test_empty_batch_gives_an_empty_report(case):
    _, spec = case
    seen: list[DeliveryResult] = []
    with spec.make(set()) as channel:
        report = channel.send([], on_result=seen.append)
    assert report.results == []
    assert seen == []


def test_without_on_result(case):
    _, spec = case
    with spec.make(set()) as channel:
        report = channel.send([spec.outbound(1), spec.outbound(2)])
    assert report.sent == 2


def test_close_is_idempotent_and_the_channel_works_after_it(case):
    _, spec = case
    with spec.make(set()) as channel:
        channel.close()  # before any send
        assert channel.send([spec.outbound(1)]).sent == 1
        channel.close()
        channel.close()
        assert channel.send([spec.outbound(2)]).sent == 1
        with channel:
            pass  # __exit__ closes
        channel.close()


# -- MemoryChannel specifics ----------------------------------------------------------------


def test_memory_channel_records_batches_and_sent():
    channel = MemoryChannel(fail_permanently={2}, fail_transiently={3})
    first = [email_outbound(i) for i in (1, 2, 3)]
    report = channel.send(first)
    channel.send([email_outbound(4)])
    assert channel.batches == [first, [email_outbound(4)]]
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
