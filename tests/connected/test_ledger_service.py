"""The ledger service against a real nats-server: exactly-once apply and the request API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from intentbus.bus import (
    Ack,
    BusSettings,
    Disposition,
    LedgerError,
    Nak,
    PositionClient,
    Publisher,
    Topology,
    publish_with_id,
)
from intentbus.ledger.service import LedgerHalted, LedgerService
from intentbus.schemas import (
    ActionType,
    DeadLetter,
    Direction,
    ExecutionResult,
    ExecutionStatus,
    OpenPosition,
    PositionQuery,
    PositionReply,
    Side,
    decode,
    encode,
)
from intentbus.testing import wait_for

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class AckLosingLedger(LedgerService):
    """Apply each result, then lose the first ack of it: the server redelivers it."""

    lost_acks = 0

    async def _on_result(self, raw: msgspec.Raw, msg: Msg) -> Disposition:
        outcome = await super()._on_result(raw, msg)
        if isinstance(outcome, Ack) and msg.metadata.num_delivered == 1:
            self.lost_acks += 1
            return Nak(delay_s=0.0)
        return outcome


@asynccontextmanager
async def running_ledger(
    nats_url: str,
    topology: Topology,
    db: Path,
    *,
    kind: type[LedgerService] = LedgerService,
    durable: str = "ledger",
    rebuild: bool = False,
) -> AsyncIterator[LedgerService]:
    """Start a ledger service in this event loop and stop it on exit."""
    service = kind(
        BusSettings.from_env(nats_url, name="ledger-test"),
        topology,
        db,
        durable=durable,
        rebuild=rebuild,
    )
    await service.start()
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await task
        await service.stop()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Return the path of a test's ledger database."""
    return tmp_path / "ledger.sqlite3"


def _result(
    n: int,
    side: Side | None = Side.BUY,
    quantity: float = 1.0,
    price: float | None = 100.0,
    *,
    position: str = "p1",
    status: ExecutionStatus = ExecutionStatus.SUCCESS,
    fees: float | None = 0.1,
) -> ExecutionResult:
    return ExecutionResult(
        result_id=f"res-{n}",
        intent_id=f"int-{n}",
        position_id=position,
        venue="paper",
        book_id="main",
        token_contract="BTC",
        action=ActionType.ADD if side is Side.BUY else ActionType.TRIM,
        status=status,
        created_at=AT,
        side=side,
        tokens_bought=quantity if side is Side.BUY else None,
        tokens_sold=quantity if side is Side.SELL else None,
        price=price,
        fees_usd=fees,
    )


def _open(position: str = "p1", allocation: float = 1_000.0) -> OpenPosition:
    return OpenPosition(
        position_id=position,
        venue="paper",
        book_id="main",
        token_contract="BTC",
        direction=Direction.LONG,
        allocation_usd=allocation,
    )


async def test_result_published_under_two_ids_is_applied_once(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: Path
) -> None:
    async with running_ledger(nats_url, topology, db) as ledger:
        result = _result(1, quantity=2.0)
        first = await Publisher(js, topology).result(result)
        second = await publish_with_id(
            js, topology.results_subject("paper", "main"), encode(result), "another-msg-id"
        )
        assert second.seq > first.seq
        position = await PositionClient(nc, topology).get("p1", min_results_seq=second.seq)
        assert position is not None
        assert position.size == 2.0
        assert position.fees_usd == pytest.approx(0.1)
        assert position.results_applied == 1
        assert position.results_seq >= second.seq
        assert ledger.duplicates == 1


async def test_result_redelivered_after_a_lost_ack_is_applied_once(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: Path
) -> None:
    async with running_ledger(nats_url, topology, db, kind=AckLosingLedger) as ledger:
        ack = await Publisher(js, topology).result(_result(1, quantity=3.0))
        await wait_for(
            lambda: _value(ledger.duplicates), until=lambda n: n >= 1, what="the redelivery"
        )
        assert isinstance(ledger, AckLosingLedger)
        assert ledger.lost_acks == 1
        position = await PositionClient(nc, topology).get("p1", min_results_seq=ack.seq)
        assert position is not None
        assert position.size == 3.0
        assert position.results_applied == 1


async def test_rereading_the_stream_into_the_same_db_changes_nothing(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: Path
) -> None:
    publisher = Publisher(js, topology)
    client = PositionClient(nc, topology)
    async with running_ledger(nats_url, topology, db):
        await publisher.result(_result(1))
        ack = await publisher.result(_result(2, Side.SELL, 0.5, 110.0))
        before = await client.get("p1", min_results_seq=ack.seq)
    async with running_ledger(nats_url, topology, db, durable="second") as again:
        await wait_for(lambda: _value(again.duplicates), until=lambda n: n == 2, what="re-read")
        after = await client.get("p1", min_results_seq=ack.seq)
    assert before is not None
    assert after == before
    assert after.size == pytest.approx(0.5)
    assert after.realized_pnl_usd == pytest.approx(5.0)


async def test_get_waits_until_the_named_result_is_applied(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: Path
) -> None:
    publisher = Publisher(js, topology)
    client = PositionClient(nc, topology)
    async with running_ledger(nats_url, topology, db):
        ack = await publisher.result(_result(1, quantity=1.0))
        position = await client.get("p1", min_results_seq=ack.seq)
        assert position is not None
        assert position.size == 1.0
        early = asyncio.create_task(client.get("p1", min_results_seq=ack.seq + 1))
        await publisher.result(_result(2, quantity=4.0))
        position = await early
        assert position is not None
        assert position.size == 5.0
        assert position.results_seq == ack.seq + 1


