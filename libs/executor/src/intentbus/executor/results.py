"""Build the ExecutionResult of an intent from a skip, or a plan and the venue's outcome."""

from __future__ import annotations

from datetime import UTC, datetime

from intentbus.executor.base import OrderOutcome
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionPlan,
    ExecutionResult,
    ExecutionStatus,
    Side,
    Skip,
    result_id_for,
)


def skipped(intent: ExecutionIntent, venue: str, skip: Skip) -> ExecutionResult:
    """Return the SKIPPED result of an intent."""
    metadata = {"detail": skip.detail} if skip.detail else {}
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


def executed(
    intent: ExecutionIntent, plan: ExecutionPlan, outcome: OrderOutcome
) -> ExecutionResult:
    """Return the result of a sent (or possibly sent) order.

    ``tokens_bought``/``tokens_sold`` are set for every action (EXIT included): the filled
    size on the plan's side, 0.0 on the other. An UNKNOWN outcome reports no sizes, price
    or fees at all: nothing is guessed.
    """
    known = outcome.status is not ExecutionStatus.UNKNOWN
    filled = outcome.filled_size
    metadata = dict(outcome.metadata)
    metadata.setdefault("order_type", plan.order_type)
    return ExecutionResult(
        result_id=result_id_for(intent.intent_id),
        intent_id=intent.intent_id,
        position_id=intent.position_id,
        venue=plan.venue,
        book_id=intent.book_id,
        token_contract=intent.token_contract,
        action=intent.action,
        status=outcome.status,
        created_at=datetime.now(UTC),
        intent_created_at=intent.created_at,
        plan=plan,
        side=plan.side,
        tx_hash=outcome.venue_order_id,
        client_order_id=plan.client_order_id,
        tokens_bought=(filled if plan.side is Side.BUY else 0.0) if known else None,
        tokens_sold=(filled if plan.side is Side.SELL else 0.0) if known else None,
        price=outcome.avg_price if known else None,
        slippage_bps=slippage_bps(plan.side, outcome.avg_price, plan.reference_price),
        fees_usd=outcome.fees_usd if known else None,
        error=outcome.error,
        metadata=metadata,
    )


def unknown(intent: ExecutionIntent, plan: ExecutionPlan, error: str) -> ExecutionResult:
    """Return an UNKNOWN result: the order may exist and the venue cannot tell."""
    return executed(intent, plan, OrderOutcome(status=ExecutionStatus.UNKNOWN, error=error))
