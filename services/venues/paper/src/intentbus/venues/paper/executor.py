"""PaperExecutor: the :class:`~intentbus.executor.base.BaseExecutor` of the paper venue.

A client of a :class:`~intentbus.venues.paper.server.PaperVenueServer` (started with
``intentbus paper-venue``): at start it loads the venue's rules, accounts and prices,
follows the marks and subscribes to every account's live events; orders, cancels,
status, fills and nets are requests to the server. The market options (prices, fees,
depth, accounts...) belong to the server; the executor's own options are below.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from intentbus.bus import check_token
from intentbus.executor.base import EventSink, OrderNotFound, VenueContext, VenueFill, VenueOrder
from intentbus.executor.sizing import MarketRules
from intentbus.schemas import ExecutionPlan, OrderType, Skip, SkipReason
from intentbus.venues.paper import constants as c
from intentbus.venues.paper.client import PaperVenueClient, VenueUnavailable
from intentbus.venues.paper.config import rules_from
from intentbus.venues.paper.feed import EventFeed
from intentbus.venues.paper.marks import MarkBook
from intentbus.venues.paper.parsing import OptionError, parse_float
from intentbus.venues.paper.protocol import MetaReply, PaperSubjects

EXECUTOR_OPTIONS = ("name", "timeout_s", "connect_timeout_s", "api_key")


@dataclass(frozen=True, kw_only=True)
class PaperExecutorOptions:
    """The executor's options: which venue server, and how long to wait for it."""

    name: str = c.VENUE
    timeout_s: float = c.DEFAULT_TIMEOUT_S
    connect_timeout_s: float = 30.0
    # A venue key, as a real venue's executor takes one (env INTENTBUS_PAPER_API_KEY):
    # the paper venue needs none and it is sent nowhere; it is kept out of reprs and logs.
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        try:
            check_token("venue", self.name)
        except ValueError as exc:
            raise OptionError(f"option name: {exc}") from None
        if not self.timeout_s > 0 or self.connect_timeout_s < 0:
            raise OptionError("timeout_s must be > 0 and connect_timeout_s >= 0")

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> PaperExecutorOptions:
        """Build the options from ``KEY=VALUE`` strings; unknown keys are an error."""
        unknown = sorted(set(options) - set(EXECUTOR_OPTIONS))
        if unknown:
            raise OptionError(
                f"unknown paper executor option(s): {', '.join(unknown)}; known: "
                f"{', '.join(EXECUTOR_OPTIONS)} (prices, fees, depth, accounts... are options "
                "of the venue server: intentbus paper-venue --option KEY=VALUE)"
            )
        return cls(
            name=options.get("name", c.VENUE),
            timeout_s=parse_float(
                "timeout_s", options.get("timeout_s", str(c.DEFAULT_TIMEOUT_S)), minimum=0.0
            ),
            connect_timeout_s=parse_float(
                "connect_timeout_s", options.get("connect_timeout_s", "30"), minimum=0.0
            ),
            api_key=options.get("api_key") or None,
        )


