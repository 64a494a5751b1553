"""One atomic change of the venue, built on top of the state without touching it.

A :class:`Step` collects new versions of orders and accounts, new fills and fences;
:meth:`Step.finish` numbers the live events it causes (per account) and returns the
journal entry to append. Only once the entry is stored does the server apply it to
its state and send the events, so a failed write changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from intentbus.executor.base import VenueFill, VenueOrder
from intentbus.schemas import Liquidity, OrderState, Side
from intentbus.venues.paper.constants import SIZE_EPSILON
from intentbus.venues.paper.protocol import PaperEvent
from intentbus.venues.paper.records import (
    AccountRecord,
    FenceRecord,
    JournalEntry,
    MarkRecord,
    OrderKey,
    OrderRecord,
    PositionRecord,
    VenueState,
)


def clean(value: float) -> float:
    """Round away float noise (sizes and cash stay readable after many partial fills)."""
    rounded = round(value, 12)
    return 0.0 if abs(rounded) < SIZE_EPSILON else rounded


class Step:
    """Changes made by one request, mark update or timer tick."""

    def __init__(self, state: VenueState, venue: str, now: datetime) -> None:
        self.state = state
        self.venue = venue
        self.now = now
        self.orders: dict[OrderKey, OrderRecord] = {}
        self.accounts: dict[str, AccountRecord] = {}
        self.fills: list[VenueFill] = []
        self.fences: list[FenceRecord] = []
        self.mark: MarkRecord | None = None  # the mark this step matched, if any
        self.order_count = state.order_count
        self.fill_count = state.fill_count

    def checkpoint(self) -> tuple[Any, ...]:
        """Return what :meth:`rollback` needs to undo the changes made after this call."""
        return (
            dict(self.orders),
            dict(self.accounts),
            len(self.fills),
            len(self.fences),
            self.order_count,
            self.fill_count,
            self.mark,
        )

    def rollback(self, saved: tuple[Any, ...]) -> None:
        """Undo every change made since ``saved`` was taken."""
        orders, accounts, fills, fences, self.order_count, self.fill_count, self.mark = saved
        self.orders, self.accounts = orders, accounts
        del self.fills[fills:]
        del self.fences[fences:]

    # reads through the step ------------------------------------------------------------
    def order(self, key: OrderKey) -> OrderRecord | None:
        """Return the order as this step left it."""
        return self.orders.get(key) or self.state.orders.get(key)

    def account(self, account: str, book_id: str) -> AccountRecord:
        """Return the account as this step left it (a new one if it never traded)."""
        found = self.accounts.get(account) or self.state.accounts.get(account)
        return found if found is not None else AccountRecord(account=account, book_id=book_id)

    def is_fenced(self, key: OrderKey) -> bool:
        """Say whether the client order id was fenced."""
        return key in self.state.fences or any(
            (f.account, f.client_order_id) == key for f in self.fences
        )

    # writes ----------------------------------------------------------------------------
    def next_order_number(self) -> int:
        """Return a new venue order number."""
        self.order_count += 1
        return self.order_count

    def put(self, record: OrderRecord) -> OrderRecord:
        """Record a new version of an order."""
        self.orders[record.key] = record
        return record

    def update(self, record: OrderRecord, **changes: object) -> OrderRecord:
        """Record an order with ``changes`` to its client view, stamped now."""
        order = msgspec.structs.replace(record.order, updated_at=self.now, **changes)
        return self.put(msgspec.structs.replace(record, order=order))

    def fence(self, account: str, client_order_id: str) -> None:
        """Make a client order id unusable."""
        self.fences.append(
            FenceRecord(account=account, client_order_id=client_order_id, at=self.now)
        )

    def fill(
        self, record: OrderRecord, size: float, price: float, liquidity: Liquidity, fee_bps: float
    ) -> OrderRecord:
        """Fill ``size`` of the order at ``price``: the fill, the account, the order."""
        order = record.order
        fee = clean(size * price * fee_bps / 10_000)
        signed = size if order.side is Side.BUY else -size
        account = self.account(order.account, record.book_id)
        position = account.positions.get(order.symbol, PositionRecord())
        moved, closed_pnl = move_position(position, signed, price)
        positions = {**account.positions, order.symbol: moved}
        self.accounts[account.account] = msgspec.structs.replace(
            account,
            cash_usd=clean(account.cash_usd - signed * price - fee),
            fees_usd=clean(account.fees_usd + fee),
            positions=positions,
        )
        self.fill_count += 1
        self.fills.append(
            VenueFill(
                venue_fill_id=f"{self.venue}-f{self.fill_count}",
                client_order_id=order.client_order_id,
                account=order.account,
                symbol=order.symbol,
                side=order.side,
                size=size,
                price=price,
                fee=fee,
                liquidity=liquidity,
                venue_time=self.now,
                venue_order_id=order.venue_order_id,
                closed_pnl=closed_pnl,
            )
        )
        filled = clean(order.filled_size + size)
        avg = ((order.avg_price or 0.0) * order.filled_size + price * size) / filled
        done = order.size - filled <= SIZE_EPSILON
        return self.update(
            record,
            filled_size=filled,
            avg_price=avg,
            fees_usd=clean(order.fees_usd + fee),
            state=OrderState.FILLED if done else OrderState.PARTIALLY_FILLED,
        )

    # closing ---------------------------------------------------------------------------
    def finish(self) -> tuple[JournalEntry | None, list[PaperEvent]]:
        """Return the journal entry (None: nothing changed) and the numbered live events.

        Fills come first, then the orders' new states: a client sees an order final only
        after every fill of it.
        """
        if not (self.orders or self.accounts or self.fills or self.fences):
            return None, []
        events: list[PaperEvent] = []
        items: list[tuple[str, str, VenueOrder | VenueFill]] = [
            (fill.account, self.orders[(fill.account, fill.client_order_id)].book_id, fill)
            for fill in self.fills
        ]
        items += [(r.order.account, r.book_id, r.order) for r in self.orders.values()]
        for account_name, book_id, item in items:
            account = self.account(account_name, book_id)
            account = msgspec.structs.replace(account, event_seq=account.event_seq + 1)
            self.accounts[account_name] = account
            seq, at = account.event_seq, self.now
            if isinstance(item, VenueFill):
                events.append(PaperEvent(account=account_name, seq=seq, at=at, fill=item))
            else:
                events.append(PaperEvent(account=account_name, seq=seq, at=at, order=item))
        entry = JournalEntry(
            at=self.now,
            order_count=self.order_count,
            fill_count=self.fill_count,
            orders=tuple(self.orders.values()),
            accounts=tuple(self.accounts.values()),
            fills=tuple(self.fills),
            fences=tuple(self.fences),
            marks=(self.mark,) if self.mark is not None else (),
        )
        return entry, events


def move_position(
    position: PositionRecord, signed: float, price: float
) -> tuple[PositionRecord, float]:
    """Apply a signed fill to a net position; return it and the fill's closed PnL.

    Like Hyperliquid's ``closedPnl`` (fees excluded): the part of the fill that reduces
    the position realises ``(price - entry) * reduced`` for a long (the opposite for a
    short); the part beyond the position opens the other way at ``price``.
    """
    size, entry = position.size, position.entry_price
    if size == 0 or (size > 0) == (signed > 0):
        new_size = clean(size + signed)
        new_entry = (abs(size) * entry + abs(signed) * price) / abs(new_size)
        return msgspec.structs.replace(position, size=new_size, entry_price=new_entry), 0.0
    reduced = min(abs(signed), abs(size))
    closed = clean((price - entry) * reduced * (1 if size > 0 else -1))
    new_size = clean(size + signed)
    if new_size == 0:
        new_entry = 0.0
    elif (new_size > 0) == (size > 0):
        new_entry = entry
    else:
        new_entry = price
    realized = clean(position.realized_pnl_usd + closed)
    return PositionRecord(size=new_size, entry_price=new_entry, realized_pnl_usd=realized), closed
