"""Executor replicas split a venue's intent partitions: one owner each, fast takeover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import (
    BadRequestError,
    KeyNotFoundError,
    NotFoundError,
    ServiceUnavailableError,
)

from intentbus.bus import BusSettings, Topology, connect, ensure_consumer
from intentbus.executor.partitions import (
    Acquired,
    Change,
    Lost,
    OwnershipSettings,
    PartitionOwnership,
    Released,
    consumer_gone,
)
from intentbus.executor.partitions_model import (
    MEMBERS_BUCKET,
    PARTITIONS_BUCKET,
    LeaseRecord,
    consumer_name,
    lease_decoder,
)
from intentbus.testing import wait_for

VENUE = "paper"
FAST = OwnershipSettings(heartbeat_s=0.2, ttl_s=2.0, member_retention_s=60.0)


class Replica:
    """An ownership with its own connection and a runtime stand-in that drains at once.

    After each change it sees, it checks that no partition is owned twice among the
    replicas of ``world`` that are ``checked`` (a stalled one legitimately is not).
    """

    def __init__(self, nc: Client, ownership: PartitionOwnership, world: list[Replica]) -> None:
        self.nc = nc
        self.ownership = ownership
        self.world = world
        self.events: list[Change] = []
        self.overlaps: list[str] = []
        self.alive = True
        self.checked = True
        self.auto_release = True  # False: Released partitions wait for the test
        self.task: asyncio.Task[None] | None = None

    @property
    def owned(self) -> dict[int, int]:
        return self.ownership.owned()

    def acquired(self, partition: int) -> Acquired:
        return next(
            e for e in reversed(self.events) if isinstance(e, Acquired) and e.partition == partition
        )

    async def drive(self) -> None:
        async for change in self.ownership.changes():
            self.events.append(change)
            try:
                assert_disjoint(self.world)
            except AssertionError as exc:
                self.overlaps.append(str(exc))
            if isinstance(change, Released) and self.auto_release:
                await self.ownership.release(change.partition)

    async def kill(self) -> None:
        """Die without a graceful stop: no more heartbeats, leases left to expire."""
        self.alive = self.checked = False
        await self.ownership.abort()
        await self.nc.close()


Spawn = Callable[..., Coroutine[Any, Any, Replica]]


@pytest_asyncio.fixture
async def spawn(nats_url: str, js: JetStreamContext, topology: Topology) -> AsyncIterator[Spawn]:
    replicas: list[Replica] = []

    async def start(
        owner: str, settings: OwnershipSettings = FAST, *, heartbeat: bool = True
    ) -> Replica:
        nc = await connect(BusSettings.from_env(nats_url, name=owner))
        ownership = PartitionOwnership(
            nc.jetstream(), topology, venue=VENUE, owner=owner, settings=settings
        )
        replica = Replica(nc, ownership, replicas)
        await ownership.start(heartbeat=heartbeat)
        replica.task = asyncio.create_task(replica.drive())
        replicas.append(replica)
        return replica

    yield start
    assert not [o for r in replicas for o in r.overlaps]
    for replica in replicas:
        if replica.alive:
            await replica.ownership.stop()
            await replica.nc.close()
        if replica.task is not None:
            replica.task.cancel()


def assert_disjoint(replicas: list[Replica]) -> None:
    seen: dict[int, int] = {}
    for i, replica in enumerate(replicas):
        if not replica.checked:
            continue
        for partition in replica.owned:
            assert partition not in seen, f"partition {partition} owned by {seen[partition]}, {i}"
            seen[partition] = i


async def settled(replicas: list[Replica], *, timeout_s: float = 10.0) -> dict[int, int]:
    """Wait until the live replicas own all 16 partitions between them, never overlapping."""

    async def probe() -> dict[int, int]:
        assert_disjoint(replicas)
        return {p: i for i, r in enumerate(replicas) if r.checked for p in r.owned}

    return await wait_for(
        probe, until=lambda owners: len(owners) == 16, timeout_s=timeout_s, what="16 owned"
    )


async def publish(js: JetStreamContext, topology: Topology, position: str, n: int) -> list[int]:
    """Publish ``n`` intents of one position; return their stream sequences."""
    subject = topology.intents_subject(VENUE, "b1", position)
    return [(await js.publish(subject, f"{position}-{i}".encode())).seq for i in range(n)]


async def events_of(replica: Replica) -> list[Change]:
    return list(replica.events)


async def partition_of(js: JetStreamContext, topology: Topology, seq: int) -> int:
    stored = await js.get_msg(topology.intents_stream, seq=seq)
    assert stored.subject is not None
    return topology.intent_partition_of(stored.subject)


async def test_one_owner_gets_all_partitions_from_the_beginning(
    js: JetStreamContext, topology: Topology, spawn: Spawn
) -> None:
    seqs = await publish(js, topology, "pos-a", 3)  # before any consumer exists
    partition = await partition_of(js, topology, seqs[0])
    a = await spawn("owner-a")
    await settled([a])
    assert a.owned == dict.fromkeys(range(16), 1)
    got = a.acquired(partition)
    assert (
        got.spec.durable
        == consumer_name(VENUE, "all", partition, 1)
        == f"exec-paper-all-p{partition}-g1"
    )
    assert got.spec.filter_subjects == (topology.intents_partition_filter(VENUE, partition),)
    assert got.spec.deliver_policy == DeliverPolicy.BY_START_SEQUENCE
    sub = await js.pull_subscribe_bind(durable=got.spec.durable, stream=got.spec.stream)
    msgs = await sub.fetch(10, timeout=1.0)
    assert [m.metadata.sequence.stream for m in msgs] == seqs


async def test_two_owners_split_with_no_overlap_and_full_coverage(spawn: Spawn) -> None:
    a = await spawn("owner-a")
    b = await spawn("owner-b")
    owners = await wait_for(
        lambda: settled([a, b]),
        until=lambda o: sorted(o.values()).count(0) == 8,
        what="an even split",
    )
    assert set(owners) == set(range(16))
    assert len(a.owned) == len(b.owned) == 8
    assert not set(a.owned) & set(b.owned)


async def test_third_owner_joins_and_partitions_move_without_double_ownership(
    spawn: Spawn,
) -> None:
    a = await spawn("owner-a")
    b = await spawn("owner-b")
    replicas = [a, b]
    await wait_for(lambda: settled(replicas), until=lambda o: len(set(o.values())) == 2)
    c = await spawn("owner-c")
    replicas.append(c)

    def rebalanced(owners: dict[int, int]) -> bool:
        counts = [list(owners.values()).count(i) for i in range(3)]
        return min(counts) > 0 and max(counts) <= 6  # ceil(16 / 3)

    await wait_for(lambda: settled(replicas), until=rebalanced, what="three owners")
    moved = {e.partition for r in (a, b) for e in r.events if isinstance(e, Released)}
    assert set(c.owned) <= moved  # each handed over by its owner, not stolen
    assert min(c.owned.values()) >= 2  # a's or b's were generation 1
    assert not [e for r in replicas for e in r.events if isinstance(e, Lost)]


async def test_a_released_partition_moves_only_once_the_runtime_released_it(
    spawn: Spawn,
) -> None:
    a = await spawn("owner-a")
    a.auto_release = False  # the runtime is still draining
    await settled([a])
    b = await spawn("owner-b", heartbeat=False)  # rounds when the test says
    await b.ownership.tick()
    releasing = await wait_for(
        lambda: events_of(a),
        until=lambda e: sum(isinstance(x, Released) for x in e) == 8,
        what="a releases 8",
    )
    await b.ownership.tick()
    await b.ownership.tick()
    assert b.owned == {}  # a still holds them while draining
    assert len(a.owned) == 16
    for change in releasing:
        if isinstance(change, Released):
            await a.ownership.release(change.partition)
    await b.ownership.tick()
    assert b.owned == dict.fromkeys(set(range(16)) - set(a.owned), 2)
    assert len(b.owned) == 8


async def test_killed_owner_loses_its_partitions_within_the_ttl(spawn: Spawn) -> None:
    a = await spawn("owner-a")
    b = await spawn("owner-b")
    await wait_for(lambda: settled([a, b]), until=lambda o: len(set(o.values())) == 2)
    taken = set(a.owned)
    await a.kill()
    killed_at = time.monotonic()
    await settled([a, b], timeout_s=FAST.ttl_s + 3.0)
    elapsed = time.monotonic() - killed_at
    assert elapsed <= FAST.ttl_s + FAST.heartbeat_s + 1.0, elapsed
    assert {p for p, g in b.owned.items() if g == 2} == taken


async def test_graceful_stop_hands_over_without_waiting_for_the_ttl(
    js: JetStreamContext, topology: Topology, spawn: Spawn
) -> None:
    slow = OwnershipSettings(heartbeat_s=0.2, ttl_s=5.0, member_retention_s=60.0)
    a = await spawn("owner-a", slow)
    b = await spawn("owner-b", slow)
    await wait_for(lambda: settled([a, b]), until=lambda o: len(set(o.values())) == 2)
    held = set(a.owned)
    stopped_at = time.monotonic()
    await a.ownership.stop()
    a.alive = a.checked = False
    leases = await js.key_value(topology.bucket(PARTITIONS_BUCKET))
    for partition in held:  # freed (or already b's), not left to expire
        entry = await leases.get(f"{VENUE}.all.p{partition}")
        assert lease_decoder.decode(entry.value or b"").owner in ("", "owner-b")
    members = await js.key_value(topology.bucket(MEMBERS_BUCKET))
    with pytest.raises(KeyNotFoundError):
        await members.get(f"{VENUE}.all.owner-a")
    await settled([a, b], timeout_s=slow.ttl_s)
    assert time.monotonic() - stopped_at < 1.5  # the TTL is 5 s


async def test_takeover_resumes_at_the_ack_floor_and_deletes_the_old_consumer(
    js: JetStreamContext, topology: Topology, spawn: Spawn
) -> None:
    a = await spawn("owner-a", heartbeat=False)  # rounds only when the test says: stalls
    a.checked = False
    await a.ownership.tick()
    seqs = await publish(js, topology, "pos-x", 8)
    partition = await partition_of(js, topology, seqs[0])
    old = a.acquired(partition).spec
    sub = await a.nc.jetstream().pull_subscribe_bind(durable=old.durable, stream=old.stream)
    msgs = await sub.fetch(6, timeout=1.0)
    assert [m.metadata.sequence.stream for m in msgs] == seqs[:6]
    for m in (msgs[0], msgs[1], msgs[3]):  # the floor is msgs[1]; msgs[3] is above it
        await m.ack_sync()

    b = await spawn("owner-b")  # takes everything once a's leases expire
    await settled([b])
    new = b.acquired(partition).spec
    assert new.durable == consumer_name(VENUE, "all", partition, 2)
    with pytest.raises(NotFoundError):
        await js.consumer_info(old.stream, old.durable)
    info = await js.consumer_info(new.stream, new.durable)
    assert info.config.opt_start_seq == seqs[2]
    assert not await ensure_consumer(js, new)  # what MessageConsumer.run does: no change
    fresh = await js.pull_subscribe_bind(durable=new.durable, stream=new.stream)
    redelivered = await fresh.fetch(20, timeout=1.0)
    # every unacked one, in order, and msgs[3] again: acked above the floor
    assert [m.metadata.sequence.stream for m in redelivered] == seqs[2:]


async def test_takeover_after_a_taker_died_before_creating_its_consumer(
    js: JetStreamContext, topology: Topology, spawn: Spawn
) -> None:
    a = await spawn("owner-a", heartbeat=False)
    a.checked = False
    await a.ownership.tick()
    seqs = await publish(js, topology, "pos-z", 4)
    partition = await partition_of(js, topology, seqs[0])
    first = a.acquired(partition).spec
    sub = await js.pull_subscribe_bind(durable=first.durable, stream=first.stream)
    msgs = await sub.fetch(4, timeout=1.0)
    await msgs[0].ack_sync()
    # a "ghost" took generation 2 and died before creating its consumer
    leases = await js.key_value(topology.bucket(PARTITIONS_BUCKET))
    ghost = LeaseRecord(owner="ghost", generation=2, expires_at=0.0, consumer_generation=1)
    await leases.put(f"{VENUE}.all.p{partition}", msgspec.json.encode(ghost))

    await a.ownership.tick()  # a lost generation 1, then takes generation 3 back
    assert a.owned[partition] == 3
    await wait_for(lambda: events_of(a), until=lambda e: a.acquired(partition).generation == 3)
    assert Lost(partition, 1) in a.events
    third = a.acquired(partition).spec
    info = await js.consumer_info(third.stream, third.durable)
    assert info.config.opt_start_seq == seqs[1]  # generation 1's ack floor + 1
    with pytest.raises(NotFoundError):
        await js.consumer_info(first.stream, first.durable)


async def test_stalled_owner_is_fenced_and_told_it_lost_its_partitions(
    js: JetStreamContext, topology: Topology, spawn: Spawn
) -> None:
    a = await spawn("owner-a", heartbeat=False)
    a.checked = False
    await a.ownership.tick()
    seqs = await publish(js, topology, "pos-y", 2)
    partition = await partition_of(js, topology, seqs[0])
    old = a.acquired(partition).spec
    sub = await a.nc.jetstream().pull_subscribe_bind(durable=old.durable, stream=old.stream)
    b = await spawn("owner-b")
    await settled([b])

    with pytest.raises(ServiceUnavailableError) as failed:  # gone before a learns it
        await sub.fetch(1, timeout=1.0)
    assert consumer_gone(failed.value)
    with pytest.raises(BadRequestError) as refused:  # nor can it bring it back
        await ensure_consumer(a.nc.jetstream(), old)
    assert consumer_gone(refused.value)
    assert a.ownership.owns(partition, 1)
    await a.ownership.tick()  # a wakes up
    await wait_for(lambda: events_of(a), until=lambda e: len(e) == 32)
    lost = {e.partition for e in a.events if isinstance(e, Lost)}
    assert lost == set(range(16))
    assert not a.ownership.owns(partition, 1)
