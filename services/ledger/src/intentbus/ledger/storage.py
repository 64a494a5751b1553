"""The ledger's storage interface, asynchronous; SQLite and PostgreSQL implement it.

Every change goes through :meth:`LedgerStore.transaction`: what a transaction does is
committed all together when its ``async with`` block ends normally, or not at all.
Amounts are ``Decimal`` and must be stored exactly (SQLite: TEXT, PostgreSQL: NUMERIC).
The service, the appliers and the API run the same code on either store.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from intentbus.ledger.accounting import ZERO, PositionState
from intentbus.schemas import Direction, Side

StreamKind = Literal["results", "fills"]


@dataclass(frozen=True, kw_only=True)
class AppliedFill:
    """Say what the ledger applied for one fill (the part a result is checked against)."""

    fill_id: str
    fills_seq: int
    size: Decimal
    fee_usd: Decimal


class LedgerConfigError(RuntimeError):
    """Raise when the database does not belong to this topology or this ledger version."""


class StoreVersionError(LedgerConfigError):
    """Raise when the database was written by another schema version of the ledger."""


class LedgerInUse(LedgerConfigError):
    """Raise when another ledger process writes the store (one writing ledger per store)."""


@dataclass(frozen=True, kw_only=True)
class FillRecord:
    """Record one applied fill: what it changed, and the position's size right after it."""

    fill_id: str
    fills_seq: int
    position_id: str
    intent_id: str
    side: Side
    size: Decimal
    price: Decimal
    fee_usd: Decimal
    realized_pnl_usd: Decimal
    size_after: Decimal
    direction_after: Direction
    applied_at: datetime
    notes: tuple[str, ...]
    fill_json: str


@dataclass(frozen=True, kw_only=True)
class ResultSummary:
    """Store one intent's final result, with the ledger's own totals of its fills.

    ``fill_count``, ``filled_size`` and ``fees_usd`` are what the ledger applied (fills up
    to ``last_fill_seq``); ``mismatch`` says the result disagrees, ``notes`` says how.
    ``closes`` says this result closed its position.
    """

    result_id: str
    results_seq: int
    position_id: str
    intent_id: str
    action: str
    status: str
    last_fill_seq: int
    fill_count: int
    filled_size: Decimal
    fees_usd: Decimal
    mismatch: bool
    closes: bool
    applied_at: datetime
    notes: tuple[str, ...]
    result_json: str


@dataclass(frozen=True, kw_only=True)
class WorkingOrder:
    """An intent's order live at the venue, from its ``OrderUpdate`` until its final result."""

    intent_id: str
    position_id: str
    update_id: str
    side: Side
    size: Decimal
    price: Decimal | None
    filled: Decimal
    order_state: str
    client_order_id: str
    results_seq: int
    created_at: datetime

    @property
    def open_size(self) -> Decimal:
        """Return the size not filled yet (never below zero)."""
        return max(ZERO, self.size - self.filled)


class LedgerTransaction(Protocol):
    """Read and change the ledger inside one atomic transaction."""

    async def applied_seq(self, stream: StreamKind) -> int:
        """Return the last handled sequence of ``stream`` as committed (0: none)."""

    async def advance_seq(self, stream: StreamKind, seq: int) -> None:
        """Raise the last handled sequence of ``stream`` to ``seq`` (never lower it)."""

    async def load(self, position_id: str) -> PositionState | None:
        """Return a position (locked for this transaction where the store can lock)."""

    async def save(self, state: PositionState) -> None:
        """Insert or update a position (never replacing another one)."""

    async def open_on(self, venue: str, book_id: str, token_contract: str) -> PositionState | None:
        """Return the position open (not closed) on this venue, book and symbol, if any."""

    async def fill(self, fill_id: str) -> FillRecord | None:
        """Return an applied fill."""

    async def record_fill(self, record: FillRecord) -> None:
        """Store an applied fill (a second record of one fill id fails)."""

    async def fills_of_intent(self, intent_id: str) -> list[AppliedFill]:
        """Return what was applied of an intent's fills, in ``FILLS`` order."""

    async def size_as_of(self, position_id: str, fills_seq: int) -> Decimal:
        """Return the position's size right after its last fill at or before ``fills_seq``."""

    async def summary(self, result_id: str) -> ResultSummary | None:
        """Return a stored final result."""

    async def record_summary(self, summary: ResultSummary) -> None:
        """Store a final result (a second record of one result id fails)."""

    async def flag_mismatch(self, result_id: str, problem: str) -> None:
        """Mark a stored result as disagreeing with the fills, adding ``problem``."""

    async def working(self, intent_id: str, position_id: str = "") -> WorkingOrder | None:
        """Return an intent's working order (``position_id``, when known, may spare a read)."""

    async def save_working(self, order: WorkingOrder) -> None:
        """Insert or replace an intent's working order."""

    async def remove_working(self, intent_id: str, position_id: str = "") -> None:
        """Forget an intent's working order, if any (``position_id``: as for :meth:`working`)."""

    async def working_of(self, position_id: str) -> list[WorkingOrder]:
        """Return a position's working orders."""


class Transactions(Protocol):
    """Open the ledger's read-write transactions (a store, or a view kept over one)."""

    def transaction(self) -> AbstractAsyncContextManager[LedgerTransaction]:
        """Return an async context running one atomic read-write transaction."""


class LedgerStore(Protocol):
    """Keep positions, fills, result summaries, working orders and the handled sequences."""

    @property
    def label(self) -> str:
        """Name the store for messages and logs (a path, or a URL without its password)."""

    async def claim_writer(self, wait_s: float) -> None:
        """Become the one ledger writing this store, before :meth:`open` and :meth:`set_aside`.

        Wait up to ``wait_s`` for another holder to go, then raise :class:`LedgerInUse`.
        The claim lasts until :meth:`close` or the process's end, whichever comes first.
        """

    async def open(self) -> None:
        """Open (and create or migrate, or refuse with :class:`LedgerConfigError`) the store."""

    async def close(self) -> None:
        """Release the store (and the writer claim)."""

    def transaction(self) -> AbstractAsyncContextManager[LedgerTransaction]:
        """Return an async context running one atomic read-write transaction."""

    async def set_aside(self) -> str | None:
        """Before :meth:`open`, move the stored ledger aside (kept); return where it went."""

    async def registrations(self, aside: str) -> list[PositionState]:
        """Return the terms of every opened position of a ledger set aside, by open time."""

    async def applied_seq(self, stream: StreamKind) -> int:
        """Return the last handled sequence of ``stream`` (0: none)."""

    async def get(self, position_id: str) -> PositionState | None:
        """Return one position."""

    async def working_orders(self, position_id: str | None = None) -> list[WorkingOrder]:
        """Return the working orders, of one position or all, by position then intent."""

    async def summary(self, result_id: str) -> ResultSummary | None:
        """Return a stored final result."""

    async def summaries(self, *, mismatch_only: bool = False) -> list[ResultSummary]:
        """Return the stored final results in ``RESULTS`` order."""

    async def fill(self, fill_id: str) -> FillRecord | None:
        """Return an applied fill."""

    async def meta(self, key: str) -> str | None:
        """Return a metadata value."""

    async def set_meta(self, key: str, value: str) -> None:
        """Store a metadata value."""

    async def list(
        self, venue: str | None = None, book_id: str | None = None
    ) -> list[PositionState]:
        """Return the positions, optionally of one venue and/or book, by id."""
