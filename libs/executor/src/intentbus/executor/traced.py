"""A venue executor wrapped in telemetry: a span and a duration per venue call.

The runtime wraps whatever venue it runs, so every venue's requests (place, cancel,
status, fills, net, fence) are child spans of the intent (or order) they serve, with
their duration in ``intentbus.venue.call.duration`` by venue, operation and outcome. A
venue client that sends the current trace context along (the paper venue's does) lets
the venue's own spans join the trace.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from opentelemetry.trace import SpanKind, Status, StatusCode

from intentbus import telemetry
from intentbus.executor.base import (
    BaseExecutor,
    EventSink,
    OrderNotFound,
    VenueContext,
    VenueFill,
    VenueOrder,
)
from intentbus.executor.sizing import MarketRules
from intentbus.schemas import ExecutionPlan, Skip
from intentbus.telemetry import instruments

R = TypeVar("R")


class TracedVenue:
    """Forward every call to ``inner``; time and trace the ones that reach the venue."""

    def __init__(self, inner: BaseExecutor) -> None:
        self.inner = inner

    async def _call(self, operation: str, call: Callable[[], Awaitable[R]], **attrs: str) -> R:
        if not (telemetry.tracing_on() or telemetry.metrics_on()):
            return await call()  # off: nothing to record (the venue still gets the context)
        venue = self.inner.venue
        attributes = {"intentbus.venue": venue, "intentbus.venue.operation": operation, **attrs}
        outcome = "ok"
        started = time.perf_counter()
        tracer = telemetry.tracer()
        with tracer.start_as_current_span(
            f"venue {operation}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                return await call()
            except OrderNotFound:
                outcome = "not_found"
                raise
            except Exception as exc:
                outcome = "error"
                span.set_status(Status(StatusCode.ERROR, repr(exc)))
                raise
            finally:
                elapsed = time.perf_counter() - started
                labels = {"venue": venue, "operation": operation, "outcome": outcome}
                instruments.venue_call_duration().record(elapsed, labels)

    # the venue's identity and local state: no call, no span -------------------------
    @property
    def venue(self) -> str:
        """Return the venue namespace."""
        return self.inner.venue

    def account_for(self, book_id: str) -> str:
        """Return the account of a book."""
        return self.inner.account_for(book_id)

    def set_event_sink(self, sink: EventSink) -> None:
        """Route the venue's live events to ``sink``."""
        self.inner.set_event_sink(sink)

    async def start(self, context: VenueContext) -> None:
        """Start the venue client."""
        await self.inner.start(context)

    async def stop(self) -> None:
        """Stop the venue client."""
        await self.inner.stop()

    def rules(self, symbol: str) -> MarketRules | None:
        """Return the symbol's rules."""
        return self.inner.rules(symbol)

    def mark(self, symbol: str) -> float | None:
        """Return the symbol's mark."""
        return self.inner.mark(symbol)

    def can_trade_now(self, symbol: str) -> bool:
        """Say whether the symbol trades now."""
        return self.inner.can_trade_now(symbol)

    def adjust(self, plan: ExecutionPlan) -> ExecutionPlan | Skip:
        """Fit a plan to the venue's grid."""
        return self.inner.adjust(plan)

    # requests to the venue ------------------------------------------------------------
    async def place(self, plan: ExecutionPlan) -> VenueOrder:
        """Place the plan's order."""
        cloid = plan.client_order_id
        return await self._call("place", lambda: self.inner.place(plan), client_order_id=cloid)

    async def cancel(self, account: str, symbol: str, client_order_id: str) -> VenueOrder:
        """Cancel an order."""
        return await self._call(
            "cancel",
            lambda: self.inner.cancel(account, symbol, client_order_id),
            client_order_id=client_order_id,
        )

    async def order_status(self, account: str, symbol: str, client_order_id: str) -> VenueOrder:
        """Ask for an order's state."""
        return await self._call(
            "order_status",
            lambda: self.inner.order_status(account, symbol, client_order_id),
            client_order_id=client_order_id,
        )

    async def fills_since(self, account: str, since: datetime) -> list[VenueFill]:
        """Ask for an account's fills."""
        return await self._call("fills_since", lambda: self.inner.fills_since(account, since))

    async def net_position(self, account: str, symbol: str) -> float:
        """Ask for an account's net position."""
        return await self._call(
            "net_position", lambda: self.inner.net_position(account, symbol), symbol=symbol
        )

    async def fence(self, account: str, symbol: str, client_order_id: str) -> VenueOrder | None:
        """Fence a client order id."""
        return await self._call(
            "fence",
            lambda: self.inner.fence(account, symbol, client_order_id),
            client_order_id=client_order_id,
        )
