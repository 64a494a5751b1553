"""Builders of the messages the ledger consumes, shared by the ledger's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionResult,
    ExecutionStatus,
    Fill,
    Liquidity,
    OpenPosition,
    OrderState,
    OrderUpdate,
    Side,
    fill_id_for,
    order_update_id_for,
    result_id_for,
)

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def fill(
    n: int | str,
    side: Side = Side.BUY,
    size: float = 1.0,
    price: float = 100.0,
    *,
    intent: str = "i1",
    position: str = "p1",
    fee: float = 0.0,
    symbol: str = "BTC",
    **extra: Any,
) -> Fill:
    """Return fill ``n`` of an intent (its venue fill id is ``v<n>``)."""
    return Fill(
        fill_id=fill_id_for("paper", f"v{n}"),
        venue_fill_id=f"v{n}",
        venue="paper",
        book_id="main",
        account="acct-main",
        intent_id=intent,
        position_id=position,
        client_order_id=f"c-{intent}",
        symbol=symbol,
        side=side,
        size=size,
        price=price,
        fee=fee,
        liquidity=Liquidity.TAKER,
        venue_time=AT,
        created_at=AT,
        **extra,
    )


def result(
    intent: str = "i1",
    *,
    action: ActionType = ActionType.ADD,
    status: ExecutionStatus = ExecutionStatus.SUCCESS,
    position: str = "p1",
    fill_count: int = 0,
    filled_size: float = 0.0,
    fees_usd: float = 0.0,
    last_fill_seq: int = 0,
    side: Side | None = Side.BUY,
    symbol: str = "BTC",
) -> ExecutionResult:
    """Return the final result of ``intent``."""
    return ExecutionResult(
        result_id=result_id_for(intent),
        intent_id=intent,
        position_id=position,
        venue="paper",
        book_id="main",
        token_contract=symbol,
        action=action,
        status=status,
        created_at=AT,
        order_state=OrderState.FILLED if fill_count else OrderState.CANCELLED,
        side=side,
        filled_size=filled_size,
        fees_usd=fees_usd,
        fill_count=fill_count,
        last_fill_seq=last_fill_seq,
    )


def working(
    intent: str = "i1",
    side: Side = Side.BUY,
    size: float = 2.0,
    price: float | None = 100.0,
    *,
    position: str = "p1",
    state: OrderState = OrderState.WORKING,
) -> OrderUpdate:
    """Return the order update saying ``intent``'s order is live."""
    return OrderUpdate(
        update_id=order_update_id_for(intent, state),
        intent_id=intent,
        position_id=position,
        venue="paper",
        book_id="main",
        account="acct-main",
        token_contract="BTC",
        client_order_id=f"c-{intent}",
        side=side,
        size=size,
        order_state=state,
        created_at=AT,
        price=price,
    )


def open_request(
    position: str = "p1",
    *,
    symbol: str = "BTC",
    allocation: float = 1_000.0,
    direction: Direction = Direction.LONG,
) -> OpenPosition:
    """Return a request opening ``position`` on paper/main."""
    return OpenPosition(
        position_id=position,
        venue="paper",
        book_id="main",
        token_contract=symbol,
        direction=direction,
        allocation_usd=allocation,
    )
