"""The paper venue's own account, kept in a NATS KV bucket like a real venue keeps it.

Keys: ``book.<symbol>`` holds the symbol's signed position, cash, fees and its recent
orders; ``order.<client order id>`` holds each order. A fill is committed by one
compare-and-set on the symbol's book (the order goes in with the position change), so a
second placement with the same client order id finds the first order and never fills
again, even after a crash between the two writes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import datetime

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from intentbus.venues.paper.constants import RECENT_ORDERS_PER_SYMBOL

_SAFE = re.compile(r"^[A-Za-z0-9_=-]{1,200}$")


class PaperOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One order on the paper venue and what it filled."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str | None
    reduce_only: bool
    size: float
    filled_size: float
    avg_price: float | None
    fees_usd: float
    status: str
    created_at: datetime
    note: str = ""


class SymbolBook(msgspec.Struct, frozen=True, kw_only=True):
    """The account's state in one symbol: signed position, cash flow, fees, recent orders."""

    symbol: str
    size: float = 0.0
    cash_usd: float = 0.0
    fees_usd: float = 0.0
    order_count: int = 0
    recent: dict[str, PaperOrder] = msgspec.field(default_factory=dict)


Fill = Callable[[SymbolBook], PaperOrder]


def _key_part(value: str) -> str:
    if _SAFE.fullmatch(value) and not value.startswith("hex-"):
        return value
    return "hex-" + value.encode().hex()


def book_key(symbol: str) -> str:
    """Return the KV key of a symbol's book."""
    return "book." + _key_part(symbol)


def order_key(client_order_id: str) -> str:
    """Return the KV key of an order."""
    return "order." + _key_part(client_order_id)


class PaperAccount:
    """Read and change the paper account atomically."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._book_decoder = msgspec.json.Decoder(SymbolBook)
        self._order_decoder = msgspec.json.Decoder(PaperOrder)

    async def book(self, symbol: str) -> SymbolBook:
        """Return a symbol's book (empty when it never traded)."""
        book, _ = await self._book_with_revision(symbol)
        return book

    async def _book_with_revision(self, symbol: str) -> tuple[SymbolBook, int | None]:
        try:
            entry = await self._kv.get(book_key(symbol))
        except KeyNotFoundError:
            return SymbolBook(symbol=symbol), None
        if not entry.value:
            return SymbolBook(symbol=symbol), None
        return self._book_decoder.decode(entry.value), entry.revision

    async def order(self, client_order_id: str, symbol: str) -> PaperOrder | None:
        """Return the order with this client order id, or None if it was never placed."""
        try:
            entry = await self._kv.get(order_key(client_order_id))
            if entry.value:
                return self._order_decoder.decode(entry.value)
        except KeyNotFoundError:
            pass
        book = await self.book(symbol)
        return book.recent.get(client_order_id)

    async def place(self, client_order_id: str, symbol: str, fill: Fill) -> tuple[PaperOrder, bool]:
        """Place an order once: return it and whether this call placed it.

        ``fill`` computes the order from the current book; the book and the order are
        committed together by compare-and-set, retried on a concurrent change.
        """
        existing = await self.order(client_order_id, symbol)
        if existing is not None:
            return existing, False
        while True:
            book, revision = await self._book_with_revision(symbol)
            found = book.recent.get(client_order_id)
            if found is not None:
                await self._store_order(found)
                return found, False
            order = fill(book)
            payload = msgspec.json.encode(_apply(book, order))
            try:
                if revision is None:
                    await self._kv.create(book_key(symbol), payload)
                else:
                    await self._kv.update(book_key(symbol), payload, last=revision)
            except KeyWrongLastSequenceError:
                continue
            await self._store_order(order)
            return order, True

    async def _store_order(self, order: PaperOrder) -> None:
        with contextlib.suppress(KeyWrongLastSequenceError):  # already stored
            await self._kv.create(order_key(order.client_order_id), msgspec.json.encode(order))

    async def orders(self) -> list[PaperOrder]:
        """Return every stored order."""
        try:
            keys = await self._kv.keys()
        except NoKeysError:
            return []
        found = []
        for key in sorted(k for k in keys if k.startswith("order.")):
            try:
                entry = await self._kv.get(key)
            except KeyNotFoundError:
                continue
            if entry.value:
                found.append(self._order_decoder.decode(entry.value))
        return found


def _apply(book: SymbolBook, order: PaperOrder) -> SymbolBook:
    signed = order.filled_size if order.side == "buy" else -order.filled_size
    recent = dict(book.recent)
    recent[order.client_order_id] = order
    while len(recent) > RECENT_ORDERS_PER_SYMBOL:
        recent.pop(next(iter(recent)))
    return SymbolBook(
        symbol=book.symbol,
        size=round(book.size + signed, 12),
        cash_usd=book.cash_usd - signed * (order.avg_price or 0.0) - order.fees_usd,
        fees_usd=book.fees_usd + order.fees_usd,
        order_count=book.order_count + 1,
        recent=recent,
    )
