"""The ledger applies a fetched batch in one transaction: same outcomes, settled after COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import BusSettings, PositionClient, Publisher, Topology, publish_with_id
from intentbus.ledger.service import LedgerHalted, LedgerService
from intentbus.ledger.sqlite_store import SqliteStore
from intentbus.schemas import (
    ActionType,
    DeadLetter,
    ExecutionResult,
    ExecutionStatus,
    Side,
    decode,
    encode,
)
from intentbus.testing import wait_for

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _result(n: int, quantity: float = 1.0, price: float | None = 100.0) -> ExecutionResult:
    return ExecutionResult(
        result_id=f"res-{n}",
        intent_id=f"int-{n}",
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="BTC",
        action=ActionType.ADD,
        status=ExecutionStatus.SUCCESS,
        created_at=AT,
        side=Side.BUY,
        tokens_bought=quantity,
        price=price,
        fees_usd=0.1,
    )


def _refuse(db: Path, result_id: str) -> None:
    """Make SQLite itself fail when ``result_id`` is stored (real failure, mid-batch)."""
    store = SqliteStore(db)
    store.open()  # creates the tables
    store.close()
    conn = sqlite3.connect(db)
    try:
        conn.executescript(
            "CREATE TRIGGER refuse BEFORE INSERT ON applied_results "
            f"WHEN NEW.result_id = '{result_id}' BEGIN SELECT RAISE(ABORT, 'disk says no'); END;"
        )
    finally:
        conn.close()


def _allow(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute("DROP TRIGGER refuse")
    finally:
        conn.close()


def _ledger(nats_url: str, topology: Topology, db: Path) -> LedgerService:
    return LedgerService(BusSettings.from_env(nats_url, name="ledger-test"), topology, db)


async def _value(n: int) -> int:
    return n


async def _dead_letters(js: JetStreamContext, topology: Topology) -> list[DeadLetter]:
    info = await js.stream_info(topology.dead_letter_stream)
    if not info.state.messages:
        return []
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(topology.dead_letter_stream, seq)
        found.append(decode(msg.data or b"", DeadLetter))
    return found


async def test_results_waiting_in_the_stream_are_applied_in_one_batch(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, tmp_path: Path
) -> None:
    subject = topology.results_subject("paper", "main")
    ledger = _ledger(nats_url, topology, tmp_path / "ledger.sqlite3")
    await ledger.start()  # streams provisioned; nothing is fetched before run()
    publisher = Publisher(js, topology)
    await publisher.result(_result(1, quantity=2.0))
    await publish_with_id(js, subject, b"not json", "garbage")
    await publish_with_id(js, subject, encode(_result(1, quantity=2.0)), "res-1-again")
    no_price = encode(_result(2, price=None))
    await publish_with_id(js, subject, no_price, "no-price")
    last = await publisher.result(_result(3, quantity=1.0, price=130.0))
    stop = asyncio.Event()
    run = asyncio.create_task(ledger.run(stop))
    try:
        position = await PositionClient(nc, topology).get("p1", min_results_seq=last.seq)
        assert position is not None
        assert position.size == 3.0
        assert position.results_applied == 2
        assert position.results_seq == last.seq
        await wait_for(lambda: _value(ledger.applied), until=lambda n: n == 2, what="applied")
        assert (ledger.duplicates, ledger.rejected) == (1, 1)
        assert ledger.batches == 1  # one transaction, one COMMIT for the four results
        letters = await wait_for(
            lambda: _dead_letters(js, topology),
            until=lambda found: len(found) == 2,
            what="two dead letters",
        )
        assert {letter.payload for letter in letters} == {"not json", no_price.decode()}
    finally:
        stop.set()
        await run
        await ledger.stop()
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    store.open()
    try:
        assert store.applied_seq() == last.seq
        audit = store.audit("res-1")
        assert audit is not None
        assert audit.results_seq == 1  # the first copy, in stream order
        assert store.audit("res-2") is None  # rejected: its id is not consumed
    finally:
        store.close()


async def test_a_store_failure_mid_batch_applies_nothing_of_it_and_halts(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, tmp_path: Path
) -> None:
    db = tmp_path / "ledger.sqlite3"
    _refuse(db, "res-2")
    broken = _ledger(nats_url, topology, db)
    await broken.start()
    publisher = Publisher(js, topology)
    for n in (1, 2, 3):
        last = await publisher.result(_result(n, quantity=float(n)))
    stop = asyncio.Event()
    with pytest.raises(LedgerHalted, match="disk says no"):
        await broken.run(stop)
    await broken.stop()
    assert (broken.applied, broken.batches) == (0, 0)
    store = SqliteStore(db)
    store.open()
    try:
        assert store.get("p1") is None  # res-1 came before the failure: rolled back too
        assert store.applied_seq() == 0
    finally:
        store.close()
    _allow(db)
    again = _ledger(nats_url, topology, db)
    await again.start()
    stop = asyncio.Event()
    run = asyncio.create_task(again.run(stop))
    try:
        await wait_for(lambda: _value(again.applied), until=lambda n: n == 3, what="redelivery")
        position = await PositionClient(nc, topology).get("p1", min_results_seq=last.seq)
        assert position is not None
        assert position.size == 6.0
        assert position.results_applied == 3
        assert again.duplicates == 0
    finally:
        stop.set()
        await run
        await again.stop()
