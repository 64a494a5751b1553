"""The executor's view of one order from an ``order`` answer (or a local refusal)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from intentbus.executor.base import VenueOrder
from intentbus.schemas import ExecutionPlan, OrderState
from intentbus.venues.hyperliquid import constants as c


def placed(plan: ExecutionPlan, status: Any) -> VenueOrder:
    """Return the order from one status of an ``order`` answer."""
    now = datetime.now(UTC)
    base = _order(plan, OrderState.WORKING, now)
    if "resting" in status:
        return msgspec_replace(base, venue_order_id=str(status["resting"]["oid"]))
    if "filled" in status:
        filled = status["filled"]
        size = float(filled["totalSz"])
        state = OrderState.FILLED if size >= plan.size - 1e-12 else OrderState.CANCELLED
        return msgspec_replace(
            base,
            state=state,
            filled_size=size,
            avg_price=float(filled["avgPx"]),
            venue_order_id=str(filled["oid"]),
            reason="" if state is OrderState.FILLED else "IOC rest cancelled",
        )
    error = str(status.get("error", status))
    state = OrderState.CANCELLED if error.startswith(c.ERR_IOC_NO_MATCH) else OrderState.REJECTED
    return msgspec_replace(base, state=state, reason=error)


def refused(plan: ExecutionPlan, reason: str) -> VenueOrder:
    return msgspec_replace(_order(plan, OrderState.REJECTED, datetime.now(UTC)), reason=reason)


def _order(plan: ExecutionPlan, state: OrderState, now: datetime) -> VenueOrder:
    return VenueOrder(
        client_order_id=plan.client_order_id,
        account=plan.account,
        symbol=plan.symbol,
        side=plan.side,
        order_type=plan.order_type,
        time_in_force=plan.time_in_force,
        size=plan.size,
        state=state,
        price=plan.price,
        reduce_only=plan.reduce_only,
        updated_at=now,
    )


def msgspec_replace(order: VenueOrder, **changes: Any) -> VenueOrder:
    """Return ``order`` with ``changes``."""
    return msgspec.structs.replace(order, **changes)
