"""How the paper venue matches orders against its marks (pure: no I/O, time given).

The market is the latest mark of each symbol; a taker pays ``slippage_bps`` on it (buys
at ``mark * (1 + slippage)``, sells at ``mark * (1 - slippage)``).

- A **market or IOC** order fills at that price only if it is within its protection
  price (``plan.price``: the limit of an IOC limit), else nothing fills; at most the
  taker depth (``taker_depth_usd``/``taker_depths``, unlimited by default) fills; it
  never rests: what did not fill is cancelled.
- A **GTC limit the mark has reached on arrival** (buy: limit >= mark; sell: limit <=
  mark) takes at once at that price, capped at its limit (so at the mark or better than
  its limit), up to the taker depth; the rest rests.
- A **resting** limit fills when a later mark reaches it (buy: mark <= limit; sell:
  mark >= limit), at its limit, as maker, up to the depth of that mark update
  (``depth_usd``/``depths``, per side, shared by the symbol's resting orders: the best
  priced, then oldest, fill first).
- **Post-only** orders the mark has reached on arrival (they would take) are rejected.
- **Reduce-only** orders are shrunk to what reduces the account's net (rejected when
  there is nothing to reduce) and never flip it; a resting one is cancelled once the
  net is gone.
- An order with ``valid_until`` never fills at or after it: the venue expires it.
"""

from __future__ import annotations

import math

from msgspec.structs import replace

from intentbus.executor.base import VenueOrder
from intentbus.executor.sizing import round_down
from intentbus.schemas import (
    ExecutionPlan,
    Liquidity,
    Mark,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
)
from intentbus.venues.paper.config import PaperConfig
from intentbus.venues.paper.constants import MAX_ORDERS_PER_STEP, SIZE_EPSILON
from intentbus.venues.paper.records import MarkRecord, OrderKey, OrderRecord
from intentbus.venues.paper.step import Step, clean


class Depth:
    """Liquidity for resting orders left per symbol and side until the next mark (tokens)."""

    def __init__(self, config: PaperConfig) -> None:
        self._config = config
        self._left: dict[tuple[str, Side], float] = {}

    def reset(self, symbol: str, mark: float) -> None:
        """Refill both sides of ``symbol`` for a new mark."""
        for side in Side:
            self._left[(symbol, side)] = self._config.depth(symbol, mark)

    def left(self, symbol: str, side: Side, mark: float) -> float:
        """Return what resting orders on ``side`` of ``symbol`` may still fill."""
        return self._left.get((symbol, side), self._config.depth(symbol, mark))

    def take(self, symbol: str, side: Side, size: float) -> None:
        """Use up ``size`` of the side's liquidity."""
        key = (symbol, side)
        self._left[key] = max(self._left.get(key, math.inf) - size, 0.0)


