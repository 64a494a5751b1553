"""Position reads of one loop turn share one ``get_many`` request to a real ledger."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from intentbus.bus import LedgerError, PositionClient, PositionReads, Publisher, Topology
from intentbus.schemas import (
    MAX_POSITIONS_PER_QUERY,
    Direction,
    PositionQuery,
    PositionReply,
    PositionsQuery,
    Side,
    decode,
    encode,
)
from tests.connected.test_ledger_service import running_ledger
from tests.ledger_messages import fill, open_request

SYMBOLS = ("BTC", "ETH", "SOL", "DOGE", "XRP")


async def test_reads_asked_together_share_one_request_and_each_gets_its_own(
    nats_url: str, topology: Topology, js: JetStreamContext, nc: Client, ledger_db: str
) -> None:
    client = PositionClient(nc, topology)
    reads = PositionReads(client)
    async with running_ledger(nats_url, topology, ledger_db):
        for n, symbol in enumerate(SYMBOLS):
            await client.open(open_request(f"p{n}", symbol=symbol, allocation=100.0 + n))
        p3_fill = fill(1, Side.BUY, 2.0, position="p3", symbol="DOGE")
        moved = await Publisher(js, topology).fill(p3_fill)
        ids = [f"p{n}" for n in range(len(SYMBOLS))] + ["unknown", "p3"]
        answers = await asyncio.gather(
            *(reads.get(i, min_fills_seq=moved.seq if n == 6 else 0) for n, i in enumerate(ids))
        )
    assert (reads.requests, reads.reads) == (1, len(ids))
    assert [(a.position_id, a.allocation_usd) if a else None for a in answers] == [
        ("p0", 100.0), ("p1", 101.0), ("p2", 102.0), ("p3", 103.0), ("p4", 104.0), None,
        ("p3", 103.0),
    ]  # fmt: skip
    last = answers[6]
    assert last is not None
    assert last.size == 2.0  # the read that named p3's fill waited for it
    assert last.fills_seq >= moved.seq


async def test_more_reads_than_one_request_holds_are_split(
    nats_url: str, topology: Topology, nc: Client, ledger_db: str
) -> None:
    reads = PositionReads(PositionClient(nc, topology))
    count = MAX_POSITIONS_PER_QUERY + 3
    async with running_ledger(nats_url, topology, ledger_db):
        await PositionClient(nc, topology).open(open_request("p0"))
        answers = await asyncio.gather(*(reads.get(f"p{n}") for n in range(count)))
    assert reads.requests == 2
    assert answers[0] is not None
    assert answers[0].direction is Direction.LONG
    assert answers[1:] == [None] * (count - 1)


async def test_reads_needing_new_writes_wait_together_and_the_others_do_not(
    nats_url: str, topology: Topology, nc: Client, ledger_db: str
) -> None:
    reads = PositionReads(PositionClient(nc, topology, timeout_s=1.0))
    async with running_ledger(nats_url, topology, ledger_db):
        answers = await asyncio.gather(
            reads.get("p1", min_fills_seq=50),
            reads.get("p2", min_fills_seq=40),
            reads.get("p3"),  # the ledger has all it needs: answered, not held back
            return_exceptions=True,
        )
    assert [type(a) for a in answers] == [LedgerError, LedgerError, type(None)]
    assert "ledger behind: fills applied 0 < wanted 50" in str(answers[1])  # one request


async def test_a_ledger_without_get_many_is_read_one_position_at_a_time(
    topology: Topology, nc: Client
) -> None:
    asked: list[str] = []

    async def older_ledger(msg: Msg) -> None:  # answers `get` only, as before get_many
        query = decode(msg.data, PositionQuery)
        asked.append(query.position_id)
        await msg.respond(encode(PositionReply(fills_seq=len(asked))))

    sub = await nc.subscribe(topology.ledger_subject("get"), cb=older_ledger)
    reads = PositionReads(PositionClient(nc, topology, timeout_s=1.0))
    try:
        first = await asyncio.gather(reads.get("a"), reads.get("b"))
        second = await asyncio.gather(reads.get("c"), reads.get("d"))
    finally:
        await sub.unsubscribe()
    assert [*first, *second] == [None] * 4
    assert sorted(asked) == ["a", "b", "c", "d"]
    assert not reads.batching  # found out once: the second pair went straight to `get`


@pytest.mark.parametrize(
    ("ids", "problem"),
    [
        ((), "ask for 1 to 256 at once"),
        (tuple(f"p{n}" for n in range(MAX_POSITIONS_PER_QUERY + 1)), "holds 257 ids"),
        (("p1", "p.2"), "'p.2', which is not subject-safe"),
    ],
)
def test_a_query_of_no_ids_too_many_or_an_unsafe_one_is_refused(
    ids: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        PositionsQuery(position_ids=ids)
