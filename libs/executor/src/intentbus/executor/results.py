"""Build the messages of an intent's life: its skip, order update, fills and final result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from intentbus.executor.base import VenueFill, VenueOrder
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionPlan,
    ExecutionResult,
    ExecutionStatus,
    Fill,
    OrderState,
    OrderUpdate,
    Side,
    Skip,
    fill_id_for,
    order_update_id_for,
    result_id_for,
)

# Sizes that differ by less than this are equal (venues round sizes to their lots).
SIZE_EPSILON = 1e-9


def skipped(intent: ExecutionIntent, venue: str, skip: Skip) -> ExecutionResult:
    """Return the SKIPPED result of an intent."""
    metadata: dict[str, str | int | float | bool | None] = (
        {"detail": skip.detail} if skip.detail else {}
    )
    if skip.constraints_applied:
        metadata["constraints_applied"] = ",".join(skip.constraints_applied)
    return ExecutionResult(
        result_id=result_id_for(intent.intent_id),
        intent_id=intent.intent_id,
        position_id=intent.position_id,
        venue=venue,
        book_id=intent.book_id,
        token_contract=intent.token_contract,
        action=intent.action,
        status=ExecutionStatus.SKIPPED,
        created_at=datetime.now(UTC),
        intent_created_at=intent.created_at,
        skip_reason=skip.reason,
        metadata=metadata,
    )


def slippage_bps(side: Side, price: float | None, reference: float | None) -> float | None:
    """Return the slippage against the reference price, positive when it cost us."""
    if price is None or not reference:
        return None
    move = (price - reference) / reference * 10_000
    return round(move if side is Side.BUY else -move, 4)


def status_of(state: OrderState, filled: float, size: float) -> ExecutionStatus:
    """Sum a final order state up as the intent's status."""
    if state is OrderState.UNKNOWN:
        return ExecutionStatus.UNKNOWN
    if state is OrderState.FILLED or (filled > 0 and filled >= size - SIZE_EPSILON):
        return ExecutionStatus.SUCCESS
    if filled > 0:
        return ExecutionStatus.PARTIAL
    if state is OrderState.REJECTED:
        return ExecutionStatus.ERROR
    return ExecutionStatus.CANCELLED


@dataclass
class FillTotals:
    """What an order's published fills add up to."""

    size: float = 0.0
    notional: float = 0.0
    fees: float = 0.0

    def add(self, size: float, price: float, fee: float) -> None:
        """Count one fill."""
        self.size += size
        self.notional += size * price
        self.fees += fee


def final(
    intent: ExecutionIntent,
    plan: ExecutionPlan,
    order: VenueOrder,
    *,
    fill_count: int,
    last_fill_seq: int,
    reason: str | None = None,
    fills: FillTotals | None = None,
) -> ExecutionResult:
    """Return the final summary of a finished order (its fills are already published).

    With ``fills`` (what the published fills add up to) the fees and the average price
    are the fills': a venue's order status may not report them (Hyperliquid's does not
    carry fees), and the ledger checks the summary against those fills.
    """
    filled = order.filled_size
    status = status_of(order.state, filled, plan.size)
    why = reason or order.reason or None
    fees = order.fees_usd
    avg_price = order.avg_price
    if fills is not None and fills.size > 0:
        fees = fills.fees
        avg_price = fills.notional / fills.size
    return ExecutionResult(
        result_id=result_id_for(intent.intent_id),
        intent_id=intent.intent_id,
        position_id=intent.position_id,
        venue=plan.venue,
        book_id=intent.book_id,
        account=plan.account,
        token_contract=intent.token_contract,
        action=intent.action,
        status=status,
        order_state=order.state,
        created_at=datetime.now(UTC),
        intent_created_at=intent.created_at,
        plan=plan,
        side=plan.side,
        client_order_id=plan.client_order_id,
        venue_order_id=order.venue_order_id,
        requested_size=plan.size,
        filled_size=filled,
        avg_price=avg_price if filled > 0 else None,
        fees_usd=fees,
        fill_count=fill_count,
        last_fill_seq=last_fill_seq,
        tokens_bought=filled if plan.side is Side.BUY else 0.0,
        tokens_sold=filled if plan.side is Side.SELL else 0.0,
        slippage_bps=slippage_bps(plan.side, avg_price, plan.reference_price),
        error=why if status in (ExecutionStatus.ERROR, ExecutionStatus.UNKNOWN) else None,
        metadata={"order_type": plan.order_type.value, **({"reason": why} if why else {})},
    )


def unknown(intent: ExecutionIntent, plan: ExecutionPlan, error: str) -> ExecutionResult:
    """Return an UNKNOWN result: the order may exist and the venue cannot tell."""
    order = VenueOrder(
        client_order_id=plan.client_order_id,
        account=plan.account,
        symbol=plan.symbol,
        side=plan.side,
        order_type=plan.order_type,
        time_in_force=plan.time_in_force,
        size=plan.size,
        state=OrderState.UNKNOWN,
        reason=error,
    )
    return final(intent, plan, order, fill_count=0, last_fill_seq=0, reason=error)


def order_update(intent: ExecutionIntent, plan: ExecutionPlan, order: VenueOrder) -> OrderUpdate:
    """Return the update saying the intent's order is live at the venue."""
    return OrderUpdate(
        update_id=order_update_id_for(intent.intent_id, OrderState.WORKING),
        intent_id=intent.intent_id,
        position_id=intent.position_id,
        venue=plan.venue,
        book_id=intent.book_id,
        account=plan.account,
        token_contract=intent.token_contract,
        client_order_id=plan.client_order_id,
        side=plan.side,
        size=plan.size,
        order_state=order.state,
        created_at=datetime.now(UTC),
        price=plan.price,
        filled_size=order.filled_size,
        venue_order_id=order.venue_order_id,
    )


def fill_message(
    intent: ExecutionIntent, plan: ExecutionPlan, fill: VenueFill, state: OrderState | None
) -> Fill:
    """Return the bus message of one venue fill of the intent's order."""
    return Fill(
        fill_id=fill_id_for(plan.venue, fill.venue_fill_id),
        venue_fill_id=fill.venue_fill_id,
        venue=plan.venue,
        book_id=intent.book_id,
        account=fill.account,
        intent_id=intent.intent_id,
        position_id=intent.position_id,
        client_order_id=fill.client_order_id,
        symbol=fill.symbol,
        side=fill.side,
        size=fill.size,
        price=fill.price,
        fee=fill.fee,
        fee_currency=fill.fee_currency,
        liquidity=fill.liquidity,
        venue_time=fill.venue_time,
        created_at=datetime.now(UTC),
        venue_order_id=fill.venue_order_id,
        closed_pnl=fill.closed_pnl,
        order_state=state,
    )
