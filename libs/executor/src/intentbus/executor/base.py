"""The contract every venue executor implements: orders that live.

An intent becomes one venue order that may rest, fill in parts over time, be cancelled
or expire. The runtime (not the venue) sizes the order from the venue's rules and mark
(:mod:`intentbus.executor.sizing`), lets the venue adjust it to its grid (``adjust``),
places it (``place``, idempotent on the client order id), and follows it through the
venue's events (``set_event_sink``): every :class:`VenueOrder` update and every
:class:`VenueFill`. A venue's live feed may drop events while its connection is down,
so after a :class:`VenueGap` (and at start) the runtime asks again: ``order_status`` by
client order id and ``fills_since`` a time, deduplicating fills by their venue fill id.

Accounts: each book maps to one venue account (``account_for``); within one account
the venue keeps one net position per symbol (``net_position``), and EXIT and
reduce-only orders are sized against it.

Constructors do no I/O: connect in ``start()``, release in ``stop()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Replies, Topology
from intentbus.executor.ids import client_order_id
from intentbus.executor.sizing import MarketRules
from intentbus.schemas import (
    ExecutionPlan,
    Liquidity,
    OrderState,
    OrderType,
    Side,
    Skip,
    TimeInForce,
)

__all__ = [
    "BaseExecutor",
    "EventSink",
    "OrderNotFound",
    "VenueContext",
    "VenueEvent",
    "VenueFill",
    "VenueGap",
    "VenueOrder",
    "client_order_id",
]


class VenueOrder(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's view of one order (identified by its client order id).

    ``filled_size``/``avg_price``/``fees_usd`` are cumulative over the order's fills.
    ``reason`` says why a final order ended (rejection text, ``expired``, ...).
    """

    client_order_id: str
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    size: float
    state: OrderState
    price: float | None = None
    reduce_only: bool = False
    filled_size: float = 0.0
    avg_price: float | None = None
    fees_usd: float = 0.0
    venue_order_id: str | None = None
    reason: str = ""
    updated_at: datetime | None = None

    @property
    def open_size(self) -> float:
        """Return what may still fill (0 once the order is final)."""
        return max(self.size - self.filled_size, 0.0) if self.state.is_live else 0.0


class VenueFill(msgspec.Struct, frozen=True, kw_only=True):
    """One fill as the venue reports it; ``venue_fill_id`` is unique per venue.

    ``fee`` is in ``fee_currency`` (a rebate is negative); ``closed_pnl`` is the venue's
    realized PnL of the fill where it reports one.
    """

    venue_fill_id: str
    client_order_id: str
    account: str
    symbol: str
    side: Side
    size: float
    price: float
    fee: float
    liquidity: Liquidity
    venue_time: datetime
    fee_currency: str = "USD"
    venue_order_id: str | None = None
    closed_pnl: float | None = None


class VenueGap(msgspec.Struct, frozen=True, kw_only=True):
    """Say that the live feed may have missed events (it was down since ``since``)."""

    since: datetime
    reason: str = ""


VenueEvent = VenueOrder | VenueFill | VenueGap
EventSink = Callable[[VenueEvent], Awaitable[None]]


class VenueContext(msgspec.Struct, frozen=True, kw_only=True):
    """Handles a venue may use from ``start()``: the bus connection and its topology.

    ``replies``: the runtime's lighter request path (:class:`~intentbus.bus.Replies`),
    for a venue whose API is NATS request/reply.
    """

    nc: Client
    js: JetStreamContext
    topology: Topology
    replies: Replies | None = None


class OrderNotFound(LookupError):
    """Raise when the venue has no order with that client order id (never placed)."""


@runtime_checkable
class BaseExecutor(Protocol):
    """One venue's executor: market rules, marks, orders, fills and accounts."""

    @property
    def venue(self) -> str:
        """Return the venue namespace this executor serves (the intents' ``token_chain``)."""
        ...

    def account_for(self, book_id: str) -> str:
        """Return the venue account that trades ``book_id`` (one account per book)."""
        ...

    def set_event_sink(self, sink: EventSink) -> None:
        """Route every live order update, fill and gap to ``sink`` (set before ``start``)."""
        ...

    async def start(self, context: VenueContext) -> None:
        """Connect to the venue, load market metadata and start the live feed."""
        ...

    async def stop(self) -> None:
        """Release every connection."""
        ...

    def rules(self, symbol: str) -> MarketRules | None:
        """Return the trading rules of ``symbol``, or None when the venue does not list it."""
        ...

    def mark(self, symbol: str) -> float | None:
        """Return the latest mark price of ``symbol``, or None."""
        ...

    def can_trade_now(self, symbol: str) -> bool:
        """Say whether the venue accepts orders for ``symbol`` now."""
        ...

    def adjust(self, plan: ExecutionPlan) -> ExecutionPlan | Skip:
        """Fit a sized plan to the venue's own grid (price ticks, ...), or skip with a reason."""
        ...

    async def place(self, plan: ExecutionPlan) -> VenueOrder:
        """Place the plan's order once; a second call with the same client order id returns it.

        Raise on a transport failure (the order may or may not exist: the runtime asks
        ``order_status`` before anything else). A venue refusal is a ``rejected`` order.
        """
        ...

    async def cancel(self, account: str, symbol: str, client_order_id: str) -> VenueOrder:
        """Cancel the order if it still works and return its state (final or not yet).

        Raise :class:`OrderNotFound` when no such order was ever placed.
        """
        ...

    async def order_status(self, account: str, symbol: str, client_order_id: str) -> VenueOrder:
        """Return the order's current state; raise :class:`OrderNotFound` if never placed."""
        ...

    async def fills_since(self, account: str, since: datetime) -> list[VenueFill]:
        """Return the account's fills at or after ``since``, oldest first."""
        ...

    async def net_position(self, account: str, symbol: str) -> float:
        """Return the account's signed net position in ``symbol`` (long > 0, short < 0)."""
        ...

    async def fence(self, account: str, symbol: str, client_order_id: str) -> VenueOrder | None:
        """Make the client order id unusable from now on; return its order if one exists.

        The runtime fences a claimed order it will not send (the intent expired while a
        replica that claimed it may still be alive), so a stalled replica cannot trade it
        later. ``None`` means it never was and never will be placed. A venue that cannot
        fence raises ``NotImplementedError``: the runtime then reports ``unknown``.
        """
        ...
