"""Helpers for tests that run an executor runtime against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import BusSettings, Topology, connect
from intentbus.executor.base import BaseExecutor
from intentbus.executor.guards import RiskCaps
from intentbus.executor.partitions import OwnershipSettings
from intentbus.executor.runtime import ExecutorRuntime, RuntimeSettings
from intentbus.schemas import (
    DeadLetter,
    Drift,
    ExecutionResult,
    Fill,
    OrderUpdate,
    decoder,
    results_stream_decoder,
)
from intentbus.testing.waiting import wait_for


class Runnable(Protocol):
    """Anything with ``run(stop)``, such as an ExecutorRuntime."""

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        ...


@asynccontextmanager
async def running(*services: Runnable) -> AsyncIterator[None]:
    """Run services in the background; stop them and surface their errors on exit."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(service.run(stop)) for service in services]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


# Quick ownership for tests: a killed replica's partitions move within about 2.5 s.
FAST_OWNERSHIP = OwnershipSettings(heartbeat_s=0.3, ttl_s=2.0)


@dataclass
class RunningReplica:
    """One executor runtime running in the test, on its own connection."""

    runtime: ExecutorRuntime
    executor: BaseExecutor
    nc: Client
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def kill(self) -> None:
        """Die without handing anything over (the connection goes first, as in a SIGKILL)."""
        await self.nc.close()
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task

    async def shutdown(self) -> None:
        """Stop gracefully and hand the partitions over."""
        self.stop.set()
        await self.task
        await self.nc.close()


@asynccontextmanager
async def replica(
    nats_url: str,
    topology: Topology,
    executor: BaseExecutor,
    *,
    settings: RuntimeSettings | None = None,
    ownership: OwnershipSettings = FAST_OWNERSHIP,
    caps: RiskCaps | None = None,
) -> AsyncIterator[RunningReplica]:
    """Run an executor runtime replica until the block ends (unless it was killed).

    Returns once the replica owns partitions; a start-up failure is raised here.
    """
    nc = await connect(BusSettings.from_env(nats_url, name="test-executor"))
    runtime = ExecutorRuntime(
        nc, nc.jetstream(), topology, executor, settings=settings, ownership=ownership, caps=caps
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    running = RunningReplica(runtime, executor, nc, task, stop)

    async def owned() -> int:
        if task.done():
            await task  # surface a start-up failure
        return len(runtime.partitions)

    try:
        await wait_for(owned, until=lambda n: n > 0, what="partitions owned")
        yield running
    finally:
        if not task.done():
            await running.shutdown()
        elif not nc.is_closed:
            await nc.close()


async def _stream_payloads(js: JetStreamContext, stream: str) -> list[tuple[str, int, bytes]]:
    info = await js.stream_info(stream)
    found: list[tuple[str, int, bytes]] = []
    if not info.state.messages:
        return found
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            raw = await js.get_msg(stream, seq)
        except NotFoundError:
            continue
        found.append((raw.subject or "", seq, raw.data or b""))
    return found


async def read_results(
    js: JetStreamContext, topology: Topology
) -> list[tuple[str, ExecutionResult]]:
    """Return every (subject, final result) stored on the RESULTS stream, in order."""
    decode = results_stream_decoder().decode
    found = []
    for subject, _, data in await _stream_payloads(js, topology.results_stream):
        message = decode(data)
        if isinstance(message, ExecutionResult):
            found.append((subject, message))
    return found


async def read_updates(js: JetStreamContext, topology: Topology) -> list[OrderUpdate]:
    """Return every order update stored on the RESULTS stream, in order."""
    decode = results_stream_decoder().decode
    messages = [decode(d) for _, _, d in await _stream_payloads(js, topology.results_stream)]
    return [m for m in messages if isinstance(m, OrderUpdate)]


async def read_fills(js: JetStreamContext, topology: Topology) -> list[Fill]:
    """Return every fill stored on the FILLS stream, in order."""
    decode = decoder(Fill).decode
    return [decode(d) for _, _, d in await _stream_payloads(js, topology.fills_stream)]


async def read_dead_letters(js: JetStreamContext, topology: Topology) -> list[DeadLetter]:
    """Return every dead letter stored, in order."""
    decode = decoder(DeadLetter).decode
    return [decode(d) for _, _, d in await _stream_payloads(js, topology.dead_letter_stream)]


async def read_drifts(js: JetStreamContext, topology: Topology) -> list[Drift]:
    """Return every drift stored on the DRIFT stream, in order."""
    decode = decoder(Drift).decode
    return [decode(d) for _, _, d in await _stream_payloads(js, topology.drift_stream)]
