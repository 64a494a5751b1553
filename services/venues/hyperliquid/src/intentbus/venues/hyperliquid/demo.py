"""Run a Hyperliquid book against the local venue: the function a demo calls.

    async with local_book(nats_url, topology) as book:
        ...  # open a position on venue "hyperliquid", book "main" (the ledger),
        ...  # publish intents, move the market with book.set_mid("BTC", 64_900.0)

It starts the local venue (real HTTP/WebSocket on 127.0.0.1), a funded master account
with an API wallet, and one executor runtime replica (the real SDK signing every order)
on its own NATS connection; the ledger is the caller's (this package never imports it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from intentbus.bus import BusSettings, Topology, connect, provision
from intentbus.executor.runtime import ExecutorRuntime
from intentbus.venues.hyperliquid.executor import HyperliquidExecutor
from intentbus.venues.hyperliquid.local import LocalVenue


@dataclass
class LocalBook:
    """The running pieces: the venue, its executor and the runtime replica."""

    venue: LocalVenue
    executor: HyperliquidExecutor
    runtime: ExecutorRuntime

    def set_mid(self, coin: str, mid: float) -> None:
        """Move the venue's market (resting orders it reaches fill)."""
        self.venue.set_mid(coin, mid)


@asynccontextmanager
async def local_book(
    nats_url: str,
    topology: Topology,
    *,
    mids: dict[str, float] | None = None,
    depths: dict[str, float] | None = None,
) -> AsyncIterator[LocalBook]:
    """Run the local venue and a Hyperliquid executor replica until the block ends."""
    venue = await LocalVenue.start(mids=mids, depths=depths)
    nc = await connect(BusSettings.from_env(nats_url, name="intentbus-hyperliquid-demo"))
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        await provision(nc.jetstream(), topology)
        executor = venue.executor()
        runtime = ExecutorRuntime(nc, nc.jetstream(), topology, executor)
        task = asyncio.create_task(runtime.run(stop))
        yield LocalBook(venue, executor, runtime)
    finally:
        stop.set()
        if task is not None:
            await task
        await nc.drain()
        await venue.stop()
