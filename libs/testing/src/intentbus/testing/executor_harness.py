"""Helpers for tests that run an executor runtime against a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import Topology
from intentbus.schemas import (
    DeadLetter,
    ExecutionResult,
    Fill,
    OrderUpdate,
    decoder,
    results_stream_decoder,
)


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
