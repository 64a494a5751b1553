"""Filters of ``intentbus tail``: venue, book, position, action, status, start point."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from nats.js.api import ConsumerConfig, DeliverPolicy

from intentbus.bus import Topology
from intentbus.schemas import (
    ActionType,
    ExecutionIntent,
    ExecutionResult,
    Fill,
    OrderUpdate,
    decoder,
    results_stream_decoder,
)

_intent = decoder(ExecutionIntent)
_results = results_stream_decoder()
_fill = decoder(Fill)


@dataclass(frozen=True)
class TailFilter:
    """Which messages ``tail`` shows, and where it starts."""

    venue: str | None = None
    book: str | None = None
    position: str | None = None
    actions: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    from_seq: int | None = None
    since: datetime | None = None

    @classmethod
    def build(
        cls,
        venue: str | None,
        book: str | None,
        position: str | None,
        actions: list[ActionType] | None,
        statuses: list[str] | None,
        from_seq: int | None,
        since: str | None,
    ) -> TailFilter:
        """Build from the command's options (``since`` an ISO time)."""
        at = None
        if since is not None:
            at = datetime.fromisoformat(since)
            at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return cls(
            venue,
            book,
            position,
            frozenset(a.value for a in actions or ()),
            frozenset(statuses or ()),
            from_seq,
            at,
        )

    @property
    def narrows(self) -> bool:
        """Say whether any content filter is set."""
        return bool(self.venue or self.book or self.position or self.actions or self.statuses)

    def subject(self, what: str, topology: Topology) -> str | None:
        """Return a narrower subject filter when venue (and book) allow one."""
        if self.venue is None:
            return None
        book = self.book
        if what == "intents":
            return topology.intents_filter(self.venue, book)
        if what == "results":
            return topology.results_filter(self.venue, book)
        if what == "fills":
            return topology.fills_filter(self.venue, book)
        return None

    def start(self) -> ConsumerConfig | None:
        """Return the consumer's start point when one was given."""
        if self.from_seq is not None:
            return ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.from_seq
            )
        if self.since is not None:
            return ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=self.since
            )
        return None

    def takes(self, what: str, data: bytes) -> bool:
        """Say whether one message passes (a message that does not decode passes)."""
        if not self.narrows:
            return True
        try:
            fields = _fields(what, data)
        except msgspec.MsgspecError:
            return True
        if fields is None:
            return True
        venue, book, position, action, status = fields
        return (
            (self.venue is None or venue == self.venue)
            and (self.book is None or book == self.book)
            and (self.position is None or position == self.position)
            and (not self.actions or action in self.actions)
            and (not self.statuses or status in self.statuses)
        )


def _fields(what: str, data: bytes) -> tuple[str, str, str, str | None, str | None] | None:
    if what == "intents":
        i = _intent.decode(data)
        return i.token_chain, i.book_id, i.position_id, i.action.value, None
    if what == "results":
        r = _results.decode(data)
        if isinstance(r, ExecutionResult):
            return r.venue, r.book_id, r.position_id, r.action.value, r.status.value
        if isinstance(r, OrderUpdate):
            return r.venue, r.book_id, r.position_id, None, r.order_state.value
        return None
    if what == "fills":
        f = _fill.decode(data)
        return (
            f.venue,
            f.book_id,
            f.position_id,
            None,
            f.order_state.value if f.order_state else None,
        )
    return None
