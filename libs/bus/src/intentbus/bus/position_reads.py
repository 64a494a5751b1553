"""Send the position reads asked for in one event-loop turn as one ``get_many`` request.

An executor reads a position before sizing each intent; at load, many of its position
lanes reach that read in the same turn. Each read still gets exactly what ``get`` would
give it: the reads of one request share the highest ``RESULTS`` and ``FILLS`` seqs any
of them needs, so each sees at least its own writes. A ledger that does not answer
``get_many`` (one older than it) is asked with one ``get`` per read instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from intentbus.bus.coalesce import Coalescer
from intentbus.bus.positions import LedgerUnavailable, PositionClient
from intentbus.schemas import MAX_POSITIONS_PER_QUERY, Position

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Read:
    position_id: str
    min_results_seq: int
    min_fills_seq: int


class PositionReads:
    """Read positions through ``client``, one request for the reads of a loop turn."""

    def __init__(self, client: PositionClient) -> None:
        self._client = client
        self._reads: Coalescer[_Read, Position | None] = Coalescer(
            self._many, max_batch=MAX_POSITIONS_PER_QUERY, send_one=self._one
        )
        self._batching = True  # False once the ledger was found not to answer get_many

    @property
    def batching(self) -> bool:
        """Say whether reads are still sent as ``get_many`` (False: the ledger lacks it)."""
        return self._batching

    @property
    def requests(self) -> int:
        """Return how many requests the reads took."""
        return self._reads.batches

    @property
    def reads(self) -> int:
        """Return how many reads were asked."""
        return self._reads.calls

    async def get(
        self, position_id: str, *, min_results_seq: int = 0, min_fills_seq: int = 0
    ) -> Position | None:
        """Return one position as :meth:`PositionClient.get` does."""
        return await self._reads.call(_Read(position_id, min_results_seq, min_fills_seq))

    async def close(self) -> None:
        """Wait for the requests under way."""
        await self._reads.close()

    async def _one(self, read: _Read) -> Position | None:
        return await self._client.get(
            read.position_id,
            min_results_seq=read.min_results_seq,
            min_fills_seq=read.min_fills_seq,
        )

    async def _each(self, reads: list[_Read]) -> list[Position | Exception | None]:
        answers = await asyncio.gather(*(self._one(read) for read in reads), return_exceptions=True)
        each: list[Position | Exception | None] = []
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, Exception):
                raise answer  # cancelled: not an answer
            each.append(answer)
        return each

    async def _many(self, reads: list[_Read]) -> Sequence[Position | Exception | None]:
        if not self._batching:
            return await self._each(reads)
        try:
            found = await self._client.get_many(
                [read.position_id for read in reads],
                min_results_seq=max(read.min_results_seq for read in reads),
                min_fills_seq=max(read.min_fills_seq for read in reads),
            )
        except LedgerUnavailable:
            # no ledger, or one that serves no get_many: one get each tells which
            answers = await self._each(reads)
            if not any(isinstance(answer, Exception) for answer in answers):
                log.warning("the ledger does not answer get_many: reading one position a time")
                self._batching = False
            return answers
        return [found.get(read.position_id) for read in reads]
