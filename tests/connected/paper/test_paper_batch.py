"""Order and net calls made together go to the paper venue as one batch, each answered alone."""

from __future__ import annotations

import asyncio
from collections import Counter

import msgspec
import pytest
from nats.aio.msg import Msg

from intentbus.executor.base import OrderNotFound, VenueOrder
from intentbus.schemas import OrderState, Side
from intentbus.venues.paper.client import PaperVenueClient
from intentbus.venues.paper.protocol import (
    REPLY_TYPES,
    BatchCall,
    BatchReply,
    BatchRequest,
    ErrorReply,
    NetReply,
    NetRequest,
    OrderReply,
    PaperSubjects,
    PlaceRequest,
)
from tests.connected.paper.paper_support import StartPaper, market


async def test_calls_made_together_go_as_one_batch_and_each_gets_its_own_answer(
    start_paper: StartPaper,
) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    subjects = PaperSubjects(paper.topology, paper.config.name)
    sent: Counter[str] = Counter()

    async def count(msg: Msg) -> None:
        sent[msg.subject.rsplit(".", 1)[-1]] += 1

    sub = await paper.nc.subscribe(subjects.api_filter, cb=count)
    await paper.nc.flush()
    ex = paper.executor
    plans = [market(Side.BUY, 1.0 + n, 101.0) for n in range(5)]
    answers = await asyncio.gather(
        *(ex.place(p) for p in plans),
        ex.order_status("main", "BTC", "never-placed"),
        return_exceptions=True,
    )
    net = await ex.net_position("main", "BTC")  # alone: sent as a plain `net`
    await paper.nc.flush()
    await sub.unsubscribe()
    orders = answers[:5]
    assert all(isinstance(o, VenueOrder) for o in orders)
    assert [(o.client_order_id, o.state, o.filled_size) for o in orders] == [  # type: ignore[union-attr]
        (p.client_order_id, OrderState.FILLED, p.size) for p in plans
    ]
    assert isinstance(answers[5], OrderNotFound)
    assert net == sum(p.size for p in plans) == 15.0
    assert sent == {"batch": 1, "net": 1}


def _call(op: str, request: msgspec.Struct) -> BatchCall:
    return BatchCall(op=op, request=msgspec.Raw(msgspec.json.encode(request)))


async def test_a_bad_call_in_a_batch_spoils_no_other(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    subjects = PaperSubjects(paper.topology, paper.config.name)
    good = market(Side.BUY, 1.0, 101.0)
    batch = BatchRequest(
        calls=(
            BatchCall(op="meta", request=msgspec.Raw(b"{}")),
            BatchCall(op="place", request=msgspec.Raw(b'{"plan": 1}')),
            _call("place", PlaceRequest(plan=good)),
            _call("net", NetRequest(account="main", symbol="BTC")),
        )
    )
    msg = await paper.nc.request(subjects.api("batch"), msgspec.json.encode(batch), timeout=5)
    reply = msgspec.json.decode(msg.data, type=REPLY_TYPES["batch"])
    assert isinstance(reply, BatchReply)
    meta, bad, placed, net = (
        msgspec.json.decode(raw, type=REPLY_TYPES[op])
        for op, raw in zip(("meta", "place", "place", "net"), reply.replies, strict=True)
    )
    assert meta == ErrorReply(code="bad_request", message="'meta' in a batch")
    assert isinstance(bad, ErrorReply)
    assert bad.code == "bad_request"
    assert isinstance(placed, OrderReply)
    assert placed.order is not None
    assert placed.order.state is OrderState.FILLED
    assert net == NetReply(net=1.0)  # the place before it in the batch is seen


@pytest.mark.parametrize("count", [0, 101])
def test_a_batch_holds_1_to_100_calls(count: int) -> None:
    call = BatchCall(op="net", request=msgspec.Raw(b"{}"))
    with pytest.raises(ValueError, match="a batch holds 1 to 100 calls"):
        BatchRequest(calls=(call,) * count)


async def test_a_server_without_batch_is_sent_each_call_alone(start_paper: StartPaper) -> None:
    paper = await start_paper(prices={"BTC": 100.0})
    older = PaperSubjects(paper.topology, "older")
    asked: Counter[str] = Counter()

    async def older_server(msg: Msg) -> None:  # answers as a server before batches did
        op = msg.subject.rsplit(".", 1)[-1]
        asked[op] += 1
        reply: msgspec.Struct = NetReply(net=2.5)
        if op != "net":
            reply = ErrorReply(code="bad_request", message=f"unknown operation {op!r}")
        await msg.respond(msgspec.json.encode(reply))

    sub = await paper.nc.subscribe(older.api_filter, cb=older_server)
    client = PaperVenueClient(paper.nc, older, 5.0)
    try:
        first = await asyncio.gather(*(client.net("main", "BTC") for _ in range(3)))
        second = await asyncio.gather(*(client.net("main", "BTC") for _ in range(3)))
    finally:
        await sub.unsubscribe()
    assert first == second == [2.5, 2.5, 2.5]
    assert asked == {"batch": 1, "net": 6}  # found out once, then each call alone