class PaperExecutor:
    """Trade on a paper venue server through its request/reply API and live feed."""

    def __init__(self, options: PaperExecutorOptions | None = None) -> None:
        self.options = options or PaperExecutorOptions()
        self.marks = MarkBook(self.options.name, {})
        self._meta: MetaReply | None = None
        self._client: PaperVenueClient | None = None
        self._feed: EventFeed | None = None
        self._sink: EventSink | None = None
        self._context: VenueContext | None = None

    @property
    def venue(self) -> str:
        """Return the venue namespace (the venue server's name)."""
        return self.options.name

    @property
    def client(self) -> PaperVenueClient:
        """Return the server client (after :meth:`start`)."""
        if self._client is None:
            raise RuntimeError("PaperExecutor.start() was not called")
        return self._client

    def account_for(self, book_id: str) -> str:
        """Return the book's account: as the server maps it, else the book's own name."""
        accounts = self._meta.accounts if self._meta is not None else {}
        return accounts.get(book_id, book_id)

    def set_event_sink(self, sink: EventSink) -> None:
        """Route live order updates, fills and gaps to ``sink``."""
        self._sink = sink
        if self._feed is not None:
            self._feed.set_sink(sink)

    async def start(self, context: VenueContext) -> None:
        """Reach the server (waiting up to ``connect_timeout_s``), follow marks and events."""
        self._context = context
        subjects = PaperSubjects(context.topology, self.venue)
        self._client = PaperVenueClient(
            context.nc, subjects, self.options.timeout_s, replies=context.replies
        )
        self._meta = await self._wait_for_server()
        self.marks = MarkBook(self.venue, self._meta.prices)
        if self._meta.follow_marks:
            await self.marks.follow(context.js, context.topology)
        self._feed = EventFeed(context.nc, subjects, self._event_seqs)
        if self._sink is not None:
            self._feed.set_sink(self._sink)
        await self._feed.start()

    async def stop(self) -> None:
        """Stop the feed and the marks."""
        self._context = None
        if self._feed is not None:
            await self._feed.stop()
        await self.marks.close()

    @property
    def following_marks(self) -> bool:
        """Say whether this executor is started and connected (its marks are current)."""
        context = self._context
        return context is not None and self._meta is not None and context.nc.is_connected

    async def _wait_for_server(self) -> MetaReply:
        deadline = time.monotonic() + self.options.connect_timeout_s
        delay = 0.05
        while True:
            try:
                return await self.client.meta()
            except VenueUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)  # the venue server may start after its executors
            delay = min(delay * 2, 1.0)

    async def _event_seqs(self) -> dict[str, int]:
        return (await self.client.meta()).event_seqs

    # market ----------------------------------------------------------------------------
    def rules(self, symbol: str) -> MarketRules | None:
        """Return the symbol's rules (the paper venue lists every symbol)."""
        return rules_from(self._meta.rules, symbol) if self._meta is not None else None

    def mark(self, symbol: str) -> float | None:
        """Return the latest mark of ``symbol``."""
        return self.marks.price(symbol)

    def can_trade_now(self, symbol: str) -> bool:
        """Say whether ``symbol`` can trade: the paper venue is open whenever it has a mark."""
        return self.marks.price(symbol) is not None

    def adjust(self, plan: ExecutionPlan) -> ExecutionPlan | Skip:
        """Keep the plan (no price grid on paper), but refuse a plan the venue would refuse."""
        if plan.order_type is OrderType.LIMIT and not (plan.price or 0) > 0:
            detail = f"limit price {plan.price} is not positive"
            return Skip(reason=SkipReason.NO_MARK.value, detail=detail)
        if not plan.size > 0:
            return Skip(reason=SkipReason.ZERO_SIZE.value, detail=f"size {plan.size:g}")
        return plan

    # orders ----------------------------------------------------------------------------
    async def place(self, plan: ExecutionPlan) -> VenueOrder:
        """Place the plan's order once; a known client order id returns its order."""
        return await self.client.place(plan)

    async def cancel(self, account: str, symbol: str, client_order_id: str) -> VenueOrder:
        """Cancel the order if it still works; raise ``OrderNotFound`` if never placed."""
        return await self._existing("cancel", account, symbol, client_order_id)

    async def order_status(self, account: str, symbol: str, client_order_id: str) -> VenueOrder:
        """Return the order's state; raise ``OrderNotFound`` if never placed."""
        return await self._existing("status", account, symbol, client_order_id)

    async def _existing(self, op: str, account: str, symbol: str, cloid: str) -> VenueOrder:
        order = await self.client.order(op, account, symbol, cloid)
        if order is None:
            raise OrderNotFound(f"no order {cloid} on account {account}")
        return order

    async def fills_since(self, account: str, since: datetime) -> list[VenueFill]:
        """Return the account's fills at or after ``since``, oldest first."""
        return await self.client.fills_since(account, since)

    async def net_position(self, account: str, symbol: str) -> float:
        """Return the account's signed net position in ``symbol``."""
        return await self.client.net(account, symbol)

    async def fence(self, account: str, symbol: str, client_order_id: str) -> VenueOrder | None:
        """Make the client order id unusable; return its order if one exists."""
        return await self.client.order("fence", account, symbol, client_order_id)

    # test hooks ------------------------------------------------------------------------
    async def drop_feed(self) -> None:
        """Drop the live feed (events sent meanwhile are lost)."""
        if self._feed is not None:
            await self._feed.stop()

    async def restore_feed(self) -> None:
        """Subscribe again and emit a ``VenueGap`` since the last event heard."""
        if self._feed is not None:
            await self._feed.resume("the feed was dropped and restored")
