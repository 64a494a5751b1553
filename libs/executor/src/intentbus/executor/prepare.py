"""``prepare``: turn an intent into a venue plan, or a skip with a reason.

The runtime sizes every venue's orders the same way (:func:`~intentbus.executor.sizing.
plan_order`) from the rules and the mark the venue provides; the venue only adjusts the
sized plan to its own grid (``adjust``).
"""

from __future__ import annotations

from intentbus import telemetry
from intentbus.executor.base import BaseExecutor
from intentbus.executor.sizing import plan_order, position_mismatch
from intentbus.schemas import ExecutionIntent, ExecutionPlan, Position, Skip, SkipReason
from intentbus.telemetry import instruments


@telemetry.traced_sync("executor prepare", histogram=instruments.prepare_duration)
def prepare(
    executor: BaseExecutor, intent: ExecutionIntent, position: Position, venue_net: float
) -> ExecutionPlan | Skip:
    """Return the venue's plan for ``intent`` given the account's net, or a skip."""
    mismatch = position_mismatch(intent, position)
    if mismatch is not None:
        return mismatch
    symbol = intent.token_contract
    rules = executor.rules(symbol)
    if rules is None:
        return Skip(
            reason=SkipReason.UNKNOWN_SYMBOL.value,
            detail=f"{symbol} is not listed on {executor.venue}",
        )
    mark = executor.mark(symbol)
    if mark is None:
        return Skip(reason=SkipReason.NO_MARK.value, detail=f"no mark price for {symbol}")
    if not executor.can_trade_now(symbol):
        return Skip(reason=SkipReason.MARKET_CLOSED.value, detail=f"{symbol} is not trading")
    planned = plan_order(
        intent,
        position,
        mark=mark,
        rules=rules,
        venue=executor.venue,
        account=executor.account_for(intent.book_id),
        venue_net=venue_net,
    )
    return executor.adjust(planned) if isinstance(planned, ExecutionPlan) else planned
