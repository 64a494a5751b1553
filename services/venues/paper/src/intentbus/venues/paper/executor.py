"""PaperExecutor: a venue that fills immediately at the latest mark, with fees and slippage.

Market (IOC) orders fill at the mark moved by ``slippage_bps`` against us, unless that
crosses the plan's protective price (then the IOC is cancelled, nothing trades). Limit
orders fill at their limit price; post-only (maker) orders pay the maker fee, the rest
the taker fee. Reduce-only orders shrink to the venue position and never flip it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from intentbus.executor.base import OrderOutcome, VenueContext
from intentbus.executor.kv import ensure_bucket
from intentbus.executor.sizing import plan_order
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionPlan,
    ExecutionStatus,
    Position,
    Side,
    Skip,
    SkipReason,
)
from intentbus.venues.paper.account import PaperAccount, PaperOrder, SymbolBook
from intentbus.venues.paper.config import PaperConfig
from intentbus.venues.paper.constants import ACCOUNT_BUCKET_PREFIX, FENCED
from intentbus.venues.paper.marks import MarkBook

log = logging.getLogger(__name__)


class PaperExecutor:
    """Execute plans against a simulated venue whose account lives in NATS KV."""

    def __init__(self, config: PaperConfig | None = None) -> None:
        self.config = config or PaperConfig()
        self.marks = MarkBook(self.config.name, self.config.prices)
        self._account: PaperAccount | None = None

    @property
    def venue(self) -> str:
        """Return the venue namespace (``paper`` unless configured otherwise)."""
        return self.config.name

    @property
    def account(self) -> PaperAccount:
        """Return the venue account (after :meth:`start`)."""
        if self._account is None:
            raise RuntimeError("PaperExecutor.start() was not called")
        return self._account

    async def start(self, context: VenueContext) -> None:
        """Open the account bucket and start following marks."""
        bucket = context.topology.bucket(ACCOUNT_BUCKET_PREFIX + self.venue)
        self._account = PaperAccount(await ensure_bucket(context.js, bucket))
        if self.config.follow_marks:
            await self.marks.follow(context.js, context.topology)

    async def stop(self) -> None:
        """Stop following marks."""
        await self.marks.close()

    def can_trade_now(self, symbol: str) -> bool:
        """Say whether ``symbol`` can trade: the paper venue is open whenever it has a mark."""
        return self.marks.price(symbol) is not None

    async def prepare(self, intent: ExecutionIntent, position: Position) -> ExecutionPlan | Skip:
        """Size the intent at the current mark under the symbol's rules."""
        mark = self.marks.price(intent.token_contract)
        if mark is None:
            return Skip(
                reason=SkipReason.NO_MARK.value,
                detail=f"no mark price for {intent.token_contract} on {self.venue}",
            )
        return plan_order(
            intent,
            position,
            mark=mark,
            rules=self.config.rules(intent.token_contract),
            venue=self.venue,
        )

    async def execute(self, plan: ExecutionPlan, position: Position) -> OrderOutcome:
        """Fill the plan's order once (same client order id: the first order is returned)."""
        mark = self.marks.price(plan.symbol)
        if mark is None:
            return OrderOutcome(status=ExecutionStatus.ERROR, error=f"no mark for {plan.symbol}")

        def fill(book: SymbolBook) -> PaperOrder:
            return self._fill(plan, mark, book)

        order, _ = await self.account.place(plan.client_order_id, plan.symbol, fill)
        return outcome_of(order)

    async def fence(self, plan: ExecutionPlan) -> OrderOutcome | None:
        """Take the client order id's gate with a zero-size ``fenced`` order, unless it filled.

        A later placement with that id finds the fenced order and fills nothing; a placement
        already past the gate either committed its fill first (returned here) or finds the
        fenced order in the book when it commits.
        """

        def fenced(book: SymbolBook) -> PaperOrder:
            note = "fenced: the executor will not send this order"
            return self._order(plan, book, 0.0, None, 0.0, FENCED, note)

        order, _ = await self.account.place(plan.client_order_id, plan.symbol, fenced)
        return None if order.status == FENCED else outcome_of(order)

    async def lookup(self, plan: ExecutionPlan) -> OrderOutcome | None:
        """Return the outcome of the order with the plan's client order id, or None."""
        order = await self.account.order(plan.client_order_id, plan.symbol)
        return None if order is None or order.status == FENCED else outcome_of(order)

    def _fill(self, plan: ExecutionPlan, mark: float, book: SymbolBook) -> PaperOrder:
        cfg = self.config
        size, note = plan.size, ""
        if plan.reduce_only:
            reducible = -book.size if plan.side is Side.BUY else book.size
            if reducible <= 0:
                size, note = 0.0, "reduce-only order would not reduce the venue position"
            elif reducible < size:
                size, note = reducible, f"reduce-only order shrunk to the position {reducible:g}"
        taker = plan.order_type == "market"
        if taker:
            move = cfg.slippage_bps / 10_000
            price = mark * (1 + move) if plan.side is Side.BUY else mark * (1 - move)
            limit = plan.price
            crosses = limit is not None and (
                price > limit if plan.side is Side.BUY else price < limit
            )
            if crosses:
                size, note = 0.0, f"IOC cancelled: fill {price:g} beyond limit {limit:g}"
        else:
            price = plan.price if plan.price is not None else mark
        fee_bps = cfg.maker_fee_bps if plan.post_only else cfg.taker_fee_bps
        fees = size * price * fee_bps / 10_000
        if size > 0:
            status = ExecutionStatus.SUCCESS.value
        else:
            status = "rejected" if plan.reduce_only and not taker else "cancelled"
        avg_price = price if size > 0 else None
        return self._order(plan, book, size, avg_price, round(fees, 10), status, note)

    def _order(
        self,
        plan: ExecutionPlan,
        book: SymbolBook,
        filled_size: float,
        avg_price: float | None,
        fees_usd: float,
        status: str,
        note: str,
    ) -> PaperOrder:
        """Return the venue's record of the plan's order, numbered after the book's last."""
        return PaperOrder(
            order_id=f"{self.venue}-{plan.symbol}-{book.order_count + 1}",
            client_order_id=plan.client_order_id,
            symbol=plan.symbol,
            side=plan.side.value,
            order_type=plan.order_type,
            time_in_force=plan.time_in_force,
            reduce_only=plan.reduce_only,
            size=plan.size,
            filled_size=filled_size,
            avg_price=avg_price,
            fees_usd=fees_usd,
            status=status,
            created_at=datetime.now(UTC),
            note=note,
        )


def outcome_of(order: PaperOrder) -> OrderOutcome:
    """Translate a paper order into the runtime's outcome."""
    filled = order.filled_size > 0
    metadata = {"venue_status": order.status}
    if order.note:
        metadata["note"] = order.note
    return OrderOutcome(
        status=ExecutionStatus.SUCCESS if filled else ExecutionStatus.ERROR,
        filled_size=order.filled_size,
        avg_price=order.avg_price,
        fees_usd=order.fees_usd,
        venue_order_id=order.order_id,
        error=None if filled else order.note or order.status,
        metadata=metadata,
    )
