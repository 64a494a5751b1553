"""One tick of the PM, without I/O: positions and features in, intents and refusals out.

The live service and the backtest both call :meth:`TickEngine.plan`, so they decide the
same on the same candles and positions.

Book caps, applied before anything is published (each refusal is recorded with its
reason): ``max_open_positions`` and ``max_allocation_usd`` (sum of the open positions'
allocations) refuse opening a new position; ``max_intents_per_tick`` keeps the
highest-priority intents of the book on one tick. EXIT and EMERGENCY_EXIT reduce risk
and are never refused by a cap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from intentbus.pm.config import BookConfig, PMConfig
from intentbus.pm.indicators import Features
from intentbus.pm.planner import PlanContext, Planner, load_planner
from intentbus.schemas import (
    CLOSING_ACTIONS,
    INCREASING_ACTIONS,
    ActionType,
    Direction,
    ExecutionIntent,
    OpenPosition,
    Position,
    derived_id,
)
from intentbus.schemas.candle import Candle


@dataclass(frozen=True)
class Refusal:
    """An intent a book cap refused, with the reason."""

    book_id: str
    position_id: str
    action: ActionType
    intent_id: str
    reason: str
    tick: str


@dataclass
class TickPlan:
    """What one tick decided: positions to open first, intents to publish, refusals."""

    opens: list[OpenPosition] = field(default_factory=list)
    intents: list[ExecutionIntent] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)


def new_position_id(book: BookConfig, candle: Candle) -> str:
    """Return the id of a position the PM opens on this candle (same candle, same id)."""
    opened = str(int(candle.open_time.timestamp()))
    return derived_id("pos", book.book_id, candle.symbol, opened)


class TickEngine:
    """Run each book's planner on the positions of a closed candle and apply the caps."""

    def __init__(self, config: PMConfig, planners: Mapping[str, Planner]) -> None:
        self.config = config
        self._planners = dict(planners)

    @classmethod
    def from_config(cls, config: PMConfig) -> TickEngine:
        """Load each book's planner from the ``intentbus.planners`` entry points."""
        planners = {
            book.book_id: load_planner(book.planner, book.planner_options, legacy=book.legacy)
            for book in config.books
        }
        return cls(config, planners)

    def books_for(self, candle: Candle) -> list[BookConfig]:
        """Return the books that plan on this candle's venue and timeframe."""
        return [
            book
            for book in self.config.books
            if book.venue == candle.venue and book.timeframe == candle.timeframe
        ]

    def plan(self, features: Features, positions: Sequence[Position], now: datetime) -> TickPlan:
        """Decide one tick for every book of the candle; ``positions`` are the venue's."""
        candle = features.candle
        result = TickPlan()
        for book in self.books_for(candle):
            context = PlanContext(
                venue=book.venue,
                book_id=book.book_id,
                timeframe=book.timeframe,
                tick=candle.open_time,
                now=now,
                ttl=book.ttl,
            )
            in_book = [
                p
                for p in positions
                if p.book_id == book.book_id and p.venue == book.venue and not p.closed
            ]
            self._plan_book(book, context, features, in_book, result)
        return result

    def _plan_book(
        self,
        book: BookConfig,
        context: PlanContext,
        features: Features,
        in_book: list[Position],
        result: TickPlan,
    ) -> None:
        candle = features.candle
        planner = self._planners[book.book_id]
        on_symbol = [p for p in in_book if p.token_contract == candle.symbol]
        candidates: list[ExecutionIntent] = []
        for position in sorted(on_symbol, key=lambda p: p.position_id):
            candidates.extend(planner(position, features, context))
        if not on_symbol and candle.symbol in book.symbols:
            fresh = Position(
                position_id=new_position_id(book, candle),
                venue=book.venue,
                book_id=book.book_id,
                token_contract=candle.symbol,
                direction=Direction.LONG,
                allocation_usd=book.allocation_usd,
            )
            wanted = [
                i for i in planner(fresh, features, context) if i.action in INCREASING_ACTIONS
            ]
            reason = self._open_refusal(book, in_book)
            if wanted and reason is not None:
                result.refusals.extend(_refuse(i, reason, context) for i in wanted)
            elif wanted:
                result.opens.append(
                    OpenPosition(
                        position_id=fresh.position_id,
                        venue=fresh.venue,
                        book_id=fresh.book_id,
                        token_contract=fresh.token_contract,
                        direction=fresh.direction,
                        allocation_usd=fresh.allocation_usd,
                    )
                )
                candidates.extend(wanted)
        kept = 0
        for intent in sorted(candidates, key=lambda i: (-i.priority, i.intent_id)):
            if intent.action in CLOSING_ACTIONS or kept < book.max_intents_per_tick:
                kept += intent.action not in CLOSING_ACTIONS
                result.intents.append(intent)
            else:
                result.refusals.append(_refuse(intent, "max_intents_per_tick", context))

    @staticmethod
    def _open_refusal(book: BookConfig, in_book: list[Position]) -> str | None:
        if len(in_book) >= book.max_open_positions:
            return "max_open_positions"
        allocated = sum(p.allocation_usd for p in in_book)
        if book.max_allocation_usd is not None and (
            allocated + book.allocation_usd > book.max_allocation_usd
        ):
            return "max_allocation_usd"
        return None


def _refuse(intent: ExecutionIntent, reason: str, context: PlanContext) -> Refusal:
    return Refusal(
        book_id=intent.book_id,
        position_id=intent.position_id,
        action=intent.action,
        intent_id=intent.intent_id,
        reason=reason,
        tick=context.tick_key,
    )
