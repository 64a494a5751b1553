"""The intents in hand are kept alive at the server by one timer, not a task each."""

from __future__ import annotations

import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from intentbus.bus import Topology, provision
from intentbus.executor.keepalive import KeepAlive

ACK_WAIT_S = 1.0


async def test_a_held_message_is_not_redelivered_and_a_released_one_is(
    js: JetStreamContext, topology: Topology
) -> None:
    await provision(js, topology)
    subject = topology.intents_subject("paper", "b1", "p1")
    await js.publish(subject, b"{}")
    stream = topology.intents_stream
    config = ConsumerConfig(durable_name="keepalive", ack_wait=ACK_WAIT_S, max_deliver=5)
    await js.add_consumer(stream, config=config)
    sub = await js.pull_subscribe_bind("keepalive", stream)
    (msg,) = await sub.fetch(1, timeout=5)
    keep_alive = KeepAlive(ACK_WAIT_S / 3)
    # Three ack waits while it is held: the server must not send it again.
    with keep_alive.holding(msg), pytest.raises(TimeoutError):
        await sub.fetch(1, timeout=3 * ACK_WAIT_S)
    # Released and never acked: the server sends it again after its ack wait.
    (again,) = await sub.fetch(1, timeout=5 * ACK_WAIT_S)
    assert again.metadata.num_delivered == 2
    assert again.metadata.sequence.stream == msg.metadata.sequence.stream
    await again.ack()
    await sub.unsubscribe()
