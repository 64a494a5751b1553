"""The planner API: a pure function of (position, features, context) returning intents.

A planner is the founding spec's ``plan_actions_v4`` returning intents instead of dicts.
It does no I/O and keeps no state between calls (the features carry the history), so it
is tested without NATS and a restarted PM or a backtest decides exactly as a live run.

Planners are registered under the ``intentbus.planners`` entry point as factories
``create_planner(options: Mapping[str, object]) -> Planner`` and chosen per book in the
PM's configuration. A book whose planner still returns the old dicts (migration phases 2
and 3) sets ``legacy = true``: :class:`LegacyPlannerAdapter` converts each dict with the
strict converter of ``intentbus.schemas.legacy``; setting ``legacy = false`` once the
planner returns intents is the per-book switch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from typing import Any, Protocol

from intentbus.pm.indicators import Features
from intentbus.schemas import ActionType, ExecutionIntent, Position, Urgency, derived_id, validated
from intentbus.schemas.legacy import convert_plan_actions_v4

PLANNER_GROUP = "intentbus.planners"


@dataclass(frozen=True)
class PlanContext:
    """Where and when a planner decides: the book, its timeframe, the tick and the clock.

    ``tick`` is the open time of the closed candle being planned on; ``now`` is the
    intent's creation time (wall clock live, the candle's close in a backtest) and
    ``ttl`` its lifetime (the book's deadline, from its timeframe).
    """

    venue: str
    book_id: str
    timeframe: str
    tick: datetime
    now: datetime
    ttl: timedelta

    @property
    def tick_key(self) -> str:
        """Return the tick as an id part: timeframe and candle open time in epoch seconds."""
        return f"{self.timeframe}-{int(self.tick.timestamp())}"

    def intent_id(self, position_id: str, action: ActionType | str) -> str:
        """Return the id of ``action`` on ``position_id`` at this tick (same inputs, same id)."""
        return derived_id("pm", self.book_id, position_id, self.tick_key, ActionType(action).value)

    def intent(
        self,
        position: Position,
        action: ActionType,
        size_frac: float,
        *,
        urgency: Urgency = Urgency.MEDIUM,
        priority: int = 50,
        reason_codes: Sequence[str] = (),
        reduce_only: bool = False,
        features: Features | None = None,
        **extra: Any,
    ) -> ExecutionIntent:
        """Build a validated intent for ``position`` with the tick's id and deadline."""
        scored: dict[str, Any] = {}
        if features is not None:
            scored = {
                "state": features.state.value,
                "prev_state": features.prev_state.value,
                "a_final": features.a_final,
                "e_final": features.e_final,
            }
        return validated(
            ExecutionIntent(
                intent_id=self.intent_id(position.position_id, action),
                created_at=self.now,
                valid_until=self.now + self.ttl,
                action=action,
                size_frac=size_frac,
                urgency=urgency,
                priority=priority,
                position_id=position.position_id,
                token_contract=position.token_contract,
                token_chain=position.venue,
                book_id=position.book_id,
                timeframe=self.timeframe,
                reduce_only=reduce_only,
                reason_codes=tuple(reason_codes),
                **scored,
                **extra,
            )
        )


class Planner(Protocol):
    """Decide what to do with one position on one closed candle; HOLD is an empty list."""

    def __call__(
        self, position: Position, features: Features, context: PlanContext
    ) -> Sequence[ExecutionIntent]: ...


LegacyPlanFn = Callable[[Mapping[str, Any], Features, PlanContext], Sequence[Mapping[str, Any]]]
PlannerFactory = Callable[[Mapping[str, Any]], Any]


def legacy_position(position: Position, context: PlanContext) -> dict[str, Any]:
    """Return the position as the old ``plan_actions_v4`` read it (a plain dict)."""
    return {
        "id": position.position_id,
        "token_contract": position.token_contract,
        "token_chain": position.venue,
        "book_id": position.book_id,
        "timeframe": context.timeframe,
        "size": position.size,
        "allocation_usd": position.allocation_usd,
        "avg_entry_price": position.avg_entry_price,
        "direction": position.direction.value,
    }


class LegacyPlannerAdapter:
    """Wrap a planner that returns ``plan_actions_v4`` dicts (migration phases 2 and 3).

    Each dict is converted strictly (a wrong type is an error), HOLD dicts are dropped,
    and the id is the tick's id for (position, action), as a native planner's would be.
    """

    def __init__(self, legacy: LegacyPlanFn) -> None:
        self._legacy = legacy

    def __call__(
        self, position: Position, features: Features, context: PlanContext
    ) -> list[ExecutionIntent]:
        as_dict = legacy_position(position, context)
        intents = []
        for decision in self._legacy(as_dict, features, context):
            action = str(decision.get("decision_type", "")).lower()
            converted = convert_plan_actions_v4(
                decision,
                as_dict,
                intent_id=context.intent_id(position.position_id, action)
                if action in set(ActionType)
                else None,
                created_at=context.now,
                ttl=context.ttl,
            )
            if converted.intent is not None:
                intents.append(converted.intent)
        return intents


class UnknownPlanner(LookupError):
    """Raise when no installed package registers the planner a book asks for."""


def planner_factories() -> dict[str, PlannerFactory]:
    """Return the installed planner factories by name (entry point ``intentbus.planners``)."""
    return {entry.name: entry.load() for entry in entry_points(group=PLANNER_GROUP)}


def load_planner(name: str, options: Mapping[str, Any], *, legacy: bool = False) -> Planner:
    """Build the planner registered as ``name``; wrap it in the legacy adapter if asked."""
    factories = planner_factories()
    if name not in factories:
        known = ", ".join(sorted(factories)) or "none"
        raise UnknownPlanner(f"no planner {name!r} is installed (installed: {known})")
    built = factories[name](options)
    if legacy:
        return LegacyPlannerAdapter(built)
    planner: Planner = built
    return planner
