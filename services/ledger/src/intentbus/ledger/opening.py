"""Open (register) a position: one open position per venue, book and symbol.

Each book is one venue account, and a venue keeps one net position per symbol per
account, so the ledger keeps at most one open position per (venue, book, symbol): its
size is then the venue's net. A closed position frees its symbol; a flat position that
was never exited still holds it. Opening an id again with the same terms is a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from intentbus.ledger.accounting import PositionState, dec
from intentbus.ledger.storage import Transactions
from intentbus.schemas import OpenPosition


class OpenConflict(ValueError):
    """Raise when a position is opened again with different terms."""


class SymbolTaken(OpenConflict):
    """Raise when another position is open on the same venue, book and symbol."""


def _show(value: object) -> str:
    return str(value) if isinstance(value, Decimal) else repr(value)


def differences(state: PositionState, request: OpenPosition) -> list[str]:
    """Name every term of ``request`` that differs from the stored position."""
    found = []
    for field, ours, theirs in (
        ("venue", state.venue, request.venue),
        ("book_id", state.book_id, request.book_id),
        ("token_contract", state.token_contract, request.token_contract),
        ("direction", state.opened_direction.value, request.direction.value),
        ("allocation_usd", state.allocation_usd, dec(request.allocation_usd)),
    ):
        if ours != theirs:
            found.append(f"{field} is {_show(ours)}, requested {_show(theirs)}")
    return found


def symbol_taken_message(request: OpenPosition, first: PositionState) -> str:
    """Say that ``request`` cannot open because ``first`` holds its venue, book and symbol."""
    return (
        f"cannot open position {request.position_id}: position {first.position_id} is already "
        f"open on venue {first.venue}, book {first.book_id}, symbol {first.token_contract} "
        f"(one open position per venue, book and symbol; exit {first.position_id} first)"
    )


async def open_position(
    store: Transactions, request: OpenPosition, now: datetime | None = None
) -> PositionState:
    """Open a position; re-opening with the same terms returns it unchanged (even closed).

    Raise :class:`OpenConflict` naming each differing term, or :class:`SymbolTaken`
    naming the position already open on the venue, book and symbol.
    """
    async with store.transaction() as tx:
        current = await tx.load(request.position_id)
        if current is not None:
            conflicts = differences(current, request)
            if conflicts:
                raise OpenConflict(
                    f"position {request.position_id} is already open with different terms: "
                    + "; ".join(conflicts)
                )
            return current
        first = await tx.open_on(request.venue, request.book_id, request.token_contract)
        if first is not None:
            raise SymbolTaken(symbol_taken_message(request, first))
        opened_at = now or datetime.now(UTC)
        state = PositionState(
            position_id=request.position_id,
            venue=request.venue,
            book_id=request.book_id,
            token_contract=request.token_contract,
            direction=request.direction,
            opened_direction=request.direction,
            allocation_usd=dec(request.allocation_usd),
            updated_at=opened_at,
            opened_at=opened_at,
        )
        await tx.save(state)
        return state
