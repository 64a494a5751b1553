"""The bus against a real nats-server: provisioning, dedup, the consumer loop."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError

from intentbus.bus import (
    Ack,
    ConsumerSpec,
    Disposition,
    MessageConsumer,
    Nak,
    Publisher,
    Term,
    Topology,
    core_streams,
    ensure_consumer,
    ensure_stream,
    provision,
)
from intentbus.bus import consumer as consumer_module
from intentbus.bus.pulls import pull
from intentbus.bus.streams import StreamSpec
from intentbus.schemas import DeadLetter, ExecutionIntent, build_intent, decode, encode
from intentbus.testing import wait_for

T = TypeVar("T")


def _intent(topology: Topology, n: int = 0, **extra: object) -> ExecutionIntent:
    return build_intent(
        action="add",
        size_frac=0.1,
        position_id=str(extra.pop("position_id", f"p{n}")),
        token_contract="BTC",
        token_chain="paper",
        book_id="main",
        **extra,  # type: ignore[arg-type]
    )


def _spec(topology: Topology, durable: str = "worker") -> ConsumerSpec:
    return ConsumerSpec(
        stream=topology.intents_stream,
        durable=durable,
        filter_subjects=(topology.intents_filter("paper"),),
        ack_wait_s=5,
        max_deliver=3,
    )


async def test_provisioning_twice_changes_nothing(js: JetStreamContext, topology: Topology) -> None:
    assert await provision(js, topology) == []
    spec = _spec(topology)
    assert await ensure_consumer(js, spec) is True
    assert await ensure_consumer(js, spec) is False
    info = await js.stream_info(topology.intents_stream)
    assert info.config.subjects == [topology.intents_published_filter()]
    assert info.config.subject_transform is not None
    assert (info.config.subject_transform.src, info.config.subject_transform.dest) == (
        topology.intents_partition_transform()
    )


async def test_intents_are_stored_by_partition_of_their_position(
    js: JetStreamContext, topology: Topology
) -> None:
    publisher = Publisher(js, topology)
    partitions = set()
    for n in range(40):
        ack = await publisher.intent(_intent(topology, n, position_id=f"pos-{n % 8}"))
        stored = await js.get_msg(topology.intents_stream, ack.seq)
        prefix = topology.intents_subject("paper", "main", "x").rsplit(".", 1)[0]
        assert stored.subject is not None
        head, partition, position = stored.subject.rsplit(".", 2)
        assert (head, position) == (prefix, f"pos-{n % 8}")
        partitions.add((position, int(partition)))
    assert len(partitions) == 8  # one partition per position, always the same
    assert {p for _, p in partitions} <= set(range(16))


async def test_an_intent_on_the_old_subject_is_refused_by_the_stream(
    js: JetStreamContext, topology: Topology
) -> None:
    old_subject = topology.intents_subject("paper", "main", "p").rsplit(".", 1)[0]
    with pytest.raises(NoStreamResponseError):
        await js.publish(old_subject, encode(_intent(topology)))


async def test_changed_stream_config_is_applied(js: JetStreamContext, topology: Topology) -> None:
    original = core_streams(topology)[0]
    changed = StreamSpec(name=original.name, subjects=original.subjects, max_age_s=3 * 86400.0)
    assert await ensure_stream(js, changed) is True
    info = await js.stream_info(original.name)
    assert info.config.max_age == 3 * 86400.0
    assert await ensure_stream(js, changed) is False


async def test_same_intent_id_is_stored_once(js: JetStreamContext, topology: Topology) -> None:
    publisher = Publisher(js, topology)
    intent = _intent(topology)
    first = await publisher.intent(intent)
    second = await publisher.intent(intent)
    assert second.duplicate is True
    assert second.seq == first.seq
    info = await js.stream_info(topology.intents_stream)
    assert info.state.messages == 1


async def test_bad_messages_are_dead_lettered_and_the_loop_goes_on(
    js: JetStreamContext, topology: Topology
) -> None:
    subject = topology.intents_subject("paper", "main", "pos-1")
    good = _intent(topology, 1)
    out_of_range = json.loads(encode(_intent(topology, 2)))
    out_of_range["size_frac"] = 1.5
    await js.publish(subject, b"{not json", headers={"Nats-Msg-Id": "garbage"})
    await js.publish(subject, json.dumps(out_of_range).encode(), headers={"Nats-Msg-Id": "oor"})
    await Publisher(js, topology).intent(good)

    handled: list[str] = []

    async def handle(intent: ExecutionIntent, msg: Msg) -> Disposition:
        handled.append(intent.intent_id)
        return Ack()

    consumer = MessageConsumer(js, topology, _spec(topology), ExecutionIntent, handle)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))

    async def letters() -> list[DeadLetter]:
        info = await js.stream_info(topology.dead_letter_stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages:
                raw = await js.get_msg(topology.dead_letter_stream, seq)
                found.append(decode(raw.data or b"", DeadLetter))
        return found

    dead = await wait_for(letters, until=lambda d: len(d) == 2, what="two dead letters")
    await wait_for(lambda: _value(handled), until=lambda h: h == [good.intent_id], what="good")
    stop.set()
    await task
    errors = sorted(letter.error for letter in dead)
    assert "size_frac" in errors[0] or "size_frac" in errors[1]
    assert any("JSON" in e or "json" in e.lower() for e in errors)
    assert {letter.payload for letter in dead} >= {"{not json"}
    assert all(letter.stream == topology.intents_stream for letter in dead)
    assert consumer.dead_lettered == 2


async def test_nak_redelivers_and_term_dead_letters(
    js: JetStreamContext, topology: Topology
) -> None:
    publisher = Publisher(js, topology)
    retried, refused = _intent(topology, 1), _intent(topology, 2)
    await publisher.intent(retried)
    await publisher.intent(refused)
    deliveries: dict[str, int] = {}

    async def handle(intent: ExecutionIntent, msg: Msg) -> Disposition:
        deliveries[intent.intent_id] = deliveries.get(intent.intent_id, 0) + 1
        if intent.intent_id == refused.intent_id:
            return Term("refused by the test")
        if deliveries[intent.intent_id] == 1:
            return Nak(delay_s=0.05)
        return Ack()

    consumer = MessageConsumer(js, topology, _spec(topology), ExecutionIntent, handle)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await wait_for(
        lambda: _value(dict(deliveries)),
        until=lambda d: d.get(retried.intent_id) == 2 and d.get(refused.intent_id) == 1,
        what="one redelivery",
    )
    await wait_for(
        lambda: _value(consumer.dead_lettered), until=lambda n: n == 1, what="dead letter"
    )
    stop.set()
    await task
    info = await js.consumer_info(topology.intents_stream, "worker")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_handler_crash_is_retried_then_dead_lettered(
    js: JetStreamContext, topology: Topology
) -> None:
    await Publisher(js, topology).intent(_intent(topology))
    calls = 0

    async def explode(intent: ExecutionIntent, msg: Msg) -> Disposition:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    consumer = MessageConsumer(js, topology, _spec(topology), ExecutionIntent, explode)
    consumer_spec = consumer.spec
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await wait_for(
        lambda: _value(consumer.dead_lettered),
        until=lambda n: n == 1,
        timeout_s=20,
        what="dead letter after max_deliver",
    )
    stop.set()
    await task
    assert calls == consumer_spec.max_deliver


def _keyed(
    js: JetStreamContext,
    topology: Topology,
    handle: Callable[[ExecutionIntent, Msg], Awaitable[Disposition]],
    batch: int,
) -> MessageConsumer[ExecutionIntent]:
    """Return a consumer of the test's intents, one lane per position."""
    return MessageConsumer(
        js,
        topology,
        _spec(topology),
        ExecutionIntent,
        handle,
        key_of=lambda intent: intent.position_id,
        batch=batch,
    )


