"""Client of the ledger's position request/reply API.

The ledger answers on ``ledger.positions.get|get_many|list|open`` (under the namespace).
``get`` waits until the ledger has applied the ``RESULTS`` and ``FILLS`` streams up to
the sequences asked for (read-your-writes), so an executor that just published a fill
or a result sizes the next intent of that position on a view that includes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import observe
from intentbus.bus.replies import Replies
from intentbus.bus.subjects import Topology
from intentbus.schemas import (
    Drift,
    ListPositions,
    OpenPosition,
    Position,
    PositionQuery,
    PositionReply,
    PositionsQuery,
    decoder,
    encode,
)


class LedgerUnavailable(RuntimeError):
    """Raise when no ledger answered in time; the caller should retry later."""


class LedgerError(RuntimeError):
    """Raise when the ledger answered with an error."""


class PositionClient:
    """Ask the ledger for positions over NATS request/reply."""

    def __init__(
        self,
        nc: Client,
        topology: Topology,
        *,
        timeout_s: float = 5.0,
        replies: Replies | None = None,
    ) -> None:
        self._nc = nc
        self._replies = replies
        self._topology = topology
        self._timeout_s = timeout_s
        self._decoder = decoder(PositionReply)

    async def _request(self, operation: str, payload: bytes, timeout_s: float) -> PositionReply:
        subject = self._topology.ledger_subject(operation)
        try:
            with observe.requesting(f"ledger {operation}", subject) as headers:
                if self._replies is not None:
                    msg = await self._replies.request(
                        subject, payload, timeout_s=timeout_s, headers=headers
                    )
                else:
                    msg = await self._nc.request(
                        subject, payload, timeout=timeout_s, headers=headers
                    )
        except (NatsTimeoutError, NoRespondersError) as exc:
            raise LedgerUnavailable(f"no ledger answered {operation!r}: {exc!r}") from exc
        reply = self._decoder.decode(msg.data)
        if reply.error:
            raise LedgerError(reply.error)
        return reply

    async def get(
        self, position_id: str, *, min_results_seq: int = 0, min_fills_seq: int = 0
    ) -> Position | None:
        """Return one position (``None`` when the ledger does not know it).

        The ledger answers once it applied ``RESULTS`` up to ``min_results_seq`` and
        ``FILLS`` up to ``min_fills_seq`` (read-your-writes).
        """
        query = PositionQuery(
            position_id=position_id,
            min_results_seq=min_results_seq,
            min_fills_seq=min_fills_seq,
        )
        wait_s = query.wait_ms / 1000.0
        reply = await self._request("get", encode(query), self._timeout_s + wait_s)
        return reply.positions[0] if reply.positions else None

    async def get_many(
        self, position_ids: Sequence[str], *, min_results_seq: int = 0, min_fills_seq: int = 0
    ) -> PositionReply:
        """Return the known positions of several ids (at most ``MAX_POSITIONS_PER_QUERY``)."""
        query = PositionsQuery(
            position_ids=tuple(position_ids),
            min_results_seq=min_results_seq,
            min_fills_seq=min_fills_seq,
        )
        wait_s = query.wait_ms / 1000.0
        return await self._request("get_many", encode(query), self._timeout_s + wait_s)

    async def list(self, *, venue: str | None = None, book_id: str | None = None) -> PositionReply:
        """Return every position, or those of one venue or book."""
        query = ListPositions(venue=venue, book_id=book_id)
        return await self._request("list", encode(query), self._timeout_s)

    async def open(self, request: OpenPosition) -> Position:
        """Open a position with its allocation; opening it again with the same terms is a no-op."""
        reply = await self._request("open", encode(request), self._timeout_s)
        return reply.positions[0]


async def last_drifts(
    js: JetStreamContext, topology: Topology, venue: str | None = None, book: str | None = None
) -> list[Drift]:
    """Return the last drift published per venue, book and symbol (resolved ones too)."""
    try:
        info = await js.stream_info(
            topology.drift_stream, subjects_filter=topology.drift_filter(venue, book)
        )
    except NotFoundError:
        return []
    found = []
    for subject in sorted(info.state.subjects or {}):
        try:
            raw = await js.get_last_msg(topology.drift_stream, subject)
        except NotFoundError:
            continue
        if raw.data:
            found.append(decoder(Drift).decode(raw.data))
    return found