class Matcher:
    """Apply placements, cancels, fences, marks and expiries to a :class:`Step`."""

    def __init__(self, config: PaperConfig) -> None:
        self.config = config
        self.depth = Depth(config)
        self._owners = {account: book for book, account in config.accounts.items()}

    # placing ---------------------------------------------------------------------------
    def place(self, step: Step, plan: ExecutionPlan, mark: float | None) -> VenueOrder:
        """Place the plan's order once; a known client order id returns its order."""
        key = (plan.account, plan.client_order_id)
        existing = step.order(key)
        if existing is not None:
            return existing.order
        misdirected = self._misdirected(step, plan)
        fenced = "fenced: this client order id may no longer be used"
        unplaceable = misdirected or (fenced if step.is_fenced(key) else "")
        number = step.next_order_number() if not unplaceable else 0
        record = OrderRecord(
            order=VenueOrder(
                client_order_id=plan.client_order_id,
                account=plan.account,
                symbol=plan.symbol,
                side=plan.side,
                order_type=plan.order_type,
                time_in_force=plan.time_in_force,
                size=plan.size,
                state=OrderState.WORKING,
                price=plan.price,
                reduce_only=plan.reduce_only,
                venue_order_id=f"{step.venue}-o{number}" if number else None,
                updated_at=step.now,
            ),
            book_id=plan.book_id,
            number=number,
            created_at=step.now,
            valid_until=plan.valid_until,
        )
        if unplaceable:  # refused and not recorded: it never was placed on this account
            return replace(record.order, state=OrderState.REJECTED, reason=unplaceable)
        problem = self._refusal(plan, mark)
        if problem or mark is None:
            return step.update(record, state=OrderState.REJECTED, reason=problem).order
        if plan.valid_until is not None and plan.valid_until <= step.now:
            reason = "expired: valid_until passed before the order arrived"
            return step.update(record, state=OrderState.EXPIRED, reason=reason).order
        if plan.reduce_only:
            reducible = self._reducible(step, record)
            net = step.account(plan.account, plan.book_id).net(plan.symbol)
            if reducible <= SIZE_EPSILON:
                reason = f"reduce-only: nothing to reduce (net {net:g})"
                return step.update(record, state=OrderState.REJECTED, reason=reason).order
            if reducible < plan.size:
                reason = f"reduce-only: shrunk from {plan.size:g} to the net {net:g}"
                record = step.update(record, size=reducible, reason=reason)
        buy, limit = plan.side is Side.BUY, plan.price
        taker_only = plan.order_type is OrderType.MARKET or plan.time_in_force is TimeInForce.IOC
        price = self._taker_price(plan.side, mark)
        if limit is None:
            takes = True
        elif taker_only:  # only within its protection price
            takes = price <= limit if buy else price >= limit
        else:  # a limit the mark has reached takes, never beyond its limit
            takes = mark <= limit if buy else mark >= limit
            price = min(price, limit) if buy else max(price, limit)
        if plan.post_only and takes:
            reason = f"post-only order would take: limit {limit:g}, mark {mark:g}"
            return step.update(record, state=OrderState.REJECTED, reason=reason).order
        if takes:
            record = self._fill(step, record, mark, price, Liquidity.TAKER)
        if taker_only and record.order.state.is_live:
            why = "no liquidity within its price" if not takes else "the taker depth is used up"
            reason = f"IOC: the rest is cancelled, {why} (market {price:g})"
            record = step.update(record, state=OrderState.CANCELLED, reason=reason)
        return step.put(record).order

    def _misdirected(self, step: Step, plan: ExecutionPlan) -> str:
        """Say why the plan is not for this venue and account, or ``""``."""
        cfg = self.config
        account = step.account(plan.account, plan.book_id)
        owner = self._owners.get(plan.account, account.book_id)
        if plan.venue != cfg.name:
            return f"this is paper venue {cfg.name}, not {plan.venue}"
        if cfg.account_for(plan.book_id) != plan.account:
            return f"book {plan.book_id} trades on account {cfg.account_for(plan.book_id)}"
        if owner != plan.book_id:
            return f"account {plan.account} belongs to book {owner} (one account per book)"
        return ""

    def _refusal(self, plan: ExecutionPlan, mark: float | None) -> str:
        cfg, symbol = self.config, plan.symbol
        rules = cfg.rules(symbol)
        lots = plan.size / rules.lot_size
        if mark is None:
            return f"no mark price for {symbol}"
        if not plan.size > 0:
            return "size must be > 0"
        if abs(lots - round(lots)) > 1e-6:
            return f"size {plan.size:g} is not a multiple of the lot size {rules.lot_size:g}"
        if plan.order_type is OrderType.LIMIT and not (plan.price or 0) > 0:
            return "a limit order needs a price > 0"
        if plan.order_type is OrderType.MARKET and plan.post_only:
            return "a market order cannot be post-only"
        if not plan.reduce_only and plan.size * mark < rules.min_notional_usd:
            return f"notional {plan.size * mark:.2f} is below {rules.min_notional_usd:g} USD"
        if plan.leverage > rules.max_leverage:
            return f"leverage {plan.leverage:g} is above {symbol}'s {rules.max_leverage:g}"
        return ""

    # matching --------------------------------------------------------------------------
    def on_mark(self, step: Step, new: Mark) -> None:
        """Expire what is due, refill the depth, then fill the resting orders ``mark`` reaches."""
        symbol, mark = new.symbol, new.price
        step.mark = MarkRecord(symbol=symbol, price=mark, at=new.at)
        self.expire(step, symbol)
        self.depth.reset(symbol, mark)
        live = [r for key in step.state.live.get(symbol, {}) if (r := step.order(key))]
        buys = [r for r in live if r.order.side is Side.BUY and mark <= (r.order.price or 0)]
        sells = [r for r in live if r.order.side is Side.SELL and mark >= (r.order.price or 0)]
        buys.sort(key=lambda r: (-(r.order.price or 0), r.number))
        sells.sort(key=lambda r: (r.order.price or 0, r.number))
        for record in buys + sells:
            if len(step.orders) >= MAX_ORDERS_PER_STEP:
                break  # the rest fills on the next mark
            if record.order.state.is_live and record.order.price:
                self._fill(step, record, mark, record.order.price, Liquidity.MAKER)

    def expire(self, step: Step, symbol: str | None = None) -> int:
        """Expire the live orders (of ``symbol``) whose ``valid_until`` has come.

        Return how many (at most ``MAX_ORDERS_PER_STEP``: call again for the rest).
        """
        symbols = [symbol] if symbol is not None else list(step.state.live)
        count = 0
        for name in symbols:
            for key in list(step.state.live.get(name, {})):
                record = step.order(key)
                if record is None or not record.order.state.is_live:
                    continue
                if record.valid_until is not None and record.valid_until <= step.now:
                    step.update(record, state=OrderState.EXPIRED, reason="expired: valid_until")
                    count += 1
                    if count >= MAX_ORDERS_PER_STEP:
                        return count
        return count

    def cancel(self, step: Step, key: OrderKey) -> VenueOrder | None:
        """Cancel a live order; return its state (None: never placed)."""
        record = step.order(key)
        if record is None:
            return None
        if record.order.state.is_live:
            record = step.update(record, state=OrderState.CANCELLED, reason="cancelled")
        return record.order

    def fence(self, step: Step, key: OrderKey) -> VenueOrder | None:
        """Return the order of ``key`` if one exists; else make ``key`` unusable."""
        record = step.order(key)
        if record is not None:
            return record.order
        if not step.is_fenced(key):
            step.fence(*key)
        return None

    # helpers ---------------------------------------------------------------------------
    def _taker_price(self, side: Side, mark: float) -> float:
        move = self.config.slippage_bps / 10_000
        return mark * (1 + move) if side is Side.BUY else mark * (1 - move)

    def _reducible(self, step: Step, record: OrderRecord) -> float:
        order = record.order
        net = step.account(order.account, record.book_id).net(order.symbol)
        return max(-net if order.side is Side.BUY else net, 0.0)

    def _fill(
        self, step: Step, record: OrderRecord, mark: float, price: float, liquidity: Liquidity
    ) -> OrderRecord:
        """Fill what the depth and (reduce-only) the net allow; return the order."""
        order = record.order
        open_size = clean(order.size - order.filled_size)
        maker = liquidity is Liquidity.MAKER
        if maker:
            size = min(open_size, self.depth.left(order.symbol, order.side, mark))
        else:
            size = min(open_size, self.config.taker_depth(order.symbol, mark))
        if order.reduce_only:
            reducible = self._reducible(step, record)
            if reducible <= SIZE_EPSILON:
                reason = "reduce-only: cancelled, nothing left to reduce"
                return step.update(record, state=OrderState.CANCELLED, reason=reason)
            size = min(size, reducible)
        if size < open_size:
            size = round_down(size, self.config.rules(order.symbol).lot_size)
        if size <= SIZE_EPSILON:
            return record
        if maker:
            self.depth.take(order.symbol, order.side, size)
        cfg = self.config
        fee_bps = cfg.maker_fee_bps if maker else cfg.taker_fee_bps
        return step.fill(record, size, price, liquidity, fee_bps)
