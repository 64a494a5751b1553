"""Send the position reads asked for in one event-loop turn as one ``get_many`` request.

An executor reads a position before sizing each intent; at load, many of its position
lanes reach that read in the same turn. Each read still gets what ``get`` would give it,
at least its own writes: the reads the ledger had caught up with (by the seqs of its
last answer) go in one request that waits for nothing; the others go in a second one
that waits for the highest ``RESULTS`` and ``FILLS`` seqs any of them needs. A ledger
that does not answer ``get_many`` (one older than it) is asked one ``get`` per read.
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
        self._seen = (0, 0)  # the RESULTS and FILLS seqs the ledger last said it applied

    @property
    def batching(self) -> bool:
        """Say whether reads are still sent as ``get_many`` (False: the ledger lacks it)."""
        return self._batching

    @property
    def requests(self) -> int:
        """Return how many times reads went out (one loop turn's reads, or a lone one)."""
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
        position = await self._client.get(
            read.position_id,
            min_results_seq=read.min_results_seq,
            min_fills_seq=read.min_fills_seq,
        )
        if position is not None:
            self._saw(position.results_seq, position.fills_seq)
        return position

    def _saw(self, results_seq: int, fills_seq: int) -> None:
        self._seen = (max(self._seen[0], results_seq), max(self._seen[1], fills_seq))

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
        # The reads the ledger had caught up with when it last answered go together and
        # wait for nothing; those needing newer writes go together and wait for the
        # newest of them. A read never waits behind another position's fresh write.
        seen_results, seen_fills = self._seen
        caught_up = [
            r.min_results_seq <= seen_results and r.min_fills_seq <= seen_fills for r in reads
        ]
        groups = [
            [index for index, ready in enumerate(caught_up) if ready is wanted]
            for wanted in (True, False)
        ]
        groups = [group for group in groups if group]
        got = await asyncio.gather(*(self._together([reads[i] for i in g]) for g in groups))
        answers: list[Position | Exception | None] = [None] * len(reads)
        for group, group_answers in zip(groups, got, strict=True):
            for index, answer in zip(group, group_answers, strict=True):
                answers[index] = answer
        return answers

    async def _together(self, reads: list[_Read]) -> list[Position | Exception | None]:
        if len(reads) == 1 or not self._batching:
            return await self._each(reads)
        try:
            reply = await self._client.get_many(
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
        except Exception as exc:
            return [exc] * len(reads)
        self._saw(reply.results_seq, reply.fills_seq)
        found = {position.position_id: position for position in reply.positions}
        return [found.get(read.position_id) for read in reads]
