"""Reading a KV bucket's keys: every key every time, also when nats-py's watch says "done" early.

A watch's "initial values done" marker can come before the values under load (see
:mod:`intentbus.bus.kvread`); reads several at a time make that likely: a reader that
stops at the marker found nothing in about one read of twenty here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from intentbus.bus import Topology
from intentbus.bus.control import HaltStore, open_bucket
from intentbus.bus.kvread import present_keys, snapshot
from intentbus.executor.orders import WorkingOrder, WorkingOrderStore
from intentbus.executor.partitions_io import scan
from intentbus.schemas import ExecutionIntent, HaltMode, HaltSwitch
from tests.connected.paper.paper_support import plan

GOLDEN = Path(__file__).resolve().parents[2] / "schemas" / "golden"

READS, AT_ONCE = 600, 4
BOOKS = 40  # halt switches: the more, the longer a watch's first values take to come
KEYS = {f"paper.all.p{n}": f'"lease {n}"'.encode() for n in range(16)}


async def _bucket(js: JetStreamContext, topology: Topology) -> KeyValue:
    kv = await open_bucket(js, topology.bucket("KVREAD"))
    for key, value in KEYS.items():
        await kv.put(key, value)
    await kv.put("paper.all.gone", b"deleted below")
    await kv.delete("paper.all.gone")
    await kv.put("paper.book1.p0", b"another prefix")
    return kv


async def _halted(js: JetStreamContext, topology: Topology, books: int) -> HaltStore:
    """Return the namespace's halt store with ``books`` books of paper halted."""
    halt = await HaltStore.open(js, topology)
    for n in range(books):
        switch = HaltSwitch(
            venue="paper", book=f"b{n}", mode=HaltMode.HALTED, reason="test",
            set_by="test", set_at=datetime.now(UTC),
        )  # fmt: skip
        await halt.set(switch)
    return halt


_GOLDEN_INTENT = msgspec.json.decode(
    (GOLDEN / "ExecutionIntent.json").read_bytes(), type=ExecutionIntent
)


def _order(intent_id: str, partition: int) -> WorkingOrder:
    """Return a working order of the golden intent under ``intent_id``."""
    return WorkingOrder(
        intent=msgspec.structs.replace(_GOLDEN_INTENT, intent_id=intent_id),
        plan=plan(),
        partition=partition,
        placed_at=datetime.now(UTC),
        owner="replica-a",
    )


async def test_a_snapshot_holds_every_live_key_every_time(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _bucket(js, topology)
    wrong: list[set[str]] = []
    for _ in range(READS // AT_ONCE):
        reads = await asyncio.gather(*(snapshot(kv, "paper.all.>") for _ in range(AT_ONCE)))
        wrong += [set(read) for read in reads if set(read) != set(KEYS)]
        assert all(
            read[key].value == value for read in reads for key, value in KEYS.items() if key in read
        )
    assert wrong == []


async def test_present_keys_names_deleted_keys_too_and_nothing_outside_the_filter(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _bucket(js, topology)
    assert await present_keys(kv, "paper.all.>") == {*KEYS, "paper.all.gone"}
    assert await snapshot(kv, "nothing.here.>") == {}


async def test_partition_scans_and_halt_loads_see_every_record_every_time(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _bucket(js, topology)
    halt = await _halted(js, topology, 3)

    async def scanned() -> int:
        return len(await scan(kv, "paper.all", msgspec.json.Decoder(str)))

    async def loaded() -> int:
        return len(await HaltStore(halt._kv).load())

    counts = []
    for _ in range(READS // (2 * AT_ONCE)):
        counts += await asyncio.gather(*(scanned() for _ in range(AT_ONCE)))
        counts += await asyncio.gather(*(loaded() for _ in range(AT_ONCE)))
    assert sorted(set(counts)) == [3, 16]


async def test_a_halt_watch_has_every_switch_once_it_says_loaded(
    js: JetStreamContext, topology: Topology
) -> None:
    # The executor takes no intent before watch() returns: a switch missing then would
    # let it trade through a halt.
    halt = await _halted(js, topology, BOOKS)

    async def seen_when_loaded() -> int:
        watching = HaltStore(halt._kv)
        await watching.watch()
        seen = len(watching.switches)
        await watching.stop()
        return seen

    seen = []
    for _ in range(READS // (3 * AT_ONCE)):  # twelve at once: the race shows more often
        seen += await asyncio.gather(*(seen_when_loaded() for _ in range(3 * AT_ONCE)))
    assert set(seen) == {BOOKS}


async def test_a_partitions_working_orders_are_all_found(
    js: JetStreamContext, topology: Topology
) -> None:
    store = WorkingOrderStore(await open_bucket(js, topology.bucket("KVREAD_ORDERS")))
    placed = [_order(f"intent-{n}", 3 if n < 6 else 4) for n in range(8)]
    for order in placed:
        await store.put(order)
    await store.delete(placed[0])
    wanted = {o.intent.intent_id for o in placed[1:6]}
    for _ in range(READS // AT_ONCE):
        found = await asyncio.gather(*(store.in_partition("paper", 3) for _ in range(AT_ONCE)))
        assert [{o.intent.intent_id for o in orders} for orders in found] == [wanted] * AT_ONCE


async def test_a_finished_orders_record_leaves_no_delete_marker(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await open_bucket(js, topology.bucket("KVREAD_DONE"))
    store = WorkingOrderStore(kv)
    orders = [_order(f"done-{n}", 5) for n in range(3)]
    for order in orders:
        await store.put(order)
    for order in orders[:2]:
        await store.delete(order)
    await store.delete(orders[0])  # again: nothing left to remove, no error
    assert await present_keys(kv, "paper.5.*") == {orders[2].key}  # no markers
    info = await js.stream_info(f"KV_{topology.bucket('KVREAD_DONE')}")
    assert info.state.messages == 1
    assert [o.intent.intent_id for o in await store.in_partition("paper", 5)] == ["done-2"]
