"""HyperliquidExecutor: the :class:`~intentbus.executor.base.BaseExecutor` of Hyperliquid.

Orders are signed by an API wallet (or the account's own key) through the official SDK
(:mod:`.client`), each book trading its account, sub-account or vault (``vaultAddress``).
``place`` is idempotent on the client order id (``cloid``): it asks ``orderStatus`` by
cloid before sending, and every order action carries ``expiresAfter`` (at most
``order_window_s`` ahead, never past the intent's deadline), so an order whose answer
was lost can be asked about once that time has passed, and resent only if the venue
never applied it. See :meth:`HyperliquidExecutor.fence` for the fence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import eth_account
import msgspec

from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action
from hyperliquid.utils.types import Cloid
from intentbus.executor.base import EventSink, OrderNotFound, VenueContext, VenueFill, VenueOrder
from intentbus.executor.sizing import MarketRules
from intentbus.schemas import ExecutionPlan, Skip
from intentbus.venues.hyperliquid import constants as c
from intentbus.venues.hyperliquid.client import Expiry, HyperliquidClient, OutcomeUnknown
from intentbus.venues.hyperliquid.config import BookAccount, HyperliquidConfig
from intentbus.venues.hyperliquid.feed import VenueFeed
from intentbus.venues.hyperliquid.orders import placed, refused
from intentbus.venues.hyperliquid.parsing import (
    AssetInfo,
    exchange_error,
    order_statuses,
    parse_fill,
    parse_meta,
    parse_mids,
    parse_order_status,
    parse_positions,
    to_ms,
)
from intentbus.venues.hyperliquid.rules import adjust, market_rules

log = logging.getLogger(__name__)
CLOCK_SKEW_S = 1.0  # allowance for the venue's clock when waiting out an expiresAfter
# The fills of a finished order are looked for up to a day before its last status.
ORDER_LOOKBACK_MS = 86_400_000


class HyperliquidExecutor:
    """Trade on Hyperliquid (or the local venue) through the official SDK."""

    def __init__(self, config: HyperliquidConfig | None = None) -> None:
        self.config = config or HyperliquidConfig()
        self._client: HyperliquidClient | None = None
        self._assets: dict[str, AssetInfo] = {}
        self._mids: dict[str, float] = {}
        self._sink: EventSink | None = None
        self._feed: VenueFeed | None = None
        self._books: dict[str, BookAccount] = {}  # traded address -> book account
        self._leverage: dict[tuple[str, str], tuple[bool, int]] = {}
        self._fenced: set[str] = set()
        self._in_flight: dict[str, int] = {}  # cloid -> expiresAfter of its last send
        self._signer: str | None = None
        self._cloids: dict[str, str] = {}  # venue order id -> cloid, for fills without cloid

    @property
    def venue(self) -> str:
        """Return the venue namespace."""
        return self.config.name

    @property
    def client(self) -> HyperliquidClient:
        """Return the venue client (after :meth:`start`)."""
        if self._client is None:
            raise RuntimeError("HyperliquidExecutor.start() was not called")
        return self._client

    def account_for(self, book_id: str) -> str:
        """Return the address whose positions ``book_id`` holds (its vault, if any)."""
        book = self.config.book_account(book_id, self._signer)
        self._books.setdefault(book.traded, book)
        return book.traded

    def set_event_sink(self, sink: EventSink) -> None:
        """Route live order updates, fills and gaps to ``sink``."""
        self._sink = sink
        if self._feed is not None:
            self._feed.set_sink(sink)

    async def start(self, context: VenueContext | None = None) -> None:
        """Load the key, the universe and the mids; follow the WebSocket for every account."""
        wallet = eth_account.Account.from_key(self.config.secret_key())
        self._signer = str(wallet.address).lower()
        self._client = HyperliquidClient(
            self.config.base_url,
            wallet,
            timeout_s=self.config.timeout_s,
            retries=self.config.retries,
        )
        meta = await self._info({"type": "meta", "dex": ""})
        self._assets = parse_meta(meta)
        self._mids = parse_mids(await self._info({"type": "allMids", "dex": ""}))
        books = {self.config.book_account(b, self._signer) for b in self._book_ids()}
        for book in books:
            self._books[book.traded] = book
        ws_url = "ws" + self.config.base_url.removeprefix("http") + "/ws"
        self._feed = VenueFeed(
            ws_url, sorted(self._books), self._mids.update, self._with_fills, self._name_fill
        )
        if self._sink is not None:
            self._feed.set_sink(self._sink)
        await self._feed.start(self.config.timeout_s * 3)

    def _book_ids(self) -> set[str]:
        return {*self.config.books, *self.config.vaults, "main"}

    @property
    def started(self) -> bool:
        """Say whether the live feed runs (marks are current)."""
        return self._feed is not None

    async def stop(self) -> None:
        """Close the WebSocket connections."""
        if self._feed is not None:
            await self._feed.stop()
            self._feed = None

    # market -----------------------------------------------------------------------------
    def rules(self, symbol: str) -> MarketRules | None:
        """Return the sizing rules of ``symbol`` from ``meta``, or None if not listed."""
        info = self._assets.get(symbol)
        if info is None:
            return None
        return market_rules(
            info,
            default_leverage=self.config.default_leverage,
            max_slippage_bps=self.config.max_slippage_bps,
            passive_offset_bps=self.config.passive_offset_bps,
        )

    def mark(self, symbol: str) -> float | None:
        """Return the latest mid of ``symbol``."""
        return self._mids.get(symbol)

    def can_trade_now(self, symbol: str) -> bool:
        """Say whether ``symbol`` is listed, not delisted and priced."""
        info = self._assets.get(symbol)
        return info is not None and not info.delisted and symbol in self._mids

    def adjust(self, plan: ExecutionPlan) -> ExecutionPlan | Skip:
        """Fit the plan to the venue's grid; skip what the venue would refuse."""
        return adjust(plan, self._assets[plan.symbol])

    # orders -----------------------------------------------------------------------------
    async def place(self, plan: ExecutionPlan) -> VenueOrder:
        """Place the plan's order once; a known cloid returns its order."""
        cloid = plan.client_order_id
        if cloid in self._fenced:
            return refused(plan, "fenced: this client order id never trades")
        await self._wait_in_flight(cloid)
        existing = await self._find(plan.account, cloid)
        if existing is not None:
            return existing
        book = self._book(plan.account)
        info = self._assets[plan.symbol]
        if not plan.reduce_only:
            problem = await self._ensure_leverage(book, info, int(plan.leverage))
            if problem is not None:
                return refused(plan, problem)
        assert plan.price is not None
        request: Any = {
            "coin": plan.symbol,
            "is_buy": plan.side.value == "buy",
            "sz": plan.size,
            "limit_px": plan.price,
            "order_type": {"limit": {"tif": c.TIF_WIRE[plan.time_in_force.value]}},
            "reduce_only": plan.reduce_only,
            "cloid": Cloid(cloid),
        }
        action = order_wires_to_order_action([order_request_to_order_wire(request, info.asset)])
        deadline = to_ms(plan.valid_until) if plan.valid_until is not None else None
        window = Expiry(int(self.config.order_window_s * 1000), deadline)
        window.on_sign = lambda expires: self._in_flight.__setitem__(cloid, expires)
        answer = await asyncio.to_thread(
            self.client.exchange, action, vault=book.vault, expires_after=window
        )
        self._in_flight.pop(cloid, None)
        error = exchange_error(answer)
        if error is not None:
            return refused(plan, error)
        return self._remember(placed(plan, order_statuses(answer)[0]))

    def _remember(self, order: VenueOrder) -> VenueOrder:
        """Keep the order's oid -> cloid (fills may name only the oid)."""
        if order.venue_order_id is not None and not order.client_order_id.startswith("oid:"):
            self._cloids[order.venue_order_id] = order.client_order_id
        return order

    def _name_fill(self, fill: VenueFill) -> VenueFill:
        """Name a fill's order by its cloid when the venue sent only the oid."""
        cloid = self._cloids.get(fill.venue_order_id or "")
        if cloid is None or not fill.client_order_id.startswith("oid:"):
            return fill
        return msgspec.structs.replace(fill, client_order_id=cloid)

    async def _wait_in_flight(self, cloid: str) -> None:
        """Wait until an earlier send whose answer was lost can no longer be applied."""
        expires = self._in_flight.get(cloid)
        if expires is not None:
            wait_s = expires / 1000 + CLOCK_SKEW_S - time.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)  # the venue refuses the old action after this
            self._in_flight.pop(cloid, None)

    async def _ensure_leverage(
        self, book: BookAccount, info: AssetInfo, leverage: int
    ) -> str | None:
        cross = self.config.cross_margin and not info.only_isolated
        key = (book.traded, info.name)
        if self._leverage.get(key) == (cross, leverage):
            return None
        action = {
            "type": "updateLeverage",
            "asset": info.asset,
            "isCross": cross,
            "leverage": leverage,
        }
        answer = await asyncio.to_thread(self.client.exchange, action, vault=book.vault)
        error = exchange_error(answer)
        if error is None:
            self._leverage[key] = (cross, leverage)
        return error

    async def cancel(self, account: str, symbol: str, client_order_id: str) -> VenueOrder:
        """Cancel by cloid; return the order's state; raise ``OrderNotFound`` if never placed."""
        book = self._book(account)
        action = {
            "type": "cancelByCloid",
            "cancels": [{"asset": self._assets[symbol].asset, "cloid": client_order_id}],
        }
        try:
            await asyncio.to_thread(self.client.exchange, action, vault=book.vault)
        except OutcomeUnknown:
            log.warning("cancel of %s: answer lost; asking the venue", client_order_id)
        return await self.order_status(account, symbol, client_order_id)

    async def order_status(self, account: str, symbol: str, client_order_id: str) -> VenueOrder:
        """Return the order's state by cloid; raise ``OrderNotFound`` if never placed."""
        found = await self._find(account, client_order_id)
        if found is None:
            raise OrderNotFound(f"no order {client_order_id} on account {account}")
        return found

    async def _find(self, account: str, cloid: str) -> VenueOrder | None:
        answer = await self._info({"type": "orderStatus", "user": account, "oid": cloid})
        order = parse_order_status(answer, account)
        if order is None:
            return None
        return await self._with_fills(order, int(answer["order"]["order"]["timestamp"]))

    async def _with_fills(self, order: VenueOrder, placed_ms: int | None) -> VenueOrder:
        """Add the average price and fees of a filled order (``orderStatus`` has neither).

        The order's fills are read from its placement (``placed_ms``), or a day before its
        last status when that is unknown.
        """
        self._remember(order)
        if order.filled_size <= 0 or order.state.is_live:
            return order
        if placed_ms is None:
            placed_ms = to_ms(order.updated_at or datetime.now(UTC)) - ORDER_LOOKBACK_MS
        fills = [
            f
            for f in await self._fills(order.account, placed_ms)
            if f.venue_order_id == order.venue_order_id
        ]
        size = sum(f.size for f in fills)
        if size <= 0:
            return order
        return msgspec.structs.replace(
            order,
            avg_price=sum(f.size * f.price for f in fills) / size,
            fees_usd=sum(f.fee for f in fills),
        )

    async def fills_since(self, account: str, since: datetime) -> list[VenueFill]:
        """Return the account's fills at or after ``since``, oldest first, once per ``tid``."""
        return await self._fills(account, to_ms(since))

    async def _fills(self, account: str, start_ms: int) -> list[VenueFill]:
        seen: dict[str, VenueFill] = {}
        while True:
            rows = await self._info(
                {
                    "type": "userFillsByTime",
                    "user": account,
                    "startTime": start_ms,
                    "aggregateByTime": False,
                }
            )
            for row in rows:
                fill = self._name_fill(parse_fill(row, account))
                seen.setdefault(fill.venue_fill_id, fill)
            newest = max((int(r["time"]) for r in rows), default=start_ms)
            if len(rows) < c.FILLS_PAGE or newest == start_ms:
                break  # the last page (a page within one millisecond cannot be paged past)
            start_ms = newest
        return sorted(seen.values(), key=lambda f: (f.venue_time, int(f.venue_fill_id)))

    async def net_position(self, account: str, symbol: str) -> float:
        """Return the account's signed size in ``symbol`` from ``clearinghouseState``."""
        state = await self._info({"type": "clearinghouseState", "user": account, "dex": ""})
        return parse_positions(state).get(symbol, 0.0)

    async def fence(self, account: str, symbol: str, client_order_id: str) -> VenueOrder | None:
        """Make the cloid unusable; return its order if one exists.

        Hyperliquid has no fence. This executor refuses the cloid from now on, waits out
        its own send still in flight, cancels by cloid and asks. Other replicas: every
        order action is signed with ``expiresAfter`` no later than the intent's deadline,
        and the runtime fences only past that deadline, so the venue refuses a stalled
        replica's late send. What remains: the venue's clock running behind ours.
        """
        self._fenced.add(client_order_id)
        await self._wait_in_flight(client_order_id)
        try:
            return await self.cancel(account, symbol, client_order_id)
        except OrderNotFound:
            return None

    # helpers ----------------------------------------------------------------------------
    def _book(self, account: str) -> BookAccount:
        return self._books.get(account) or BookAccount(account)

    async def _info(self, query: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self.client.info, query)

    # test hooks -------------------------------------------------------------------------
    async def drop_feed(self) -> None:
        """Close the account connections and stay away (events meanwhile are missed)."""
        if self._feed is not None:
            for connection in self._feed.accounts.values():
                await connection.pause()

    async def restore_feed(self) -> None:
        """Reconnect; the resubscription is followed by a ``VenueGap``."""
        if self._feed is not None:
            for connection in self._feed.accounts.values():
                connection.resume()
            for connection in self._feed.accounts.values():
                await connection.connected.wait()
