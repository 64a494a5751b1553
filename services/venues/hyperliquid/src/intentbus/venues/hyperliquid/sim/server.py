"""The local Hyperliquid venue over real HTTP and WebSocket (aiohttp), in-process or as a CLI.

``POST /info``, ``POST /exchange`` and ``/ws`` answer in the venue's shapes, so the
official SDK talks to it as to the venue (it signs for testnet unless the URL is the
mainnet one, so signatures are checked with the testnet source). Test switches live in
:class:`Faults`: latency, HTTP 429 (body ``null``, nothing applied), a response lost
after the action was applied (HTTP 502, or the connection dropped), a nonce another
process used already, refusing and dropping WebSocket connections. Prices come from
:meth:`HyperliquidSim.set_mid` or a seeded random walk (:meth:`HyperliquidSim.drive_prices`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from intentbus.venues.hyperliquid.sim.auth import Signers
from intentbus.venues.hyperliquid.sim.exchange import Exchange, err
from intentbus.venues.hyperliquid.sim.info import BadQuery, answer
from intentbus.venues.hyperliquid.sim.matching import Engine, EngineSettings, now_ms
from intentbus.venues.hyperliquid.sim.state import DEFAULT_ASSETS, Asset
from intentbus.venues.hyperliquid.sim.ws import WsHub

log = logging.getLogger(__name__)


@dataclass
class Faults:
    """Switches a test flips; counters count down as requests use them."""

    latency_s: float = 0.0
    http_429: int = 0  # next N /exchange calls: 429, nothing applied
    server_error: int = 0  # next N /exchange calls: 502, nothing applied
    lost_after_apply: int = 0  # next N /exchange calls: applied, then 502
    dropped_after_apply: int = 0  # next N /exchange calls: applied, then the connection drops
    refuse_ws: bool = False  # new WebSocket connections are refused (HTTP 503)
    nonce_taken: int = 0  # next N /exchange calls: their nonce was used by another process


class HyperliquidSim:
    """The local venue: an engine, signers, ``/info``, ``/exchange`` and ``/ws``."""

    def __init__(
        self,
        *,
        assets: tuple[Asset, ...] = DEFAULT_ASSETS,
        settings: EngineSettings | None = None,
        mids: dict[str, float] | None = None,
    ) -> None:
        self.engine = Engine(assets, settings)
        self.signers = Signers(is_mainnet=False)
        self.exchange = Exchange(self.engine, self.signers)
        self.faults = Faults()
        self.hub = WsHub(self.engine)
        self.exchange_calls = 0
        for coin, mid in (mids or {}).items():
            self.engine.mids[coin] = mid
            self.engine.record_price(coin, mid, now_ms())
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.url = ""

    # setup -----------------------------------------------------------------------------
    def fund(self, address: str, usdc: float) -> None:
        """Register ``address`` as a master account holding ``usdc``."""
        self.signers.add_user(address)
        self.engine.deposit(address, usdc)

    def approve_agent(self, master: str, agent: str) -> None:
        """Approve the API wallet ``agent`` for ``master`` (as ``approveAgent`` does)."""
        self.signers.add_agent(agent, master)

    def add_vault(self, vault: str, master: str, usdc: float) -> None:
        """Create a vault or sub-account ``vault`` traded by ``master``."""
        self.signers.add_vault(vault, master)
        self.engine.deposit(vault, usdc)

    def set_mid(self, coin: str, mid: float) -> None:
        """Move the mid (fills resting orders it reaches) and push ``allMids``."""
        self.engine.set_mid(coin, mid)
        self.hub.mids_changed()

    def backfill(self, coin: str, mids: list[float], *, start_ms: int, step_ms: int) -> None:
        """Record past mids of ``coin`` (``start_ms``, then every ``step_ms``) for candles.

        ``candleSnapshot`` builds its candles from the recorded mids; the live mid and the
        book do not move.
        """
        for number, mid in enumerate(mids):
            self.engine.record_price(coin, mid, start_ms + number * step_ms)

    def drop_websockets(self) -> None:
        """Close every WebSocket connection (clients see the connection drop)."""
        self.hub.drop_all()

    def drive_prices(self, *, seed: int, interval_s: float = 1.0, step_bps: float = 5.0) -> None:
        """Move every mid by a seeded random walk every ``interval_s``."""
        rng = random.Random(seed)

        async def walk() -> None:
            while True:
                await asyncio.sleep(interval_s)
                for coin, mid in list(self.engine.mids.items()):
                    self.set_mid(coin, mid * (1 + rng.gauss(0, step_bps / 10_000)))

        self._tasks.append(asyncio.create_task(walk()))

    # serving ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        """Return the aiohttp application."""
        app = web.Application()
        app.router.add_post("/info", self._info)
        app.router.add_post("/exchange", self._exchange)
        app.router.add_get("/ws", self._ws)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port); return the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1] if self._runner.addresses else port
        self.url = f"http://{host}:{bound}"
        self._tasks.append(asyncio.create_task(self._scheduler()))
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.hub.drop_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _scheduler(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.exchange.run_scheduled()

    async def _info(self, request: web.Request) -> web.StreamResponse:
        await self._delay()
        try:
            body = await request.json()
            return web.json_response(answer(self.engine, body))
        except (BadQuery, KeyError, ValueError, TypeError) as exc:
            return web.Response(status=422, text=f"Failed to deserialize the JSON body: {exc}")

    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        await self._delay()
        self.exchange_calls += 1
        faults = self.faults
        if faults.http_429:
            faults.http_429 -= 1
            return web.Response(status=429, text="null", content_type="application/json")
        if faults.server_error:
            faults.server_error -= 1
            return web.Response(status=502, text="Bad Gateway")
        try:
            payload = await request.json()
            if faults.nonce_taken:
                faults.nonce_taken -= 1
                self.signers.use_nonce(
                    self.signers.recover(payload), int(payload["nonce"]), now_ms()
                )
            result = self.exchange.handle(payload)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response(err(f"Failed to deserialize the JSON body: {exc}"))
        if faults.lost_after_apply:
            faults.lost_after_apply -= 1
            return web.Response(status=502, text="Bad Gateway")
        if faults.dropped_after_apply and request.transport is not None:
            faults.dropped_after_apply -= 1
            request.transport.abort()
            raise asyncio.CancelledError
        return web.json_response(result)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.faults.refuse_ws:
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        connection = self.hub.connect(ws)
        try:
            await ws.send_str("Websocket connection established.")
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                await self._ws_message(connection, message.data)
        finally:
            self.hub.disconnect(connection)
        return ws

    async def _ws_message(self, connection: Any, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        method = message.get("method")
        if method == "ping":
            connection.send({"channel": "pong"})
        elif method in ("subscribe", "unsubscribe"):
            self.hub.subscription(connection, method, message.get("subscription") or {})
        elif method == "post":
            await self._delay()
            request = message.get("request") or {}
            kind, payload = request.get("type"), request.get("payload") or {}
            if kind == "info":
                body: Any = answer(self.engine, payload)
            else:
                self.exchange_calls += 1
                body = self.exchange.handle(payload)
            response = {"type": kind, "payload": body}
            connection.send(
                {"channel": "post", "data": {"id": message.get("id"), "response": response}}
            )

    async def _delay(self) -> None:
        if self.faults.latency_s > 0:
            await asyncio.sleep(self.faults.latency_s)  # a slow venue, by design
