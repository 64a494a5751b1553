"""What may trade now: the halt switch and the risk caps, checked in the intent's lane.

Order of checks for a new intent (a claimed one resumed after a restart is only checked
against the halt switch):

1. The halt switch (:class:`~intentbus.bus.control.HaltView`): the most restrictive
   switch covering the intent's venue and book decides; ``reducing`` lets only TRIM,
   EXIT and EMERGENCY_EXIT through, ``halted`` only EMERGENCY_EXIT. The skip names the
   switch (scope, mode, reason, who set it).
2. ``max_intents_per_minute`` per book (a sliding minute of the intents this replica
   admitted; EMERGENCY_EXIT is never limited).
3. After sizing, for ADD and RECLAIM only (reductions only lower risk):
   ``max_intent_notional_usd`` (the order's notional) and ``max_position_notional_usd``
   (what the position holds plus the order, at the order's reference price).

Limits are per venue (the runtime's) with per-book overrides; a breach is a skip with a
named reason, counted in :attr:`RuntimeStats.refused`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace

from intentbus.bus.control import HaltView
from intentbus.executor.settings import RuntimeStats
from intentbus.schemas import (
    INCREASING_ACTIONS,
    ActionType,
    ExecutionIntent,
    ExecutionPlan,
    HaltSwitch,
    Position,
    Skip,
    SkipReason,
)


@dataclass(frozen=True)
class RiskLimits:
    """One scope's limits; None: no limit."""

    max_intent_notional_usd: float | None = None
    max_position_notional_usd: float | None = None
    max_intents_per_minute: int | None = None


@dataclass(frozen=True)
class RiskCaps:
    """The venue's limits and per-book overrides (a field a book leaves None falls back)."""

    venue: RiskLimits = RiskLimits()
    books: Mapping[str, RiskLimits] = field(default_factory=dict)

    def for_book(self, book: str) -> RiskLimits:
        """Return the limits that apply to ``book``."""
        override = self.books.get(book)
        if override is None:
            return self.venue
        changes = {
            f.name: getattr(override, f.name)
            for f in fields(RiskLimits)
            if getattr(override, f.name) is not None
        }
        return replace(self.venue, **changes)

    @classmethod
    def parse(cls, items: Iterable[str]) -> RiskCaps:
        """Parse ``[BOOK:]KEY=VALUE`` items (KEY a :class:`RiskLimits` field)."""
        venue: dict[str, float | int] = {}
        books: dict[str, dict[str, float | int]] = {}
        known = {f.name for f in fields(RiskLimits)}
        for item in items:
            scope, _, pair = item.rpartition(":")
            key, sep, raw = pair.partition("=")
            if not sep or key not in known:
                raise ValueError(f"risk cap {item!r}: use [BOOK:]KEY=VALUE, KEY one of {known}")
            value: float | int = int(raw) if key == "max_intents_per_minute" else float(raw)
            if value <= 0:
                raise ValueError(f"risk cap {item!r} must be > 0")
            (books.setdefault(scope, {}) if scope else venue)[key] = value
        return cls(
            venue=RiskLimits(**venue),  # type: ignore[arg-type]
            books={book: RiskLimits(**limits) for book, limits in books.items()},  # type: ignore[arg-type]
        )


class Guard:
    """Check intents and plans against the halt switch and the risk caps."""

    def __init__(
        self,
        halt: HaltView | None = None,
        caps: RiskCaps | None = None,
        stats: RuntimeStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.halt = halt or HaltView()
        self.caps = caps or RiskCaps()
        self._stats = stats or RuntimeStats()
        self._clock = clock
        self._admitted: dict[str, deque[tuple[float, str]]] = {}
        self._counted: set[str] = set()  # intent ids in the windows (a retry counts once)

    def forbids(self, intent: ExecutionIntent) -> HaltSwitch | None:
        """Return the switch that forbids the intent's action now (not counted as a refusal)."""
        return self.halt.stopping(intent.token_chain, intent.book_id, intent.action)

    def halted(self, intent: ExecutionIntent) -> Skip | None:
        """Return a skip if a halt switch forbids the intent's action now."""
        switch = self.forbids(intent)
        if switch is None:
            return None
        detail = (
            f"halt switch {switch.scope} is {switch.mode.value}: {switch.reason!r} "
            f"(set by {switch.set_by} at {switch.set_at.isoformat()}); "
            f"{intent.action.value} is not allowed"
        )
        return self._refuse(SkipReason.HALT_SWITCH, detail)

    def admit(self, intent: ExecutionIntent) -> Skip | None:
        """Check a new intent before anything is cancelled or sized; count it if admitted."""
        stopped = self.halted(intent)
        if stopped is not None:
            return stopped
        if intent.action is ActionType.EMERGENCY_EXIT:
            return None
        limit = self.caps.for_book(intent.book_id).max_intents_per_minute
        if limit is None or intent.intent_id in self._counted:
            return None
        now = self._clock()
        window = self._admitted.setdefault(intent.book_id, deque())
        while window and window[0][0] <= now - 60.0:
            self._counted.discard(window.popleft()[1])
        if len(window) >= limit:
            return self._refuse(
                SkipReason.RISK_INTENT_RATE,
                f"{len(window)} intents of book {intent.book_id} in the last minute "
                f"(max_intents_per_minute={limit})",
            )
        window.append((now, intent.intent_id))
        self._counted.add(intent.intent_id)
        return None

    def check_plan(
        self, intent: ExecutionIntent, plan: ExecutionPlan, position: Position
    ) -> Skip | None:
        """Check a sized ADD or RECLAIM against the notional caps."""
        if intent.action not in INCREASING_ACTIONS:
            return None
        limits = self.caps.for_book(intent.book_id)
        cap = limits.max_intent_notional_usd
        if cap is not None and plan.notional_usd > cap:
            return self._refuse(
                SkipReason.RISK_INTENT_NOTIONAL,
                f"order notional ${plan.notional_usd:.2f} > max_intent_notional_usd ${cap:g}",
            )
        cap = limits.max_position_notional_usd
        price = plan.reference_price or plan.price or 0.0
        after = (position.size + position.working_size) * price + plan.notional_usd
        if cap is not None and after > cap:
            return self._refuse(
                SkipReason.RISK_POSITION_NOTIONAL,
                f"position notional after the order ${after:.2f} > "
                f"max_position_notional_usd ${cap:g}",
            )
        return None

    def _refuse(self, reason: SkipReason, detail: str) -> Skip:
        self._stats.refused[reason.value] = self._stats.refused.get(reason.value, 0) + 1
        return Skip(reason=reason.value, detail=detail)
