"""Positions as kept by the ledger, and the request/reply messages that read or open them."""

from __future__ import annotations

import msgspec

from intentbus.schemas.enums import Direction
from intentbus.schemas.fields import (
    Identifier,
    NonNegative,
    Positive,
    SubjectToken,
    Symbol,
    Timestamp,
    check_ids,
    ids_are_safe,
)

POSITION_TAG = "intentbus.position.v1"


class Position(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=POSITION_TAG):
    """Give the ledger's view of one position.

    ``size`` is the absolute size in tokens; ``direction`` says which way it points.
    ``results_seq`` and ``fills_seq`` are the last ``RESULTS`` and ``FILLS`` stream
    sequences the ledger had applied when it produced this view (read-your-writes: see
    :class:`PositionQuery`). ``working_size`` is the open (unfilled) size of the
    position's working orders. A ``closed`` position was exited; it takes no new intents,
    and its symbol may be opened again in its book.
    """

    position_id: Identifier
    venue: SubjectToken
    book_id: SubjectToken
    token_contract: Symbol
    direction: Direction
    allocation_usd: NonNegative
    size: NonNegative = 0.0
    avg_entry_price: NonNegative = 0.0
    realized_pnl_usd: float = 0.0
    fees_usd: float = 0.0
    results_applied: int = 0
    results_seq: int = 0
    updated_at: Timestamp | None = None
    fills_applied: int = 0
    fills_seq: int = 0
    working_size: NonNegative = 0.0
    working_orders: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        check_ids(self, ("position_id", "venue", "book_id"), "token_contract")

    @property
    def is_flat(self) -> bool:
        """Say whether the position holds nothing."""
        return self.size <= 0.0


class PositionQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for a position once the ledger applied ``RESULTS`` and ``FILLS`` up to these seqs."""

    position_id: Identifier
    min_results_seq: int = 0
    min_fills_seq: int = 0
    wait_ms: int = 2_000

    def __post_init__(self) -> None:
        check_ids(self, ("position_id",))


MAX_POSITIONS_PER_QUERY = 256  # a reply of that many positions stays far below 1 MB


class PositionsQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for several positions at once, each as :class:`PositionQuery` would.

    The ledger answers with the positions it knows (an unknown id is left out) once it
    applied ``RESULTS`` and ``FILLS`` up to these seqs: callers asking together share
    the highest seqs any of them needs.
    """

    position_ids: tuple[Identifier, ...]
    min_results_seq: int = 0
    min_fills_seq: int = 0
    wait_ms: int = 2_000

    def __post_init__(self) -> None:
        if not 0 < len(self.position_ids) <= MAX_POSITIONS_PER_QUERY:
            raise ValueError(
                f"`position_ids` holds {len(self.position_ids)} ids: "
                f"ask for 1 to {MAX_POSITIONS_PER_QUERY} at once"
            )
        if not ids_are_safe(*self.position_ids):
            bad = next(i for i in self.position_ids if not ids_are_safe(i))
            raise ValueError(
                f"`position_ids` holds {bad!r}, which is not subject-safe: use letters, "
                "digits, '_', '-' or '=' (no '.', '*', '>' or whitespace)"
            )


class OpenPosition(msgspec.Struct, frozen=True, kw_only=True):
    """Ask the ledger to open (register) a position with its allocation."""

    position_id: Identifier
    venue: SubjectToken
    book_id: SubjectToken
    token_contract: Symbol
    direction: Direction = Direction.LONG
    allocation_usd: Positive = 1_000.0

    def __post_init__(self) -> None:
        check_ids(self, ("position_id", "venue", "book_id"), "token_contract")


class ListPositions(msgspec.Struct, frozen=True, kw_only=True):
    """Ask the ledger for every position, optionally of one venue or book."""

    venue: SubjectToken | None = None
    book_id: SubjectToken | None = None

    def __post_init__(self) -> None:
        check_ids(self, ("venue", "book_id"))


class PositionReply(msgspec.Struct, frozen=True, kw_only=True):
    """Answer a position request: the positions, or an error an operator can read."""

    positions: tuple[Position, ...] = ()
    error: str | None = None
    results_seq: int = 0
    fills_seq: int = 0
