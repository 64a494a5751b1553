"""The ledger applies a fetched batch in one transaction: same outcomes, settled after COMMIT."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import BusSettings, PositionClient, Publisher, Topology, publish_with_id
from intentbus.ledger.service import LedgerHalted, LedgerService
from intentbus.ledger.stores import store_for
from intentbus.schemas import encode
from intentbus.testing import wait_for
from tests.connected.test_ledger_service import dead_letters, opened, position_at
from tests.ledger_messages import fill
from tests.ledger_sql import allow_fills, refuse_fill


async def _prepare(db: str, refuse_fill_id: str | None = None) -> None:
    """Open p1 in a new db; make the database itself fail when ``refuse_fill_id`` is stored."""
    await opened(db)
    if refuse_fill_id is not None:
        refuse_fill(db, refuse_fill_id)


def _ledger(nats_url: str, topology: Topology, db: str) -> LedgerService:
    return LedgerService(BusSettings.from_env(nats_url, name="ledger-test"), topology, db)


async def _value(n: int) -> int:
    return n


async def test_fills_waiting_in_the_stream_are_applied_in_one_batch(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, ledger_db: str
) -> None:
    db = ledger_db
    await _prepare(db)
    subject = topology.fills_subject("paper", "main")
    ledger = _ledger(nats_url, topology, db)
    await ledger.start()  # streams provisioned; nothing is fetched before run()
    publisher = Publisher(js, topology)
    await publisher.fill(fill(1, size=2.0))
    await publish_with_id(js, subject, b"not json", "garbage")
    await publish_with_id(js, subject, encode(fill(1, size=2.0)), "fill-1-again")
    ghost = encode(fill(2, position="ghost"))
    await publish_with_id(js, subject, ghost, "ghost")
    last = await publisher.fill(fill(3, size=1.0, price=130.0))
    stop = asyncio.Event()
    run = asyncio.create_task(ledger.run(stop))
    try:
        position = await position_at(nc, topology, fills=last.seq)
        assert (position.size, position.fills_applied, position.fills_seq) == (3.0, 2, last.seq)
        await wait_for(lambda: _value(ledger.fills.applied), until=lambda n: n == 2, what="applied")
        assert (ledger.fills.duplicates, ledger.fills.rejected) == (1, 1)
        assert ledger.fills.batches == 1  # one transaction, one COMMIT for the five
        letters = await wait_for(
            lambda: dead_letters(js, topology),
            until=lambda found: len(found) == 2,
            what="two dead letters",
        )
        assert {letter.payload for letter in letters} == {"not json", ghost.decode()}
    finally:
        stop.set()
        await run
        await ledger.stop()
    store = store_for(db)
    await store.open()
    try:
        assert await store.applied_seq("fills") == last.seq
        record = await store.fill(fill(1).fill_id)
        assert record is not None
        assert record.fills_seq == 1  # the first copy, in stream order
        assert await store.fill(fill(2).fill_id) is None  # rejected: its id is not consumed
    finally:
        await store.close()


async def test_a_store_failure_mid_batch_applies_nothing_of_it_and_halts(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, ledger_db: str
) -> None:
    db = ledger_db
    await _prepare(db, refuse_fill_id=fill(2).fill_id)
    broken = _ledger(nats_url, topology, db)
    await broken.start()
    publisher = Publisher(js, topology)
    for n in (1, 2, 3):
        last = await publisher.fill(fill(n, size=float(n)))
    with pytest.raises(LedgerHalted, match="disk says no"):
        await broken.run(asyncio.Event())
    await broken.stop()
    assert (broken.fills.applied, broken.fills.batches) == (0, 0)
    store = store_for(db)
    await store.open()
    try:
        state = await store.get("p1")
        assert state is not None
        assert state.size == 0  # fill 1 came before the failure: rolled back too
        assert await store.applied_seq("fills") == 0
    finally:
        await store.close()
    allow_fills(db)
    again = _ledger(nats_url, topology, db)
    await again.start()
    stop = asyncio.Event()
    run = asyncio.create_task(again.run(stop))
    try:
        await wait_for(lambda: _value(again.fills.applied), until=lambda n: n == 3, what="redo")
        position = await position_at(nc, topology, fills=last.seq)
        assert (position.size, position.fills_applied) == (6.0, 3)
        assert again.fills.duplicates == 0
        assert await PositionClient(nc, topology).get("p1") == position
    finally:
        stop.set()
        await run
        await again.stop()