async def _value(value: T) -> T:
    return value


async def test_keyed_consumer_keeps_key_order_across_batches_without_a_batch_barrier(
    js: JetStreamContext, topology: Topology
) -> None:
    publisher = Publisher(js, topology)
    published: dict[str, list[str]] = {"p0": [], "p1": [], "p2": []}
    for i in range(60):
        intent = _intent(topology, i % 3)
        published[intent.position_id].append(intent.intent_id)
        await publisher.intent(intent)
    handled: dict[str, list[str]] = {key: [] for key in published}
    release_p0 = asyncio.Event()
    in_hand = max_in_hand = 0

    async def handle(intent: ExecutionIntent, msg: Msg) -> Disposition:
        nonlocal in_hand, max_in_hand
        in_hand += 1
        max_in_hand = max(max_in_hand, in_hand)
        if intent.position_id == "p0" and not handled["p0"]:
            await release_p0.wait()  # p0 stalls; other keys must still get fetched
        handled[intent.position_id].append(intent.intent_id)
        if len(handled["p1"]) >= 5:  # more p1 than the first batch of 8 holds
            release_p0.set()
        in_hand -= 1
        return Ack()

    consumer = _keyed(js, topology, handle, batch=8)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await wait_for(
        lambda: _value(sum(len(ids) for ids in handled.values())),
        until=lambda n: n == 60,
        what="every message handled",
    )
    stop.set()
    await task
    assert handled == published
    assert max_in_hand <= 8
    info = await js.consumer_info(topology.intents_stream, "worker")
    assert (info.num_ack_pending, info.num_pending) == (0, 0)


