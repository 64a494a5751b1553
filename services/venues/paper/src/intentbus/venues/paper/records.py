"""What the paper venue server keeps: accounts, orders, fences, and its journal entries.

The server is the single writer of this state. Every change is part of one
:class:`JournalEntry` (the changes of one step: a mark update, an expiry tick, or a group
of requests) appended to the venue's journal stream before anyone hears of it (a reply or
an event); a restart replays the journal (:meth:`VenueState.apply`).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from intentbus.executor.base import VenueFill, VenueOrder

OrderKey = tuple[str, str]  # (account, client order id)


class PositionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One account's net position in one symbol: signed size and average entry."""

    size: float = 0.0
    entry_price: float = 0.0
    realized_pnl_usd: float = 0.0


class AccountRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One venue account: the book it trades, cash flow, fees, positions, event counter.

    ``cash_usd`` is the cash flow of every fill (sells add, buys subtract) minus fees;
    ``event_seq`` is the sequence number of the account's last live event.
    """

    account: str
    book_id: str
    cash_usd: float = 0.0
    fees_usd: float = 0.0
    event_seq: int = 0
    positions: dict[str, PositionRecord] = msgspec.field(default_factory=dict)

    def net(self, symbol: str) -> float:
        """Return the signed net position in ``symbol``."""
        found = self.positions.get(symbol)
        return found.size if found is not None else 0.0


class OrderRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One order as the venue keeps it: the client's view plus what only the venue needs.

    ``number`` is the venue's order number: time priority among resting orders.
    """

    order: VenueOrder
    book_id: str
    number: int
    created_at: datetime
    valid_until: datetime | None = None

    @property
    def key(self) -> OrderKey:
        """Return the (account, client order id) key."""
        return (self.order.account, self.order.client_order_id)


class FenceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A client order id made unusable before any order used it."""

    account: str
    client_order_id: str
    at: datetime


class MarkRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A mark that changed the venue: after a restart it is not matched a second time."""

    symbol: str
    price: float
    at: datetime


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One atomic change of the venue: new versions of what changed, and the counters."""

    at: datetime
    order_count: int
    fill_count: int
    orders: tuple[OrderRecord, ...] = ()
    accounts: tuple[AccountRecord, ...] = ()
    fills: tuple[VenueFill, ...] = ()
    fences: tuple[FenceRecord, ...] = ()
    marks: tuple[MarkRecord, ...] = ()


class VenueState:
    """The server's whole state in memory, built by applying journal entries in order."""

    def __init__(self) -> None:
        self.orders: dict[OrderKey, OrderRecord] = {}
        self.live: dict[str, dict[OrderKey, None]] = {}  # symbol -> live orders, in order
        self.accounts: dict[str, AccountRecord] = {}
        self.fills: dict[str, list[VenueFill]] = {}  # account -> fills, oldest first
        self.fences: set[OrderKey] = set()
        self.marks: dict[str, MarkRecord] = {}  # symbol -> last mark that changed something
        self.order_count = 0
        self.fill_count = 0
        self.journal_seq = 0

    def apply(self, entry: JournalEntry, seq: int) -> None:
        """Apply one journal entry (stored at journal sequence ``seq``)."""
        for record in entry.orders:
            key = record.key
            self.orders[key] = record
            live = self.live.setdefault(record.order.symbol, {})
            if record.order.state.is_live:
                live[key] = None
            else:
                live.pop(key, None)
        for account in entry.accounts:
            self.accounts[account.account] = account
        for fill in entry.fills:
            self.fills.setdefault(fill.account, []).append(fill)
        for fence in entry.fences:
            self.fences.add((fence.account, fence.client_order_id))
        for mark in entry.marks:
            self.marks[mark.symbol] = mark
        self.order_count = entry.order_count
        self.fill_count = entry.fill_count
        self.journal_seq = seq

    def live_orders(self, symbol: str) -> list[OrderRecord]:
        """Return the live orders of ``symbol``, oldest first."""
        return [self.orders[key] for key in self.live.get(symbol, {})]

    def symbols_with_live_orders(self) -> list[str]:
        """Return every symbol that has a live order."""
        return [symbol for symbol, live in self.live.items() if live]
