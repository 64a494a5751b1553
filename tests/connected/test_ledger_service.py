"""The ledger service against a real nats-server: fills move positions once, results check them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
from intentbus.ledger.opening import open_position
from intentbus.ledger.service import LedgerHalted, LedgerService
from intentbus.ledger.storage import LedgerConfigError, ResultSummary
from intentbus.ledger.stores import store_for
from intentbus.schemas import (
    ActionType,
    DeadLetter,
    Direction,
    OpenPosition,
    Position,
    PositionQuery,
    PositionReply,
    Side,
    decode,
    encode,
)
from intentbus.testing import wait_for
from tests.ledger_messages import fill, open_request, result, working


@asynccontextmanager
async def running_ledger(
    nats_url: str,
    topology: Topology,
    db: str | Path,
    *,
    durable: str = "ledger",
    rebuild: bool = False,
    fills_wait_s: float = 5.0,
) -> AsyncIterator[LedgerService]:
    """Start a ledger service in this event loop and stop it on exit."""
    service = LedgerService(
        BusSettings.from_env(nats_url, name="ledger-test"),
        topology,
        db,
        durable=durable,
        rebuild=rebuild,
        fills_wait_s=fills_wait_s,
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


async def ask(
    nc: Client, topology: Topology, position_id: str = "p1", *, results: int = 0, fills: int = 0
) -> PositionReply:
    """Ask ``get`` with both read-your-writes floors (the client API names only results)."""
    query = PositionQuery(
        position_id=position_id, min_results_seq=results, min_fills_seq=fills, wait_ms=10_000
    )
    msg = await nc.request(topology.ledger_subject("get"), encode(query), timeout=15)
    return decode(msg.data, PositionReply)


async def position_at(
    nc: Client, topology: Topology, *, results: int = 0, fills: int = 0
) -> Position:
    """Return p1 once the ledger applied RESULTS and FILLS up to the given seqs."""
    reply = await ask(nc, topology, results=results, fills=fills)
    assert reply.error is None, reply.error
    assert reply.positions, "p1 is unknown"
    return reply.positions[0]


async def opened(db: str, *requests: OpenPosition) -> str:
    """Create the ledger db ``db`` with positions opened (p1 by default); return it."""
    store = store_for(db)
    await store.open()
    try:
        for request in requests or (open_request(),):
            await open_position(store, request)
    finally:
        await store.close()
    return db


@pytest.fixture
def db(ledger_db: str) -> str:
    """Return a test's ledger database: a SQLite file, then a PostgreSQL database."""
    return ledger_db


async def _value(n: int) -> int:
    return n


async def dead_letters(js: JetStreamContext, topology: Topology) -> list[DeadLetter]:
    """Return every dead letter of the test's namespace."""
    info = await js.stream_info(topology.dead_letter_stream)
    if not info.state.messages:
        return []
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(topology.dead_letter_stream, seq)
        found.append(decode(msg.data or b"", DeadLetter))
    return found


