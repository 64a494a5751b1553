"""Paper account crash-resume: an order fills once and a lookup is exact after any crash.

A "crash" is an account whose write fails at one step; a fresh account on the same
bucket plays the restarted process.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
import pytest
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from intentbus.bus import Topology
from intentbus.executor.kv import ensure_bucket
from intentbus.venues.paper.account import (
    PaperAccount,
    PaperOrder,
    PendingOrder,
    SymbolBook,
    book_key,
    order_key,
)
from intentbus.venues.paper.constants import UNFINALISED_ORDERS_PER_SYMBOL


class Crash(Exception):
    """The simulated process death."""


class CrashBeforeCommit(PaperAccount):
    """Dies right after taking the client order id's gate, before the fill is committed."""

    async def _commit(self, *args: object, **kwargs: object) -> tuple[PaperOrder, bool, bool]:
        raise Crash


class CrashBeforeFinalise(PaperAccount):
    """Dies right after committing the fill, before the order key holds the final order."""

    async def _finalise(self, symbol: str, order: PaperOrder) -> None:
        raise Crash


async def _kv(js: JetStreamContext, topology: Topology) -> KeyValue:
    return await ensure_bucket(js, topology.bucket("PAPER_paper"))


def _order(order_id: str, cloid: str, size: float) -> PaperOrder:
    return PaperOrder(
        order_id=order_id,
        client_order_id=cloid,
        symbol="BTC",
        side="buy",
        order_type="market",
        time_in_force="Ioc",
        reduce_only=False,
        size=size,
        filled_size=size,
        avg_price=100.0,
        fees_usd=0.01,
        status="success",
        created_at=datetime.now(UTC),
    )


async def _place(account: PaperAccount, cloid: str, size: float = 1.0) -> tuple[PaperOrder, bool]:
    def fill(book: SymbolBook) -> PaperOrder:
        return _order(f"paper-BTC-{book.order_count + 1}", cloid, size)

    return await account.place(cloid, "BTC", fill)


async def _raw(kv: KeyValue, key: str) -> bytes:
    entry = await kv.get(key)
    assert entry.value is not None
    return entry.value


async def test_crash_after_the_gate_before_the_fill_is_never_reported_then_fills_once(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _kv(js, topology)
    with pytest.raises(Crash):
        await _place(CrashBeforeCommit(kv), "0xaa")
    assert (await _raw(kv, order_key("0xaa"))).startswith(b'{"pending":')
    restarted = PaperAccount(kv)
    assert await restarted.order("0xaa", "BTC") is None
    assert await restarted.orders() == []
    assert (await restarted.book("BTC")).order_count == 0
    order, placed = await _place(restarted, "0xaa")
    assert placed
    again, placed_again = await _place(PaperAccount(kv), "0xaa")
    assert (again, placed_again) == (order, False)
    assert await restarted.order("0xaa", "BTC") == order
    book = await restarted.book("BTC")
    assert (book.order_count, book.size) == (1, 1.0)


async def test_crash_after_the_fill_before_finalising_is_found_and_never_refilled(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _kv(js, topology)
    with pytest.raises(Crash):
        await _place(CrashBeforeFinalise(kv), "0xbb")
    assert (await _raw(kv, order_key("0xbb"))).startswith(b'{"pending":')
    restarted = PaperAccount(kv)
    book = await restarted.book("BTC")
    assert (book.order_count, book.size, list(book.unfinalised)) == (1, 1.0, ["0xbb"])
    # a second placement with the same client order id returns the committed order
    order, placed = await _place(PaperAccount(kv), "0xbb", size=5.0)
    assert not placed
    assert order.filled_size == 1.0
    assert await restarted.order("0xbb", "BTC") == order
    assert msgspec.json.decode(await _raw(kv, order_key("0xbb")), type=PaperOrder) == order
    assert [o.client_order_id for o in await restarted.orders()] == ["0xbb"]
    # the next commit drops it from the book (its key is final now)
    await _place(restarted, "0xcc")
    book = await restarted.book("BTC")
    assert (book.order_count, book.size, list(book.unfinalised)) == (2, 2.0, ["0xcc"])


async def test_lookup_alone_finalises_an_order_whose_placer_died(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _kv(js, topology)
    with pytest.raises(Crash):
        await _place(CrashBeforeFinalise(kv), "0xdd")
    found = await PaperAccount(kv).order("0xdd", "BTC")
    assert found is not None
    assert msgspec.json.decode(await _raw(kv, order_key("0xdd")), type=PaperOrder) == found


async def test_accounts_with_stale_cached_books_never_lose_or_double_a_fill(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _kv(js, topology)
    a, b = PaperAccount(kv), PaperAccount(kv)
    for i in range(6):  # each one's cached book is stale after the other's commit
        await _place(a if i % 2 == 0 else b, f"0x{i:02x}")
    racers = [_place(account, f"0xr{i}") for i in range(4) for account in (a, b)]
    placed = await asyncio.gather(*racers)
    assert sum(1 for _, was_placed in placed if was_placed) == 4
    book = await PaperAccount(kv).book("BTC")
    assert (book.order_count, book.size) == (10, 10.0)
    assert len(await a.orders()) == 10


async def test_orders_left_unfinalised_by_stopped_placers_are_finalised_and_pruned(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _kv(js, topology)
    n = UNFINALISED_ORDERS_PER_SYMBOL
    for i in range(n):
        with pytest.raises(Crash):
            await _place(CrashBeforeFinalise(kv), f"0xd{i}")
    survivor = PaperAccount(kv)
    await _place(survivor, "0xlast")
    book = await survivor.book("BTC")
    assert list(book.unfinalised) == ["0xlast"]
    assert (book.order_count, book.size) == (n + 1, n + 1.0)
    orders = await survivor.orders()
    assert len(orders) == n + 1
    for i in range(n):
        raw = await _raw(kv, order_key(f"0xd{i}"))
        assert not raw.startswith(b'{"pending":')


async def test_a_book_of_the_previous_layout_keeps_its_orders(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _kv(js, topology)
    old = _order("paper-BTC-1", "0xold", 2.0)
    legacy = {"symbol": "BTC", "size": 2.0, "order_count": 1, "recent": {"0xold": old}}
    await kv.put(book_key("BTC"), msgspec.json.encode(legacy))  # its order key was never written
    account = PaperAccount(kv)
    assert await account.order("0xold", "BTC") == old
    again, placed = await _place(account, "0xold")
    assert (again, placed) == (old, False)
    book = await account.book("BTC")
    assert (book.order_count, book.size, book.recent) == (1, 2.0, {})


async def test_a_pending_marker_names_its_order_and_symbol(
    js: JetStreamContext, topology: Topology
) -> None:
    kv = await _kv(js, topology)
    with pytest.raises(Crash):
        await _place(CrashBeforeCommit(kv), "0xee")
    marker = msgspec.json.decode(await _raw(kv, order_key("0xee")), type=PendingOrder)
    assert (marker.pending, marker.symbol) == ("0xee", "BTC")
