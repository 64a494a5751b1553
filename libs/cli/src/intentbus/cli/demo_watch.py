"""What the demo sees on ``INTENTS``, ``RESULTS`` and ``FILLS``, and waiting on it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DeliverPolicy

from intentbus.cli.processes import ServiceProcesses
from intentbus.command.common import BusSession, console, fail
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionResult,
    Fill,
    OrderUpdate,
    decoder,
    results_stream_decoder,
)

_POLL_S = 0.5  # how often a wait looks at the child processes while no message arrives


class StreamWatch:
    """Follow ``INTENTS``, ``RESULTS`` and ``FILLS`` from their start (ordered consumers).

    ``intents`` holds every intent in stream order (``intents_seq`` the last sequence).
    ``updates`` holds each intent's first ``OrderUpdate`` (and ``update_seq`` its RESULTS
    sequence), ``results`` each intent's final ``ExecutionResult``, ``fills`` every fill in
    stream order; ``results_seq`` and ``fills_seq`` are the last sequences seen.
    """

    def __init__(self, bus: BusSession, services: ServiceProcesses) -> None:
        self._bus = bus
        self._services = services
        self._changed = asyncio.Event()
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []
        self._results_decoder = results_stream_decoder()
        self._fill_decoder = decoder(Fill)
        self._intent_decoder = decoder(ExecutionIntent)
        self.intents: list[ExecutionIntent] = []
        self.intents_seq = 0
        self.updates: dict[str, OrderUpdate] = {}
        self.update_seq: dict[str, int] = {}
        self.results: dict[str, ExecutionResult] = {}
        self.fills: list[Fill] = []
        self.results_seq = 0
        self.fills_seq = 0

    async def start(self) -> None:
        """Subscribe to the three streams from their first message."""
        topology, js = self._bus.topology, self._bus.js
        self._running = True
        for stream, subject, handle in (
            (topology.intents_stream, topology.intents_filter(), self._on_intent),
            (topology.results_stream, topology.results_filter(), self._on_result),
            (topology.fills_stream, topology.fills_filter(), self._on_fill),
        ):
            sub = await js.subscribe(
                subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
            self._subs.append(sub)
            self._tasks.append(asyncio.create_task(self._pump(sub, handle)))

    async def stop(self) -> None:
        """Stop following (the pumps end within one poll) and unsubscribe."""
        self._running = False
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=_POLL_S * 4)
            except TimeoutError:
                task.cancel()
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def fills_of(self, intent_id: str) -> list[Fill]:
        """Return the fills of one intent's order, in stream order."""
        return [f for f in self.fills if f.intent_id == intent_id]

    async def until(self, ready: Callable[[], bool], what: str, timeout_s: float) -> None:
        """Wait until ``ready()`` holds after a message arrives; fail on timeout or a dead child."""
        deadline = time.monotonic() + timeout_s
        with console.status(f"waiting for {what}"):
            while True:
                self._changed.clear()
                if ready():
                    return
                dead = self._services.failed()
                if dead:
                    log = self._services.log_tail(dead[0])
                    raise fail(f"{dead[0]} exited while waiting for {what}:\n{log}", code=1)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise fail(f"timed out after {timeout_s:g}s waiting for {what}", code=1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=min(_POLL_S, left))

    async def _pump(self, sub: Any, handle: Callable[[bytes, int], None]) -> None:
        while self._running:
            try:
                msg = await sub.next_msg(timeout=_POLL_S)
            except NatsTimeoutError:
                continue
            try:
                handle(msg.data, msg.metadata.sequence.stream)
            except msgspec.MsgspecError as exc:
                console.print(f"[red]undecodable message on {msg.subject}: {exc}[/]")
            self._changed.set()

    def _on_result(self, data: bytes, seq: int) -> None:
        message = self._results_decoder.decode(data)
        self.results_seq = max(self.results_seq, seq)
        if isinstance(message, OrderUpdate):
            self.updates.setdefault(message.intent_id, message)
            self.update_seq.setdefault(message.intent_id, seq)
        else:
            self.results.setdefault(message.intent_id, message)

    def _on_intent(self, data: bytes, seq: int) -> None:
        self.intents.append(self._intent_decoder.decode(data))
        self.intents_seq = max(self.intents_seq, seq)

    def _on_fill(self, data: bytes, seq: int) -> None:
        self.fills.append(self._fill_decoder.decode(data))
        self.fills_seq = max(self.fills_seq, seq)
