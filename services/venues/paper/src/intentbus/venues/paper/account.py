"""The paper venue's own account, kept in a NATS KV bucket like a real venue keeps it.

Keys:

- ``order.<client order id>``: the idempotency gate and the order. It is *created*
  (``create()``: fails when it exists) as a small ``pending`` marker before anything
  fills, so at most one placement per client order id ever gets past the gate, and is
  then overwritten with the final :class:`PaperOrder` once the fill is committed.
- ``book.<symbol>``: the symbol's signed position, cash, fees, order count and only the
  orders whose fill is applied but whose order key may still be ``pending``
  (``unfinalised``: a handful at most, pruned on the next commit).

Placing an order costs three small writes and, while this process' cached copy of the
book is current, no read: create the gate; commit the fill by one compare-and-set on the
book (the order goes into ``unfinalised`` with the position change); write the final
order. The book's compare-and-set is the single point where a fill happens, so:

- a crash after the gate but before the commit leaves a ``pending`` key and a book without
  the order: :meth:`PaperAccount.order` reports it as never placed, and a second
  placement with the same client order id fills it (once);
- a crash after the commit leaves the order in ``unfinalised``: :meth:`PaperAccount.order`
  and a second placement find it there, finalise the order key and return it;
- an order is pruned from ``unfinalised`` only after its order key holds the final order,
  so "not in the book and the key still pending" always means "not filled".

A placement that did not create the gate (a second one, or a racing one) only commits a
fill on a book state it observed before seeing the key ``pending``; with the rule above
that proves the order was not filled in that state, and the compare-and-set proves the
state is still current. Books written by the previous layout (every recent order inside
the book) are migrated on first read: their orders get their order keys first.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from intentbus.venues.paper.constants import UNFINALISED_ORDERS_PER_SYMBOL

_SAFE = re.compile(r"^[A-Za-z0-9_=-]{1,200}$")
_PENDING_PREFIX = b'{"pending":'


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


class PendingOrder(msgspec.Struct, frozen=True, kw_only=True):
    """The gate of a client order id: taken, its fill not (yet) known to be final.

    ``pending`` must stay the first field: readers tell a marker from a final order by
    the encoded prefix ``{"pending":``.
    """

    pending: str
    symbol: str
    since: datetime


class SymbolBook(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The account's state in one symbol: signed position, cash flow, fees, order count.

    ``unfinalised``: orders whose fill is applied here but whose order key may still be
    ``pending``. ``recent`` is only read, from books of the previous layout.
    """

    symbol: str
    size: float = 0.0
    cash_usd: float = 0.0
    fees_usd: float = 0.0
    order_count: int = 0
    unfinalised: dict[str, PaperOrder] = msgspec.field(default_factory=dict)
    recent: dict[str, PaperOrder] = msgspec.field(default_factory=dict)


Fill = Callable[[SymbolBook], PaperOrder]
_Known = tuple[SymbolBook, int | None]  # a book and its KV revision (None: no key yet)


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
    """Read and change the paper account atomically.

    Several accounts (processes) may share one bucket: every fill is a compare-and-set,
    and the cached book of this instance is only a guess a failed compare-and-set corrects.
    """

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._book_decoder = msgspec.json.Decoder(SymbolBook)
        self._order_decoder = msgspec.json.Decoder(PaperOrder)
        self._pending_decoder = msgspec.json.Decoder(PendingOrder)
        self._books: dict[str, _Known] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Per symbol: client order ids whose order key this instance made final while the
        # book may still list them in ``unfinalised`` (dropped from it on the next commit).
        self._finalised: dict[str, set[str]] = {}

    # reads ----------------------------------------------------------------------
    async def book(self, symbol: str) -> SymbolBook:
        """Return a symbol's book (empty when it never traded)."""
        book, _ = await self._read_book(symbol)
        return book

    async def _read_book(self, symbol: str) -> _Known:
        while True:
            try:
                entry = await self._kv.get(book_key(symbol))
            except KeyNotFoundError:
                known: _Known = (SymbolBook(symbol=symbol), None)
            else:
                if not entry.value:
                    known = (SymbolBook(symbol=symbol), None)
                else:
                    known = (self._book_decoder.decode(entry.value), entry.revision)
            if not known[0].recent:
                self._books[symbol] = known
                return known
            await self._migrate(symbol, known)

    async def _migrate(self, symbol: str, legacy: _Known) -> None:
        """Give a previous-layout book's orders their order keys, then drop them from it."""
        book, revision = legacy
        for order in book.recent.values():
            with contextlib.suppress(KeyWrongLastSequenceError):  # already has its key
                await self._kv.create(order_key(order.client_order_id), msgspec.json.encode(order))
        migrated = msgspec.structs.replace(book, recent={})
        with contextlib.suppress(KeyWrongLastSequenceError):  # changed meanwhile: re-read
            await self._kv.update(book_key(symbol), msgspec.json.encode(migrated), last=revision)

    async def _read_order(self, client_order_id: str) -> PaperOrder | PendingOrder | None:
        try:
            entry = await self._kv.get(order_key(client_order_id))
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        if entry.value.startswith(_PENDING_PREFIX):
            return self._pending_decoder.decode(entry.value)
        return self._order_decoder.decode(entry.value)

    async def order(self, client_order_id: str, symbol: str) -> PaperOrder | None:
        """Return the order with this client order id, or None if it was never filled.

        Exact: an order whose fill is committed is always returned (its key is finalised
        here if its placer stopped before doing it); None means no fill was committed.
        """
        if symbol not in self._books:
            await self._read_book(symbol)  # a previous-layout book is migrated first
        found = await self._read_order(client_order_id)
        if isinstance(found, PaperOrder):
            self._final(symbol, client_order_id)
        if not isinstance(found, PendingOrder):
            return found
        # Pending: the fill is committed iff the book lists it (it leaves the book only
        # after the key is final, hence the second look at the key).
        book, _ = await self._read_book(symbol)
        applied = book.unfinalised.get(client_order_id)
        if applied is not None:
            await self._finalise(symbol, applied)
            return applied
        again = await self._read_order(client_order_id)
        if isinstance(again, PaperOrder):
            self._final(symbol, client_order_id)
            return again
        return None

    async def orders(self) -> list[PaperOrder]:
        """Return every filled order (pending keys whose fill is not committed are left out)."""
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
            if not entry.value:
                continue
            if entry.value.startswith(_PENDING_PREFIX):
                marker = self._pending_decoder.decode(entry.value)
                order = await self.order(marker.pending, marker.symbol)
                if order is not None:
                    found.append(order)
            else:
                found.append(self._order_decoder.decode(entry.value))
        return found

    # placing --------------------------------------------------------------------
    async def place(self, client_order_id: str, symbol: str, fill: Fill) -> tuple[PaperOrder, bool]:
        """Place an order once: return it and whether this call committed its fill.

        ``fill`` computes the order from the current book; the fill is committed by one
        compare-and-set on the book, retried on a concurrent change. Placements of one
        symbol in this instance take turns (they would only conflict on the book).
        """
        async with self._locks.setdefault(symbol, asyncio.Lock()):
            # Observed before the gate: a state in which this order cannot be filled.
            known = self._books.get(symbol) or await self._read_book(symbol)
            marker = PendingOrder(pending=client_order_id, symbol=symbol, since=datetime.now(UTC))
            try:
                await self._kv.create(order_key(client_order_id), msgspec.json.encode(marker))
            except KeyWrongLastSequenceError:
                existing = await self._read_order(client_order_id)
                if isinstance(existing, PaperOrder):
                    self._final(symbol, client_order_id)
                    return existing, False
                if existing is None:  # order keys are never deleted
                    raise RuntimeError(f"the order key of {client_order_id} vanished") from None
                # Pending: another placement (live or stopped) took the gate. ``known`` was
                # observed before the key was seen pending, so committing on it is safe.
            order, placed, final = await self._commit(client_order_id, symbol, fill, known)
        if not final:
            await self._finalise(symbol, order)
        return order, placed

    async def _commit(
        self, client_order_id: str, symbol: str, fill: Fill, known: _Known
    ) -> tuple[PaperOrder, bool, bool]:
        """Commit the fill unless it is committed: (order, committed here, key final)."""
        current: _Known | PaperOrder = known
        while True:
            if isinstance(current, PaperOrder):
                self._final(symbol, client_order_id)
                return current, False, True
            book, revision = current
            applied = book.unfinalised.get(client_order_id)
            if applied is not None:
                return applied, False, False
            order = fill(book)
            drop = await self._prunable(symbol, book)
            updated = _apply(book, order, drop)
            payload = msgspec.json.encode(updated)
            try:
                if revision is None:
                    new_revision = await self._kv.create(book_key(symbol), payload)
                else:
                    new_revision = await self._kv.update(book_key(symbol), payload, last=revision)
            except KeyWrongLastSequenceError:
                current = await self._checked_book(client_order_id, symbol)
                continue
            self._books[symbol] = (updated, new_revision)
            mine = self._finalised.get(symbol)
            if mine:  # forget what left the book (pruned now or by another instance)
                mine.intersection_update(updated.unfinalised)
            return order, True, False

    async def _checked_book(self, client_order_id: str, symbol: str) -> _Known | PaperOrder:
        """Return a book state safe to commit the order on, or the order if it is final.

        Read the book, then the key: a key still pending then was not final when the book
        was read, so the order was not pruned from it: it is listed there or not filled.
        """
        known = await self._read_book(symbol)
        if client_order_id in known[0].unfinalised:
            return known
        existing = await self._read_order(client_order_id)
        return existing if isinstance(existing, PaperOrder) else known

    async def _prunable(self, symbol: str, book: SymbolBook) -> set[str]:
        """Return the orders the next commit may drop from ``unfinalised`` (keys final)."""
        if not book.unfinalised:
            return set()
        mine = self._finalised.get(symbol, set())
        others = [o for cloid, o in book.unfinalised.items() if cloid not in mine]
        if len(others) >= UNFINALISED_ORDERS_PER_SYMBOL:
            # Left by placers that stopped (or are slow): finalising is idempotent.
            await asyncio.gather(*(self._finalise(symbol, order) for order in others))
        return self._finalised.get(symbol, set()) & book.unfinalised.keys()

    async def _finalise(self, symbol: str, order: PaperOrder) -> None:
        """Write the final order into its key; only then may it leave the book."""
        await self._kv.put(order_key(order.client_order_id), msgspec.json.encode(order))
        self._final(symbol, order.client_order_id)

    def _final(self, symbol: str, client_order_id: str) -> None:
        """Note that the order key is final: the next commit may drop it from the book."""
        self._finalised.setdefault(symbol, set()).add(client_order_id)


def _apply(book: SymbolBook, order: PaperOrder, drop: set[str]) -> SymbolBook:
    signed = order.filled_size if order.side == "buy" else -order.filled_size
    unfinalised = {c: o for c, o in book.unfinalised.items() if c not in drop}
    unfinalised[order.client_order_id] = order
    return SymbolBook(
        symbol=book.symbol,
        size=round(book.size + signed, 12),
        cash_usd=book.cash_usd - signed * (order.avg_price or 0.0) - order.fees_usd,
        fees_usd=book.fees_usd + order.fees_usd,
        order_count=book.order_count + 1,
        unfinalised=unfinalised,
    )
