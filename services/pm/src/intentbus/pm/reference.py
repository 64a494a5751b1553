"""The reference planner: the founding spec's uptrend states mapped to intents.

A reference to show the planner API end to end, not trading advice: its rules are
simple, documented (``docs/pm.md``) and pinned by tests, not tuned for any market.

One closed candle, one position, at most one intent, in this order of precedence:

* EMERGENCY_EXIT (critical, priority 100): holding, the state just became S0 and the
  close is under EMA333 (``lost_ema333``).
* EXIT (high, 80): holding, the state just became S0 with the close still at or above
  EMA333 (``trend_failed``), or holding after ``cooldown_bars`` more bars in S0.
* TRIM (medium, 60): holding in S4 with ``e_final >= trim_e_min``, on the bar S4 is
  entered and every ``cooldown_bars`` after; size ``0.1 + 0.4 * e_final``.
* RECLAIM (high, 70): the S2 dip-and-reclaim signal (low at or under EMA60, close above
  it, at most once per ``reclaim_cooldown_bars``); size ``0.1 + 0.3 * a_final``.
* ADD (medium, 50): the bar S1 is entered from S0 (``buy_flag``), or in S3 with
  ``a_final >= add_a_min`` on the bar S3 is entered from S1 or S2 and every
  ``cooldown_bars`` after any S3 entry (not right after a TRIM: S4 back to S3 does not
  add); size ``0.1 + 0.4 * a_final``.

ADD and RECLAIM are sized as a fraction of the allocation and capped so the position's
value at the close stays within ``max_exposure`` of it (nothing below ``min_size``).
EXIT and EMERGENCY_EXIT are reduce-only with size 1. Everything else is HOLD (no intent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from intentbus.pm.indicators import Features, UptrendState
from intentbus.pm.planner import LegacyPlanFn, PlanContext
from intentbus.schemas import ActionType, ExecutionIntent, Position, Urgency
from intentbus.schemas.legacy import to_spec_dict


@dataclass(frozen=True)
class ReferenceParams:
    """Knobs of the reference planner (the book's ``planner_options``)."""

    cooldown_bars: int = 12
    add_a_min: float = 0.55
    trim_e_min: float = 0.3
    max_exposure: float = 1.0
    min_size: float = 0.01

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ReferenceParams:
        """Build from a mapping; an unknown option is an error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown reference planner option(s): {', '.join(unknown)}")
        return cls(**{key: type(getattr(cls(), key))(value) for key, value in options.items()})


def _every(bars_in_state: int, cooldown: int) -> bool:
    """Say whether this bar is the entry bar of a state or a multiple of the cooldown after."""
    return (bars_in_state - 1) % max(cooldown, 1) == 0


class ReferencePlanner:
    """The reference planner; see the module docstring for the exact rules."""

    def __init__(self, params: ReferenceParams | None = None) -> None:
        self.params = params or ReferenceParams()

    def __call__(
        self, position: Position, features: Features, context: PlanContext
    ) -> list[ExecutionIntent]:
        decided = self.decide(position, features)
        if decided is None:
            return []
        action, size, urgency, priority, reasons = decided
        closing = action in (ActionType.EXIT, ActionType.EMERGENCY_EXIT)
        return [
            context.intent(
                position,
                action,
                size,
                urgency=urgency,
                priority=priority,
                reason_codes=reasons,
                reduce_only=closing,
                features=features,
            )
        ]

    def decide(
        self, position: Position, features: Features
    ) -> tuple[ActionType, float, Urgency, int, tuple[str, ...]] | None:
        """Return (action, size_frac, urgency, priority, reasons), or ``None`` for HOLD."""
        p = self.params
        state, prev = features.state, features.prev_state
        holding = position.size > 0.0
        e333 = features.emas[4]
        entered = state is not prev
        if holding and state is UptrendState.S0:
            if entered and features.close < e333:
                reasons = ("lost_ema333", f"{prev.value.lower()}_to_s0")
                return ActionType.EMERGENCY_EXIT, 1.0, Urgency.CRITICAL, 100, reasons
            if entered:
                return ActionType.EXIT, 1.0, Urgency.HIGH, 80, ("trend_failed",)
            if _every(features.bars_in_state, p.cooldown_bars):
                return ActionType.EXIT, 1.0, Urgency.HIGH, 80, ("s0_still_holding",)
        trim = holding and state is UptrendState.S4 and features.e_final >= p.trim_e_min
        if trim and _every(features.bars_in_state, p.cooldown_bars):
            size = round(0.1 + 0.4 * features.e_final, 4)
            return ActionType.TRIM, size, Urgency.MEDIUM, 60, ("s4_extended", "high_e_score")
        room = self._room(position, features)
        if features.reclaim_signal:
            size = min(round(0.1 + 0.3 * features.a_final, 4), room)
            if size >= p.min_size:
                return ActionType.RECLAIM, size, Urgency.HIGH, 70, ("s2_dip", "ema60_reclaim")
        add_reasons: tuple[str, ...] = ()
        if state is UptrendState.S1 and prev is UptrendState.S0:
            add_reasons = ("buy_flag", "s1_entry")
        elif state is UptrendState.S3 and features.a_final >= p.add_a_min:
            from_below = entered and prev in (UptrendState.S1, UptrendState.S2)
            again = not entered and _every(features.bars_in_state, p.cooldown_bars)
            if from_below or again:
                add_reasons = ("s3_trend", "high_a_score")
        if add_reasons:
            size = min(round(0.1 + 0.4 * features.a_final, 4), room)
            if size >= p.min_size:
                return ActionType.ADD, size, Urgency.MEDIUM, 50, add_reasons
        return None

    def _room(self, position: Position, features: Features) -> float:
        """Return the fraction of the allocation still free under ``max_exposure``."""
        if position.allocation_usd <= 0.0:
            return 0.0
        used = position.size * features.close / position.allocation_usd
        return round(max(0.0, self.params.max_exposure - used), 4)


def create_planner(options: Mapping[str, Any]) -> ReferencePlanner:
    """Entry point ``intentbus.planners: reference``."""
    return ReferencePlanner(ReferenceParams.from_options(options))


def create_legacy_planner(options: Mapping[str, Any]) -> LegacyPlanFn:
    """Entry point ``reference-legacy``: the same rules returning ``plan_actions_v4`` dicts.

    It stands for a planner not yet migrated (phase 2): a book runs it with
    ``legacy = true`` and gets the same intents as ``reference`` with ``legacy = false``.
    """
    planner = create_planner(options)

    def plan_actions_v4(
        position: Mapping[str, Any], features: Features, context: PlanContext
    ) -> Sequence[Mapping[str, Any]]:
        snapshot = Position(
            position_id=position["id"],
            venue=position["token_chain"],
            book_id=position["book_id"],
            token_contract=position["token_contract"],
            direction=position["direction"],
            allocation_usd=position["allocation_usd"],
            size=position["size"],
        )
        decisions: list[dict[str, Any]] = []
        for intent in planner(snapshot, features, context):
            decision = to_spec_dict(intent)
            decision["decision_type"] = decision.pop("action")
            decisions.append(decision)
        return decisions or [{"decision_type": "hold", "size_frac": 0.0}]

    return plan_actions_v4