async def test_keyed_consumer_under_a_backlog_pulls_a_quarter_batch_at_a_time(
    js: JetStreamContext, nc: Client, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = Publisher(js, topology)
    for _ in range(100):  # one key: its lane never runs out of work until the end
        await publisher.intent(_intent(topology, 0))
    pulls: list[tuple[int, int]] = []  # (asked for, got)

    async def counting_pull(
        sub: JetStreamContext.PullSubscription, batch: int, timeout_s: float
    ) -> list[Msg]:
        msgs = await pull(sub, batch, timeout_s)
        pulls.append((batch, len(msgs)))
        return msgs

    monkeypatch.setattr(consumer_module, "pull", counting_pull)

    async def handle(intent: ExecutionIntent, msg: Msg) -> Disposition:
        await nc.flush()  # a round trip, as a real handler waits for one
        return Ack()

    consumer = _keyed(js, topology, handle, batch=20)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await wait_for(lambda: _value(consumer.handled), until=lambda n: n == 100, what="100 handled")
    stop.set()
    await task
    # After a pull answered in full (more waiting), one pull per settled message would
    # ask for 1 (up to 100 pulls); a quarter of the batch: 5 or more.
    after_full = [now for before, now in itertools.pairwise(pulls) if before[1] == before[0]]
    assert after_full, pulls
    assert min(asked for asked, _ in after_full) >= 5, pulls
    assert consumer.pulls == len(pulls)
    assert sum(1 for _, got in pulls if got) <= 100 // 5 + 2, pulls
    info = await js.consumer_info(topology.intents_stream, "worker")
    assert (info.num_ack_pending, info.num_pending) == (0, 0)


@pytest.mark.parametrize(
    ("p1_first", "p1_count"),
    [
        (True, 10),  # a backlog: p1's lane runs out of work and a pull follows at once
        (False, 3),  # p1's intents come while p0 stalls on an empty stream: no backlog
    ],
    ids=["key-out-of-work", "no-backlog"],
)
async def test_keyed_consumer_keeps_pulling_for_other_keys_while_one_key_stalls(
    js: JetStreamContext, topology: Topology, p1_first: bool, p1_count: int
) -> None:
    publisher = Publisher(js, topology)
    for _ in range(7):
        await publisher.intent(_intent(topology, 0))
    for _ in range(p1_count if p1_first else 0):
        await publisher.intent(_intent(topology, 1))
    p0_stalled, release_p0 = asyncio.Event(), asyncio.Event()
    handled = {"p0": 0, "p1": 0}

    async def handle(intent: ExecutionIntent, msg: Msg) -> Disposition:
        if intent.position_id == "p0":
            p0_stalled.set()
            await release_p0.wait()  # p0 holds 7 of the 8 in hand until p1 is done
        handled[intent.position_id] += 1
        if handled["p1"] == p1_count:
            release_p0.set()
        return Ack()

    # a pull under a backlog waits for 2 free, or for a key with nothing left in hand
    consumer = _keyed(js, topology, handle, batch=8)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(p0_stalled.wait(), timeout=10.0)
    for _ in range(0 if p1_first else p1_count):
        await publisher.intent(_intent(topology, 1))
    await wait_for(
        lambda: _value(dict(handled)),
        until=lambda h: h == {"p0": 7, "p1": p1_count},
        what="p1 fetched and handled while p0 waits, then p0",
    )
    stop.set()
    await task


async def test_before_batch_sees_a_whole_batch_before_its_first_message_is_handled(
    js: JetStreamContext, topology: Topology
) -> None:
    publisher = Publisher(js, topology)
    for n in range(3):
        await publisher.intent(_intent(topology, n))
    events: list[str] = []

    async def before(msgs: list[Msg]) -> None:
        events.append(f"batch:{len(msgs)}")

    async def handle(intent: ExecutionIntent, msg: Msg) -> Disposition:
        events.append("one")
        return Ack()

    consumer = MessageConsumer(
        js, topology, _spec(topology), ExecutionIntent, handle, before_batch=before
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await wait_for(lambda: _value(consumer.handled), until=lambda n: n == 3, what="3 handled")
    stop.set()
    await task
    assert events == ["batch:3", "one", "one", "one"]
