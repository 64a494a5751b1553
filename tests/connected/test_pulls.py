"""Pulling from a consumer: what is pending at once, else the next message as it arrives."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from intentbus.bus import Topology, provision
from intentbus.bus.pulls import pull
from intentbus.testing import wait_for

LONG_WAIT_S = 30.0  # a pull's own timeout; the test's bound is a third of it


async def _consumer(js: JetStreamContext, topology: Topology) -> JetStreamContext.PullSubscription:
    await provision(js, topology)
    stream = topology.intents_stream
    await js.add_consumer(stream, config=ConsumerConfig(durable_name="puller"))
    return await js.pull_subscribe_bind("puller", stream)


async def test_pending_messages_come_at_once_up_to_the_batch(
    js: JetStreamContext, topology: Topology
) -> None:
    sub = await _consumer(js, topology)
    subject = topology.intents_subject("paper", "b1", "p1")
    for n in range(5):
        await js.publish(subject, str(n).encode())
    first = await pull(sub, 3, LONG_WAIT_S)
    rest = await pull(sub, 10, LONG_WAIT_S)
    assert [m.data for m in first] == [b"0", b"1", b"2"]
    assert [m.data for m in rest] == [b"3", b"4"]  # fewer than asked: no wait for more
    inbox = sub._sub  # taken as next_msg takes them: nothing left counted as pending
    assert (inbox.pending_msgs, inbox.pending_bytes) == (0, 0)
    await sub.unsubscribe()


async def test_a_message_arriving_while_waiting_is_handed_over_alone(
    js: JetStreamContext, topology: Topology
) -> None:
    # nats-py's fetch(10) would hold this message until nine more came or its timeout.
    sub = await _consumer(js, topology)
    subject = topology.intents_subject("paper", "b1", "p1")
    waiting = asyncio.create_task(pull(sub, 10, LONG_WAIT_S))

    async def waiting_pulls() -> int:
        info = await js.consumer_info(topology.intents_stream, "puller")
        return info.num_waiting or 0

    await wait_for(waiting_pulls, until=lambda n: n >= 1, what="the lingering pull")
    await js.publish(subject, b"only")
    got = await asyncio.wait_for(waiting, LONG_WAIT_S / 3)
    assert [m.data for m in got] == [b"only"]
    await got[0].ack()
    await sub.unsubscribe()


async def test_nothing_arriving_gives_an_empty_pull(
    js: JetStreamContext, topology: Topology
) -> None:
    sub = await _consumer(js, topology)
    assert await pull(sub, 10, 0.3) == []
    await sub.unsubscribe()
