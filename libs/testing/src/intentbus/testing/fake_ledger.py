"""A hand-written fake of the ledger service for tests of executors and other clients.

It answers ``ledger.positions.get|list|open`` over NATS request/reply from a dict the
test controls, applies every fill on the ``FILLS`` stream to those positions (once per
``fill_id``) and keeps every final result and order update of ``RESULTS``, so
``get(min_results_seq=N, min_fills_seq=M)`` waits until both are in, like the real
ledger. :meth:`stop_answering` makes it unavailable (no responders).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from intentbus.bus import Topology
from intentbus.schemas import (
    Direction,
    ExecutionResult,
    Fill,
    ListPositions,
    OpenPosition,
    OrderUpdate,
    Position,
    PositionQuery,
    PositionReply,
    decoder,
    encode,
    results_stream_decoder,
)

_results_decoder = results_stream_decoder()
_fills_decoder = decoder(Fill)


class FakeLedger:
    """Keep positions in a dict, apply results from the stream, answer position requests."""

    def __init__(self, nc: Client, js: JetStreamContext, topology: Topology) -> None:
        self.positions: dict[str, Position] = {}
        self.applied_seq = 0
        self.fills_seq = 0
        self.result_ids: set[str] = set()
        self.results: list[ExecutionResult] = []
        self.updates: list[OrderUpdate] = []
        self.fills: list[Fill] = []
        self.fill_ids: set[str] = set()
        self.requests = 0
        self._nc = nc
        self._js = js
        self._topology = topology
        self._changed = asyncio.Event()
        self._subs: list[Any] = []
        self._results_sub: Any = None
        self._fills_sub: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    def put(self, position: Position) -> Position:
        """Set (or replace) a position the fake serves."""
        self.positions[position.position_id] = position
        return position

    def open(
        self,
        position_id: str,
        *,
        venue: str = "paper",
        book_id: str = "main",
        token_contract: str = "BTC",
        direction: Direction = Direction.LONG,
        allocation_usd: float = 10_000.0,
        size: float = 0.0,
    ) -> Position:
        """Create a position with an allocation (and optionally a size)."""
        return self.put(
            Position(
                position_id=position_id,
                venue=venue,
                book_id=book_id,
                token_contract=token_contract,
                direction=direction,
                allocation_usd=allocation_usd,
                size=size,
            )
        )

    async def start(self) -> None:
        """Answer requests and follow the results stream."""
        self._results_sub = await self._js.subscribe(
            self._topology.results_filter(),
            stream=self._topology.results_stream,
            cb=self._on_result,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        self._fills_sub = await self._js.subscribe(
            self._topology.fills_filter(),
            stream=self._topology.fills_stream,
            cb=self._on_fill,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        await self.start_answering()

    async def start_answering(self) -> None:
        """Subscribe the request/reply subjects (again, after :meth:`stop_answering`)."""
        for operation, handler in (
            ("get", self._on_get),
            ("list", self._on_list),
            ("open", self._on_open),
        ):
            subject = self._topology.ledger_subject(operation)
            self._subs.append(await self._nc.subscribe(subject, cb=handler))
        await self._nc.flush()

    async def stop_answering(self) -> None:
        """Stop answering: clients see no responders (the ledger is down)."""
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        await self._nc.flush()

    async def stop(self) -> None:
        """Stop answering and following results."""
        await self.stop_answering()
        for sub in (self._results_sub, self._fills_sub):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        self._results_sub = self._fills_sub = None
        for task in list(self._tasks):
            task.cancel()

    async def wait_applied(self, seq: int, timeout_s: float, fills_seq: int = 0) -> bool:
        """Wait until results up to ``seq`` and fills up to ``fills_seq`` are in."""

        def reached() -> bool:
            return self.applied_seq >= seq and self.fills_seq >= fills_seq

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not reached():
                    await self._changed.wait()
        return reached()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # handlers ---------------------------------------------------------------------
    async def _on_result(self, msg: Msg) -> None:
        message = _results_decoder.decode(msg.data)
        seq = msg.metadata.sequence.stream
        if isinstance(message, OrderUpdate):
            self.updates.append(message)
        elif message.result_id not in self.result_ids:
            self.result_ids.add(message.result_id)
            self.results.append(message)
            position = self.positions.get(message.position_id)
            if position is not None:
                self.positions[position.position_id] = msgspec.structs.replace(
                    position, results_applied=position.results_applied + 1, results_seq=seq
                )
        self.applied_seq = max(self.applied_seq, seq)
        self._wake()

    async def _on_fill(self, msg: Msg) -> None:
        fill = _fills_decoder.decode(msg.data)
        seq = msg.metadata.sequence.stream
        if fill.fill_id not in self.fill_ids:
            self.fill_ids.add(fill.fill_id)
            self.fills.append(fill)
            self._apply(fill, seq)
        self.fills_seq = max(self.fills_seq, seq)
        self._wake()

    def _apply(self, fill: Fill, seq: int) -> None:
        position = self.positions.get(fill.position_id)
        if position is None:
            return
        grows = (fill.side.value == "buy") == (position.direction is Direction.LONG)
        size = position.size + fill.size if grows else position.size - fill.size
        changes: dict[str, Any] = {
            "fills_seq": seq,
            "fills_applied": position.fills_applied + 1,
            "updated_at": datetime.now(UTC),
            "size": max(0.0, round(size, 12)),
            "fees_usd": position.fees_usd + fill.fee,
        }
        self.positions[position.position_id] = msgspec.structs.replace(position, **changes)

    async def _on_get(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer_get(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_get(self, msg: Msg) -> None:
        self.requests += 1
        query = decoder(PositionQuery).decode(msg.data)
        if not await self.wait_applied(
            query.min_results_seq, query.wait_ms / 1000.0, query.min_fills_seq
        ):
            reply = PositionReply(
                error=f"applied results {self.applied_seq} / fills {self.fills_seq} < "
                f"{query.min_results_seq} / {query.min_fills_seq}",
                results_seq=self.applied_seq,
            )
        else:
            found = self.positions.get(query.position_id)
            reply = PositionReply(positions=(found,) if found else (), results_seq=self.applied_seq)
        await msg.respond(encode(reply))

    async def _on_list(self, msg: Msg) -> None:
        query = decoder(ListPositions).decode(msg.data)
        found = tuple(
            p
            for p in self.positions.values()
            if (query.venue is None or p.venue == query.venue)
            and (query.book_id is None or p.book_id == query.book_id)
        )
        await msg.respond(encode(PositionReply(positions=found, results_seq=self.applied_seq)))

    async def _on_open(self, msg: Msg) -> None:
        request = decoder(OpenPosition).decode(msg.data)
        found = self.positions.get(request.position_id) or self.open(
            request.position_id,
            venue=request.venue,
            book_id=request.book_id,
            token_contract=request.token_contract,
            direction=request.direction,
            allocation_usd=request.allocation_usd,
        )
        await msg.respond(encode(PositionReply(positions=(found,), results_seq=self.applied_seq)))
