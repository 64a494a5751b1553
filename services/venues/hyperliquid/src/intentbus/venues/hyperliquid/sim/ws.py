"""The local venue's WebSocket hub: subscriptions and the venue's push messages.

``allMids`` (on every mid change), ``l2Book``, ``orderUpdates`` and ``userFills`` (the
first message after subscribing is a snapshot with ``isSnapshot: true``; there is no
replay of what was missed while disconnected and no sequence number, as on the venue).
Each connection has its own queue and writer, so messages go out in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from intentbus.venues.hyperliquid.grid import wire
from intentbus.venues.hyperliquid.sim.info import l2_book
from intentbus.venues.hyperliquid.sim.matching import Engine

SNAPSHOT_FILLS = 100


@dataclass(eq=False)
class Connection:
    """One client connection and what it subscribed to."""

    ws: web.WebSocketResponse
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    subscriptions: set[tuple[str, str]] = field(default_factory=set)  # (type, user or coin)
    writer: asyncio.Task[None] | None = None

    def send(self, message: Any) -> None:
        """Queue one message."""
        self.queue.put_nowait(json.dumps(message))

    async def write(self) -> None:
        """Send queued messages in order until closed."""
        while (text := await self.queue.get()) is not None:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return


class WsHub:
    """Route the engine's events to the connections subscribed to them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connections: set[Connection] = set()
        engine.listeners.append(self._on_event)

    def connect(self, ws: web.WebSocketResponse) -> Connection:
        """Register a new connection."""
        connection = Connection(ws)
        connection.writer = asyncio.create_task(connection.write())
        self.connections.add(connection)
        return connection

    def disconnect(self, connection: Connection) -> None:
        """Forget a connection."""
        self.connections.discard(connection)
        connection.queue.put_nowait(None)

    def drop_all(self) -> None:
        """Close every connection from the server side."""
        for connection in list(self.connections):
            self.disconnect(connection)
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().create_task(connection.ws.close())

    def subscription(self, connection: Connection, method: str, sub: dict[str, Any]) -> None:
        """Apply a subscribe or unsubscribe; answer and send the snapshot."""
        kind = str(sub.get("type"))
        key = str(sub.get("user") or sub.get("coin") or "").lower()
        if method == "unsubscribe":
            connection.subscriptions.discard((kind, key))
            return
        connection.subscriptions.add((kind, key))
        response = {"method": "subscribe", "subscription": sub}
        connection.send({"channel": "subscriptionResponse", "data": response})
        if kind == "allMids":
            connection.send({"channel": "allMids", "data": {"mids": self._mids()}})
        elif kind == "l2Book":
            connection.send({"channel": "l2Book", "data": l2_book(self.engine, str(sub["coin"]))})
        elif kind == "userFills":
            fills = self.engine.account(key).fills[-SNAPSHOT_FILLS:]
            data = {"isSnapshot": True, "user": key, "fills": fills}
            connection.send({"channel": "userFills", "data": data})

    def mids_changed(self) -> None:
        """Push ``allMids`` (and each subscribed ``l2Book``)."""
        mids = {"channel": "allMids", "data": {"mids": self._mids()}}
        for connection in list(self.connections):
            for kind, key in connection.subscriptions:
                if kind == "allMids":
                    connection.send(mids)
                elif kind == "l2Book":
                    coin = next((c for c in self.engine.mids if c.lower() == key), None)
                    if coin is not None:
                        connection.send({"channel": "l2Book", "data": l2_book(self.engine, coin)})

    def _mids(self) -> dict[str, str]:
        return {coin: wire(mid) for coin, mid in self.engine.mids.items()}

    def _on_event(self, user: str, channel: str, data: Any) -> None:
        for connection in list(self.connections):
            if (channel, user) in connection.subscriptions:
                connection.send({"channel": channel, "data": data})
