"""Outcomes of applying one stream message, and applying a batch in one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from intentbus.ledger.storage import LedgerTransaction, Transactions


@dataclass(frozen=True)
class Applied:
    """The message was applied now."""

    message_id: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Duplicate:
    """The message had been applied before; nothing changed."""

    message_id: str


@dataclass(frozen=True)
class Rejected:
    """The message cannot be applied; it must be dead-lettered for an operator."""

    error: str


@dataclass(frozen=True)
class Waiting:
    """A final result names fills the ledger has not applied yet; nothing changed.

    Its sequence is not handled: it is applied once ``FILLS`` is applied up to
    ``wanted_fills_seq``, never before, and nothing after it in ``RESULTS`` either.
    """

    result_id: str
    wanted_fills_seq: int
    applied_fills_seq: int


Outcome = Applied | Duplicate | Rejected | Waiting
ApplyOne = Callable[[LedgerTransaction, bytes, int], Awaitable[Outcome]]


async def apply_message(store: Transactions, apply: ApplyOne, data: bytes, seq: int) -> Outcome:
    """Apply one message of stream sequence ``seq`` in one transaction."""
    async with store.transaction() as tx:
        return await apply(tx, data, seq)


async def apply_messages(
    store: Transactions, apply: ApplyOne, messages: Sequence[tuple[bytes, int]]
) -> list[Outcome]:
    """Apply ``(data, seq)`` messages in the order given, in one transaction.

    Each has exactly the effect :func:`apply_message` would give it, one after another,
    with one ``COMMIT`` for all: either every outcome is stored or, when the store
    fails, none is. The batch stops at the first :class:`Waiting` (its last outcome):
    what follows it is not applied.
    """
    outcomes: list[Outcome] = []
    async with store.transaction() as tx:
        for data, seq in messages:
            outcome = await apply(tx, data, seq)
            outcomes.append(outcome)
            if isinstance(outcome, Waiting):
                break
    return outcomes