async def test_fills_move_the_position_as_they_arrive_and_flip_it(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    publisher = Publisher(js, topology)
    async with running_ledger(nats_url, topology, db):
        await PositionClient(nc, topology).open(open_request())
        first = await publisher.fill(fill(1, Side.BUY, 2.0, 100.0, fee=0.1))
        position = await position_at(nc, topology, fills=first.seq)
        assert (position.size, position.avg_entry_price, position.fills_applied) == (2.0, 100.0, 1)
        assert position.fills_seq == first.seq
        flip = await publisher.fill(fill(2, Side.SELL, 3.0, 110.0, fee=-0.02))
        position = await position_at(nc, topology, fills=flip.seq)
    assert position.direction is Direction.SHORT
    assert (position.size, position.avg_entry_price) == (1.0, 110.0)
    assert position.realized_pnl_usd == 20.0
    assert position.fees_usd == 0.08
    assert position.fills_applied == 2
    assert position.results_applied == 0


async def test_a_fill_published_twice_or_redelivered_is_applied_once(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    service = LedgerService(BusSettings.from_env(nats_url, name="ledger-test"), topology, db)
    original = service.fills.on_message
    lost: list[int] = []

    async def lose_first_ack(_raw: msgspec.Raw, msg: Msg) -> Disposition:
        outcome = await original(_raw, msg)
        if isinstance(outcome, Ack) and msg.metadata.num_delivered == 1 and not lost:
            lost.append(msg.metadata.sequence.stream)
            return Nak(delay_s=0.0)  # as if the ack was lost: the server sends it again
        return outcome

    service.fills.on_message = lose_first_ack  # type: ignore[method-assign]
    await service.start()
    stop = asyncio.Event()
    run = asyncio.create_task(service.run(stop))
    try:
        await PositionClient(nc, topology).open(open_request())
        message = fill(1, size=2.0, fee=0.1)
        await Publisher(js, topology).fill(message)
        again = await publish_with_id(
            js, topology.fills_subject("paper", "main"), encode(message), "another-msg-id"
        )
        position = await position_at(nc, topology, fills=again.seq)
        await wait_for(
            lambda: _value(service.fills.duplicates), until=lambda n: n >= 2, what="duplicates"
        )
    finally:
        stop.set()
        await run
        await service.stop()
    assert lost == [1]
    assert (position.size, position.fees_usd, position.fills_applied) == (2.0, 0.1, 1)
    assert service.fills.applied == 1


async def test_a_result_arriving_before_its_last_fill_waits_for_it(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    publisher = Publisher(js, topology)
    summary = result("i1", fill_count=1, filled_size=2.0, fees_usd=0.1, last_fill_seq=1)
    async with running_ledger(nats_url, topology, db, fills_wait_s=0.05) as ledger:
        await PositionClient(nc, topology).open(open_request())
        result_ack = await publisher.result(summary)
        await wait_for(  # waited in vain, was nak'd, came back and waited again
            lambda: _value(ledger.results.waits), until=lambda n: n >= 2, what="the waits"
        )
        assert await ledger.store.summary(summary.result_id) is None
        assert ledger.results.progress.seq == 0
        fill_ack = await publisher.fill(fill(1, size=2.0, fee=0.1))
        assert fill_ack.seq == 1
        position = await position_at(nc, topology, results=result_ack.seq)
        stored = await ledger.store.summary(summary.result_id)
    assert (position.size, position.results_applied, position.fills_applied) == (2.0, 1, 1)
    assert stored is not None
    assert not stored.mismatch
    assert stored.results_seq == result_ack.seq


async def test_a_result_disagreeing_with_the_fills_is_flagged(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    publisher = Publisher(js, topology)
    async with running_ledger(nats_url, topology, db) as ledger:
        await PositionClient(nc, topology).open(open_request())
        await publisher.fill(fill(1, size=1.0, fee=0.1))
        ack = await publisher.result(
            result("i1", fill_count=2, filled_size=1.5, fees_usd=0.1, last_fill_seq=1)
        )
        position = await position_at(nc, topology, results=ack.seq)
        flagged = await ledger.store.summaries(mismatch_only=True)
    assert position.size == 1.0  # the fills are what moved it, not the result
    assert [(s.intent_id, s.mismatch) for s in flagged] == [("i1", True)]
    assert flagged[0].notes == (
        "fill_count: result says 2, ledger applied 1",
        "filled_size: result says 1.5, ledger applied 1.0",
    )


async def test_working_size_shows_and_disappears_at_the_final_result(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    publisher = Publisher(js, topology)
    async with running_ledger(nats_url, topology, db):
        await PositionClient(nc, topology).open(open_request())
        live = await publisher.order_update(working("i1", size=2.0, price=99.5))
        position = await position_at(nc, topology, results=live.seq)
        assert (position.working_size, position.working_orders) == (2.0, 1)
        part = await publisher.fill(fill(1, size=0.5, price=99.5))
        position = await position_at(nc, topology, fills=part.seq)
        assert (position.working_size, position.working_orders, position.size) == (1.5, 1, 0.5)
        final = await publisher.result(
            result("i1", fill_count=1, filled_size=0.5, last_fill_seq=part.seq)
        )
        position = await position_at(nc, topology, results=final.seq)
    assert (position.working_size, position.working_orders, position.size) == (0.0, 0, 0.5)


async def test_get_waits_for_the_fills_seq_and_says_when_the_ledger_is_behind(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    async with running_ledger(nats_url, topology, db):
        await PositionClient(nc, topology).open(open_request())
        early = asyncio.create_task(ask(nc, topology, fills=1))
        await Publisher(js, topology).fill(fill(1, size=3.0))
        reply = await early
        query = PositionQuery(position_id="p1", min_fills_seq=50, wait_ms=50)
        msg = await nc.request(topology.ledger_subject("get"), encode(query), timeout=5)
        behind = decode(msg.data, PositionReply)
    assert reply.error is None
    assert reply.fills_seq == 1
    assert reply.positions[0].size == 3.0
    assert behind.error == "ledger behind: fills applied 1 < wanted 50"
    assert behind.fills_seq == 1


async def test_a_second_open_position_on_one_venue_book_and_symbol_is_refused(
    nats_url: str, topology: Topology, nc: Client, db: str
) -> None:
    client = PositionClient(nc, topology)
    async with running_ledger(nats_url, topology, db):
        first = await client.open(open_request("p1"))
        assert await client.open(open_request("p1")) == first
        with pytest.raises(LedgerError) as refused:
            await client.open(open_request("p2"))
        with pytest.raises(LedgerError, match=r"allocation_usd is 1000\.0, requested 5\.0"):
            await client.open(open_request("p1", allocation=5.0))
        await client.open(open_request("p3", symbol="ETH"))
        listed = await client.list(venue="paper", book_id="main")
    assert str(refused.value) == (
        "cannot open position p2: position p1 is already open on venue paper, book main, "
        "symbol BTC (one open position per venue, book and symbol; exit p1 first)"
    )
    assert [p.position_id for p in listed.positions] == ["p1", "p3"]


async def test_an_exit_closes_the_position_and_frees_its_symbol(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    publisher = Publisher(js, topology)
    client = PositionClient(nc, topology)
    async with running_ledger(nats_url, topology, db):
        await client.open(open_request("p1"))
        await publisher.fill(fill(1, size=1.0, price=100.0))
        await publisher.result(result("i1", fill_count=1, filled_size=1.0, last_fill_seq=1))
        await publisher.order_update(working("i2", Side.SELL, 1.0))
        sold = await publisher.fill(fill(2, Side.SELL, 1.0, 120.0, intent="i2"))
        flat = await position_at(nc, topology, fills=sold.seq)
        assert (flat.size, flat.closed) == (0.0, False)  # flat, but not exited: still open
        exit_ack = await publisher.result(
            result("i2", action=ActionType.EXIT, side=Side.SELL, fill_count=1, filled_size=1.0,
                   last_fill_seq=sold.seq)
        )  # fmt: skip
        closed = await position_at(nc, topology, results=exit_ack.seq)
        second = await client.open(open_request("p2"))
        again = await client.open(open_request("p1"))
    assert closed.closed
    assert closed.realized_pnl_usd == 20.0
    assert (second.position_id, second.closed) == ("p2", False)
    assert again == msgspec.structs.replace(
        closed, results_seq=again.results_seq, fills_seq=again.fills_seq
    )


async def test_rebuild_from_the_streams_gives_identical_state(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    publisher = Publisher(js, topology)
    client = PositionClient(nc, topology)
    async with running_ledger(nats_url, topology, db) as ledger:
        await client.open(open_request("p1", allocation=2_500.0))
        await client.open(open_request("eth", symbol="ETH"))
        await client.open(open_request("never-traded", symbol="SOL", allocation=10.0))
        await publisher.fill(fill(1, size=2.0, price=100.0, fee=0.1))
        await publisher.fill(fill(2, size=1.0, price=130.0, fee=-0.01))
        await publisher.result(result("i1", fill_count=2, filled_size=3.0, fees_usd=0.09,
                                      last_fill_seq=2))  # fmt: skip
        await publisher.order_update(working("i2", Side.SELL, 5.0, position="p1"))
        await publisher.fill(fill(3, Side.SELL, 4.0, 90.0, intent="i2"))  # flips to short 1
        await publisher.fill(fill(4, size=0.1, price=2_000.0, intent="e1", position="eth",
                                  symbol="ETH"))  # fmt: skip
        await publisher.fill(fill(5, Side.SELL, 0.1, 2_100.0, intent="e2", position="eth",
                                  symbol="ETH"))  # fmt: skip
        await publisher.result(result("e1", position="eth", symbol="ETH", fill_count=1,
                                      filled_size=0.1, last_fill_seq=4))  # fmt: skip
        await publisher.result(result("e2", action=ActionType.EXIT, side=Side.SELL,
                                      position="eth", symbol="ETH", fill_count=2,
                                      filled_size=0.1, last_fill_seq=5))  # fmt: skip
        last = await publisher.fill(fill(6, Side.SELL, 0.5, 95.0, intent="i2"))
        last_result = await publisher.result(result("skip", action=ActionType.TRIM, side=None))
        await ask(nc, topology, results=last_result.seq, fills=last.seq)
        before = await client.list()
        before_summaries = _comparable(await ledger.store.summaries())
    async with running_ledger(nats_url, topology, db, rebuild=True) as rebuilt:
        assert rebuilt.backup is not None
        assert len(await rebuilt.store.registrations(rebuilt.backup)) == 3  # kept aside
        await ask(nc, topology, results=last_result.seq, fills=last.seq)
        after = await client.list()
        after_summaries = _comparable(await rebuilt.store.summaries())
    assert after == before
    assert after_summaries == before_summaries
    by_id = {p.position_id: p for p in after.positions}
    assert by_id["p1"].direction is Direction.SHORT
    assert (by_id["p1"].size, by_id["p1"].working_size, by_id["p1"].working_orders) == (1.5, 0.5, 1)
    assert by_id["eth"].closed
    assert by_id["never-traded"].fills_applied == 0
    assert [s[0] for s in after_summaries if s[1]] == ["res-e2"]  # 2 fills said, 1 applied


def _comparable(summaries: list[ResultSummary]) -> list[tuple[object, ...]]:
    return [
        (s.result_id, s.mismatch, s.closes, s.fill_count, s.filled_size, s.fees_usd, s.notes)
        for s in summaries
    ]


async def test_unknown_position_and_malformed_fills_are_dead_lettered(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    subject = topology.fills_subject("paper", "main")
    async with running_ledger(nats_url, topology, db) as ledger:
        await PositionClient(nc, topology).open(open_request())
        await publish_with_id(js, subject, b"not json", "garbage")
        await Publisher(js, topology).fill(fill(1, position="ghost"))
        ack = await Publisher(js, topology).fill(fill(2, size=2.0))
        position = await position_at(nc, topology, fills=ack.seq)
        letters = await wait_for(
            lambda: dead_letters(js, topology),
            until=lambda found: len(found) == 2,
            what="two dead letters",
        )
        assert ledger.fills.rejected == 1
    assert position.size == 2.0
    assert {letter.stream for letter in letters} == {topology.fills_stream}
    assert any("position ghost" in letter.error for letter in letters)


async def test_a_store_failure_halts_the_ledger_and_loses_nothing(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, db: str
) -> None:
    async with running_ledger(nats_url, topology, db):
        await PositionClient(nc, topology).open(open_request())
    broken = LedgerService(BusSettings.from_env(nats_url, name="ledger-test"), topology, db)
    await broken.start()
    await broken.store.close()
    stop = asyncio.Event()
    run = asyncio.create_task(broken.run(stop))
    ack = await Publisher(js, topology).fill(fill(1, size=2.0))
    with pytest.raises(LedgerHalted, match="ledger store failed"):
        await run
    await broken.stop()
    assert broken.fills.applied == 0
    async with running_ledger(nats_url, topology, db) as ledger:
        position = await position_at(nc, topology, fills=ack.seq)
        assert ledger.fills.applied == 1
    assert position.size == 2.0


async def test_a_database_of_another_namespace_is_refused(
    nats_url: str, topology: Topology, nc: Client, db: str
) -> None:
    async with running_ledger(nats_url, topology, db):
        pass
    other = Topology(f"{topology.namespace}x")
    service = LedgerService(BusSettings.from_env(nats_url, name="ledger-test"), other, db)
    try:
        with pytest.raises(LedgerConfigError, match=r"holds the ledger of stream .*--namespace"):
            await service.start()
    finally:
        await service.stop()
