"""Apply ``RESULTS`` messages (one, or a fetched batch) or an open request in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import msgspec

from intentbus.ledger.accounting import (
    ORIGIN_IMPLICIT,
    ORIGIN_OPENED,
    InvalidFill,
    PositionState,
    apply_result,
)
from intentbus.ledger.storage import AuditRecord, LedgerStore, LedgerTransaction
from intentbus.schemas import ExecutionResult, OpenPosition, decoder

_result_decoder = decoder(ExecutionResult)


@dataclass(frozen=True)
class Applied:
    """The result was applied now."""

    result_id: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Duplicate:
    """The result had been applied before; nothing changed."""

    result_id: str


@dataclass(frozen=True)
class Rejected:
    """The message cannot be applied; it must be dead-lettered for an operator."""

    error: str


Outcome = Applied | Duplicate | Rejected


class OpenConflict(ValueError):
    """Raise when a position is opened again with different terms."""


def apply_message(store: LedgerStore, data: bytes, seq: int) -> Outcome:
    """Apply one message of stream sequence ``seq`` in one transaction.

    The sequence is recorded as handled whatever the outcome, so read-your-writes waits
    never hang on a duplicate or a rejected message. A rejected message stores no
    result id, so a corrected copy published later under the same id is still applied.
    """
    with store.transaction() as tx:
        return _apply(tx, data, seq)


def apply_messages(store: LedgerStore, messages: Sequence[tuple[bytes, int]]) -> list[Outcome]:
    """Apply several ``(data, seq)`` messages, in the order given, in one transaction.

    Each message has exactly the effect :func:`apply_message` would give it, applied one
    after another (a result id repeated within the batch is a :class:`Duplicate`), but
    there is one ``COMMIT`` for all of them: either every outcome is stored or, when the
    store fails, none is. Outcomes are returned in the order of ``messages``.
    """
    with store.transaction() as tx:
        return [_apply(tx, data, seq) for data, seq in messages]


def _apply(tx: LedgerTransaction, data: bytes, seq: int) -> Outcome:
    tx.advance_seq(seq)
    try:
        result = _result_decoder.decode(data)
    except msgspec.MsgspecError as exc:
        return Rejected(f"invalid result: {exc}")
    if tx.is_applied(result.result_id):
        return Duplicate(result.result_id)
    try:
        change = apply_result(tx.load(result.position_id), result)
    except InvalidFill as exc:
        return Rejected(str(exc))
    if change.state is not None:
        tx.save(change.state)
    tx.record(
        AuditRecord(
            result_id=result.result_id,
            results_seq=seq,
            position_id=result.position_id,
            intent_id=result.intent_id,
            status=result.status.value,
            applied_at=datetime.now(UTC),
            notes=change.notes,
            result_json=data.decode("utf-8"),
        )
    )
    return Applied(result.result_id, change.notes)


def differences(state: PositionState, request: OpenPosition) -> list[str]:
    """Name every term of ``request`` that differs from the stored position."""
    found = []
    for field, ours, theirs in (
        ("venue", state.venue, request.venue),
        ("book_id", state.book_id, request.book_id),
        ("token_contract", state.token_contract, request.token_contract),
        ("direction", state.direction.value, request.direction.value),
        ("allocation_usd", state.allocation_usd, request.allocation_usd),
    ):
        if ours != theirs:
            found.append(f"{field} is {ours!r}, requested {theirs!r}")
    return found


def open_position(
    store: LedgerStore, request: OpenPosition, now: datetime | None = None
) -> PositionState:
    """Open a position; re-opening with the same terms returns it unchanged.

    A position a result created implicitly is adopted when venue, book, symbol and
    direction match: it takes the requested allocation. Any other difference raises
    :class:`OpenConflict` naming it.
    """
    with store.transaction() as tx:
        current = tx.load(request.position_id)
        if current is not None and current.origin == ORIGIN_IMPLICIT:
            conflicts = [d for d in differences(current, request) if "allocation" not in d]
            if conflicts:
                raise OpenConflict(_conflict_message(request.position_id, conflicts))
            adopted = replace(
                current,
                allocation_usd=request.allocation_usd,
                origin=ORIGIN_OPENED,
                opened_at=now or datetime.now(UTC),
            )
            tx.save(adopted)
            return adopted
        if current is not None:
            conflicts = differences(current, request)
            if conflicts:
                raise OpenConflict(_conflict_message(request.position_id, conflicts))
            return current
        opened_at = now or datetime.now(UTC)
        state = PositionState(
            position_id=request.position_id,
            venue=request.venue,
            book_id=request.book_id,
            token_contract=request.token_contract,
            direction=request.direction,
            allocation_usd=request.allocation_usd,
            updated_at=opened_at,
            origin=ORIGIN_OPENED,
            opened_at=opened_at,
        )
        tx.save(state)
        return state


def _conflict_message(position_id: str, conflicts: list[str]) -> str:
    return f"position {position_id} is already open with different terms: " + "; ".join(conflicts)
