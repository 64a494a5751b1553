"""The live feed: the venue's WebSocket, reconnected, with a ``VenueGap`` after every subscribe.

The venue neither replays what was sent while a client was away nor numbers its
messages (``userFills`` repeats a snapshot of recent fills on subscribe, which may not
reach back far enough). So every (re)subscription is followed by a :class:`VenueGap`
since the connection was lost (or the feed started): the runtime then asks
``order_status`` and ``fills_since`` and deduplicates fills by ``tid``. One connection
per account (``orderUpdates`` messages do not name the user) and one for ``allMids``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from intentbus.executor.base import EventSink, VenueFill, VenueGap, VenueOrder
from intentbus.venues.hyperliquid.parsing import parse_fill, parse_mids, parse_order

log = logging.getLogger(__name__)
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 2.0
PING_S = 30.0


class Connection:
    """One reconnecting WebSocket connection with fixed subscriptions."""

    def __init__(
        self,
        url: str,
        subscriptions: list[dict[str, Any]],
        handle: Callable[[dict[str, Any]], Awaitable[None]],
        on_subscribed: Callable[[datetime], Awaitable[None]],
    ) -> None:
        self.url = url
        self.subscriptions = subscriptions
        self.handle = handle
        self.on_subscribed = on_subscribed
        self.allowed = asyncio.Event()
        self.allowed.set()
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, session: aiohttp.ClientSession) -> None:
        """Start connecting."""
        self._task = asyncio.create_task(self._run(session))

    async def stop(self) -> None:
        """Close and stop reconnecting."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def pause(self) -> None:
        """Close the connection and stay away until :meth:`resume` (a test hook)."""
        self.allowed.clear()
        self.connected.clear()
        if self._ws is not None:
            await self._ws.close()

    def resume(self) -> None:
        """Connect again."""
        self.allowed.set()

    async def _run(self, session: aiohttp.ClientSession) -> None:
        lost_at = datetime.now(UTC)
        delay = RECONNECT_MIN_S
        while True:
            await self.allowed.wait()
            try:
                async with session.ws_connect(self.url, heartbeat=PING_S) as ws:
                    self._ws = ws
                    for sub in self.subscriptions:
                        await ws.send_str(json.dumps({"method": "subscribe", "subscription": sub}))
                    delay = RECONNECT_MIN_S
                    await self._read(ws, lost_at)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("venue websocket %s: %r; reconnecting", self.url, exc)
            finally:
                self._ws = None
                self.connected.clear()
            lost_at = datetime.now(UTC)
            self.reconnects += 1
            if self.allowed.is_set():
                await asyncio.sleep(delay)  # reconnect backoff
                delay = min(delay * 2, RECONNECT_MAX_S)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, lost_at: datetime) -> None:
        pending = len(self.subscriptions)
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT or not message.data.startswith("{"):
                continue
            data = json.loads(message.data)
            if data.get("channel") == "subscriptionResponse":
                pending -= 1
                if pending == 0:  # live from here: ask about what came before
                    self.connected.set()
                    await self.on_subscribed(lost_at)
                continue
            try:
                await self.handle(data)
            except Exception:
                log.exception("could not handle venue message %s", message.data[:200])


class VenueFeed:
    """Mids for every coin, and order updates and fills for each account."""

    def __init__(
        self,
        ws_url: str,
        accounts: list[str],
        on_mids: Callable[[dict[str, float]], None],
        enrich: Callable[[VenueOrder, int | None], Awaitable[VenueOrder]],
        name_fill: Callable[[VenueFill], VenueFill],
    ) -> None:
        self._sink: EventSink | None = None
        self._enrich = enrich
        self._name_fill = name_fill
        self._on_mids = on_mids
        self._session: aiohttp.ClientSession | None = None
        self.mids = Connection(ws_url, [{"type": "allMids"}], self._handle_mids, _nothing)
        self.accounts = {
            account: Connection(
                ws_url,
                [{"type": "orderUpdates", "user": account}, {"type": "userFills", "user": account}],
                self._account_handler(account),
                self._gap,
            )
            for account in accounts
        }

    def set_sink(self, sink: EventSink) -> None:
        """Route events to ``sink``."""
        self._sink = sink

    async def start(self, timeout_s: float) -> None:
        """Connect everything; wait until the mids and each account are subscribed."""
        self._session = aiohttp.ClientSession()
        for connection in self.connections:
            connection.start(self._session)
        try:
            async with asyncio.timeout(timeout_s):
                for connection in self.connections:
                    await connection.connected.wait()
        except TimeoutError:
            await self.stop()
            raise TimeoutError(f"venue websocket not subscribed within {timeout_s:g}s") from None

    @property
    def connections(self) -> list[Connection]:
        """Return every connection."""
        return [self.mids, *self.accounts.values()]

    async def stop(self) -> None:
        """Close everything."""
        for connection in self.connections:
            await connection.stop()
        if self._session is not None:
            await self._session.close()

    async def _handle_mids(self, data: dict[str, Any]) -> None:
        if data.get("channel") == "allMids":
            self._on_mids(parse_mids(data["data"]))

    def _account_handler(self, account: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def handle(data: dict[str, Any]) -> None:
            if self._sink is None:
                return
            channel = data.get("channel")
            if channel == "orderUpdates":
                for row in data["data"]:
                    order = parse_order(
                        row["order"], row["status"], row["statusTimestamp"], account
                    )
                    placed_ms = row["order"].get("timestamp")
                    await self._sink(await self._enrich(order, placed_ms))
            elif channel == "userFills" and not data["data"].get("isSnapshot"):
                for row in data["data"]["fills"]:
                    await self._sink(self._name_fill(parse_fill(row, account)))

        return handle

    async def _gap(self, since: datetime) -> None:
        if self._sink is not None:
            await self._sink(VenueGap(since=since, reason="venue websocket (re)subscribed"))


async def _nothing(_: datetime) -> None:
    return None