async def test_get_beyond_the_stream_answers_that_the_ledger_is_behind(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: Path
) -> None:
    async with running_ledger(nats_url, topology, db):
        query = PositionQuery(position_id="p1", min_results_seq=50, wait_ms=50)
        msg = await nc.request(topology.ledger_subject("get"), encode(query), timeout=5)
        reply = decode(msg.data, PositionReply)
        assert reply.error == "ledger behind: applied 0 < wanted 50"
        assert await PositionClient(nc, topology).get("unknown") is None


async def test_malformed_results_are_dead_lettered_and_the_next_one_applied(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: Path
) -> None:
    subject = topology.results_subject("paper", "main")
    async with running_ledger(nats_url, topology, db) as ledger:
        await publish_with_id(js, subject, b"not json", "garbage")
        await publish_with_id(js, subject, b'{"result_id": "x"}', "incomplete")
        no_price = encode(_result(7, price=None))
        await publish_with_id(js, subject, no_price, "no-price")
        ack = await Publisher(js, topology).result(_result(8, quantity=2.0))
        position = await PositionClient(nc, topology).get("p1", min_results_seq=ack.seq)
        assert position is not None
        assert position.size == 2.0
        assert ledger.rejected == 2
        letters = await wait_for(
            lambda: _dead_letters(js, topology),
            until=lambda found: len(found) == 3,
            what="three dead letters",
        )
    assert {letter.payload for letter in letters} == {
        "not json",
        '{"result_id": "x"}',
        no_price.decode(),
    }
    assert any("positive price" in letter.error for letter in letters)


async def test_open_is_idempotent_and_conflicting_terms_are_refused(
    nats_url: str, topology: Topology, nc: Client, db: Path
) -> None:
    client = PositionClient(nc, topology)
    async with running_ledger(nats_url, topology, db):
        first = await client.open(_open())
        assert first.allocation_usd == 1_000.0
        assert await client.open(_open()) == first
        with pytest.raises(LedgerError, match=r"allocation_usd is 1000\.0, requested 5\.0"):
            await client.open(_open(allocation=5.0))
        await client.open(_open("p2"))
        listed = await client.list(venue="paper", book_id="main")
        assert [p.position_id for p in listed.positions] == ["p1", "p2"]
        assert (await client.list(venue="elsewhere")).positions == ()
        msg = await nc.request(topology.ledger_subject("open"), b"{", timeout=5)
        reply = decode(msg.data, PositionReply)
        assert reply.error is not None
        assert reply.error.startswith("malformed open request")


async def test_rebuild_from_the_stream_gives_identical_positions(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: Path
) -> None:
    publisher = Publisher(js, topology)
    client = PositionClient(nc, topology)
    results = [
        _result(1, quantity=2.0, price=100.0),
        _result(2, quantity=1.0, price=130.0),
        _result(3, Side.SELL, 1.5, 140.0),
        _result(4, Side.SELL, 9.0, 90.0, fees=0.3),
        _result(5, None, 0.0, None, status=ExecutionStatus.SKIPPED, fees=None),
        _result(6, Side.SELL, 2.0, 50.0, position="implicit-short"),
        _result(7, Side.BUY, 1.0, 45.0, position="implicit-short", fees=0.05),
    ]
    async with running_ledger(nats_url, topology, db):
        await client.open(_open(allocation=2_500.0))
        await client.open(_open("never-traded", allocation=10.0))
        for result in results:
            last = await publisher.result(result)
        await client.get("p1", min_results_seq=last.seq)
        before = await client.list()
    async with running_ledger(nats_url, topology, db, rebuild=True) as rebuilt:
        assert rebuilt.backup_path is not None
        assert rebuilt.backup_path.exists()
        await client.get("p1", min_results_seq=last.seq)
        after = await client.list()
    assert after == before
    by_id = {p.position_id: p for p in after.positions}
    assert by_id["p1"].size == 0.0
    assert by_id["p1"].allocation_usd == 2_500.0
    assert by_id["implicit-short"].direction is Direction.SHORT
    assert by_id["implicit-short"].size == pytest.approx(1.0)
    assert by_id["never-traded"].results_applied == 0


async def test_a_store_failure_halts_the_ledger_and_loses_nothing(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: Path
) -> None:
    broken = LedgerService(BusSettings.from_env(nats_url, name="ledger-test"), topology, db)
    await broken.start()
    broken.store.close()
    stop = asyncio.Event()
    run = asyncio.create_task(broken.run(stop))
    ack = await Publisher(js, topology).result(_result(1, quantity=2.0))
    with pytest.raises(LedgerHalted, match="ledger store failed"):
        await run
    await broken.stop()
    assert broken.applied == 0
    async with running_ledger(nats_url, topology, db) as ledger:
        await wait_for(lambda: _value(ledger.applied), until=lambda n: n == 1, what="redelivery")
        position = await PositionClient(nc, topology).get("p1", min_results_seq=ack.seq)
        assert position is not None
        assert position.size == 2.0


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
