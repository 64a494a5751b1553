"""Send the position reads asked for in one event-loop turn as one ``get_many`` request.

An executor reads a position before sizing each intent; at load, many of its position
lanes reach that read in the same turn (their previous round trips answered by one
burst of replies). Each read still gets exactly what ``get`` would give it: the reads
of one request share the highest ``RESULTS`` and ``FILLS`` seqs any of them needs, so
each sees at least its own writes. A ledger that does not answer ``get_many`` (one
older than it) is asked with one ``get`` per read instead.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from intentbus.bus.positions import LedgerUnavailable, PositionClient
from intentbus.schemas import MAX_POSITIONS_PER_QUERY, Position

log = logging.getLogger(__name__)


@dataclass
class _Read:
    position_id: str
    min_results_seq: int
    min_fills_seq: int
    answer: asyncio.Future[Position | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PositionReads:
    """Read positions through ``client``, one request for the reads of a loop turn."""

    def __init__(self, client: PositionClient) -> None:
        self._client = client
        self._pending: list[_Read] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._many = True  # False once the ledger was found not to answer get_many
        self.requests = 0
        self.reads = 0

    async def get(
        self, position_id: str, *, min_results_seq: int = 0, min_fills_seq: int = 0
    ) -> Position | None:
        """Return one position as :meth:`PositionClient.get` does."""
        read = _Read(position_id, min_results_seq, min_fills_seq)
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(read)
        return await read.answer

    @property
    def batching(self) -> bool:
        """Say whether reads are still sent as ``get_many`` (False: the ledger lacks it)."""
        return self._many

    async def close(self) -> None:
        """Wait for the requests under way."""
        await asyncio.gather(*self._sending, return_exceptions=True)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), MAX_POSITIONS_PER_QUERY):
            task = asyncio.create_task(self._send(pending[start : start + MAX_POSITIONS_PER_QUERY]))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, reads: list[_Read]) -> None:
        self.requests += 1
        self.reads += len(reads)
        if len(reads) == 1 or not self._many:
            await asyncio.gather(*(self._one(read) for read in reads))
            return
        try:
            found = await self._client.get_many(
                [read.position_id for read in reads],
                min_results_seq=max(read.min_results_seq for read in reads),
                min_fills_seq=max(read.min_fills_seq for read in reads),
            )
        except LedgerUnavailable:
            # no ledger, or one that serves no get_many: one get each tells which
            await asyncio.gather(*(self._one(read) for read in reads))
            if all(_answered(read) for read in reads):
                log.warning("the ledger does not answer get_many: reading one position a time")
                self._many = False
            return
        except Exception as exc:
            for read in reads:
                _fail(read, exc)
            return
        for read in reads:
            if not read.answer.done():
                read.answer.set_result(found.get(read.position_id))

    async def _one(self, read: _Read) -> None:
        try:
            position = await self._client.get(
                read.position_id,
                min_results_seq=read.min_results_seq,
                min_fills_seq=read.min_fills_seq,
            )
        except Exception as exc:
            _fail(read, exc)
            return
        if not read.answer.done():
            read.answer.set_result(position)


def _answered(read: _Read) -> bool:
    answer = read.answer
    return answer.done() and not answer.cancelled() and answer.exception() is None


def _fail(read: _Read, exc: Exception) -> None:
    if not read.answer.done():
        read.answer.set_exception(exc)
