"""The reference planner's output on hand-made series, the legacy adapter, the registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intentbus.pm.indicators import Features
from intentbus.pm.planner import (
    LegacyPlannerAdapter,
    PlanContext,
    UnknownPlanner,
    load_planner,
    planner_factories,
)
from intentbus.pm.reference import (
    ReferenceParams,
    ReferencePlanner,
    create_legacy_planner,
)
from intentbus.schemas import ActionType, Direction, ExecutionIntent, Position, Urgency
from tests.unit.test_pm_states import FADE, LIFECYCLE, LIFECYCLE_LOWS, run

ADD, RECLAIM, TRIM = ActionType.ADD, ActionType.RECLAIM, ActionType.TRIM
EXIT, EMERGENCY = ActionType.EXIT, ActionType.EMERGENCY_EXIT
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def position(size: float = 0.0) -> Position:
    return Position(
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="BTC",
        direction=Direction.LONG,
        allocation_usd=10_000.0,
        size=size,
    )


def context(features: Features) -> PlanContext:
    return PlanContext(
        venue="paper",
        book_id="main",
        timeframe="1h",
        tick=features.candle.open_time,
        now=NOW,
        ttl=timedelta(hours=1),
    )


def plan_all(
    found: list[Features], held: Position, planner: ReferencePlanner | None = None
) -> dict[int, ExecutionIntent]:
    chosen = planner or ReferencePlanner()
    decided: dict[int, ExecutionIntent] = {}
    for index, features in enumerate(found):
        if not features.warm:
            continue
        intents = chosen(held, features, context(features))
        assert len(intents) <= 1
        if intents:
            decided[index] = intents[0]
    return decided


def test_holding_through_the_lifecycle() -> None:
    decided = plan_all(run(LIFECYCLE, LIFECYCLE_LOWS), position(size=10.0))
    summary = {
        bar: (i.action, i.size_frac, i.reason_codes, i.state, i.prev_state)
        for bar, i in decided.items()
    }
    assert summary == {
        12: (EXIT, 1.0, ("s0_still_holding",), "S0", "S0"),  # 13th bar in S0 while holding
        13: (ADD, 0.404, ("buy_flag", "s1_entry"), "S1", "S0"),
        14: (ADD, 0.5, ("s3_trend", "high_a_score"), "S3", "S1"),
        21: (TRIM, 0.3228, ("s4_extended", "high_e_score"), "S4", "S3"),
        25: (RECLAIM, 0.364, ("s2_dip", "ema60_reclaim"), "S2", "S3"),
        26: (ADD, 0.5, ("s3_trend", "high_a_score"), "S3", "S2"),
        29: (EMERGENCY, 1.0, ("lost_ema333", "s3_to_s0"), "S0", "S3"),
    }
    emergency = decided[29]
    assert emergency.urgency is Urgency.CRITICAL
    assert emergency.priority == 100
    assert emergency.reduce_only
    assert decided[25].urgency is Urgency.HIGH
    assert decided[21].e_final == 0.5569


def test_flat_position_only_buys() -> None:
    decided = plan_all(run(LIFECYCLE, LIFECYCLE_LOWS), position(size=0.0))
    assert {bar: i.action for bar, i in decided.items()} == {
        13: ADD,
        14: ADD,
        25: RECLAIM,
        26: ADD,
    }


def test_fading_into_s0_above_ema333_exits() -> None:
    decided = plan_all(run(FADE), position(size=10.0))
    assert decided[23].action is EXIT
    assert decided[23].reason_codes == ("trend_failed",)
    assert decided[23].urgency is Urgency.HIGH
    assert decided[23].reduce_only
    assert 18 not in decided  # S3 -> S2 without a reclaim: HOLD


def test_a_full_position_does_not_add() -> None:
    found = run(LIFECYCLE, LIFECYCLE_LOWS)
    full = position(size=100.0)  # about 10,000 USD at ~100: the whole allocation
    decided = plan_all(found, full)
    assert {i.action for i in decided.values()} == {EXIT, TRIM, EMERGENCY}
    part = plan_all(found, position(size=70.0))
    assert part[13].size_frac == round(1.0 - 70.0 * 99.5 / 10_000, 4)


def test_cooldowns_repeat_an_action_only_every_n_bars_in_a_state() -> None:
    closes = [*LIFECYCLE[:14], *(100.5 + i for i in range(12))]
    found = run(closes)
    planner = ReferencePlanner(ReferenceParams(cooldown_bars=4, trim_e_min=2.0))
    decided = plan_all(found, position(size=1.0), planner)
    s3_adds = [bar for bar, i in decided.items() if i.action is ADD and i.state == "S3"]
    in_state = {bar: found[bar].bars_in_state for bar in s3_adds}
    assert all(n == 1 or (n - 1) % 4 == 0 for n in in_state.values())
    assert len(s3_adds) >= 2


def test_s0_holding_exits_again_after_the_cooldown() -> None:
    closes = [*LIFECYCLE, *([108.0] * 14)]
    found = run(closes, LIFECYCLE_LOWS)
    decided = plan_all(found, position(size=10.0), ReferencePlanner(ReferenceParams()))
    exits = [bar for bar, i in decided.items() if i.action in (EXIT, EMERGENCY) and bar > 13]
    assert exits[0] == 29
    assert exits[1:] == [bar for bar in range(30, len(found)) if found[bar].bars_in_state == 13]


def test_ids_come_from_tick_position_and_action() -> None:
    found = run(LIFECYCLE, LIFECYCLE_LOWS)
    first = plan_all(found, position(size=10.0))
    again = plan_all(found, position(size=10.0))
    assert [i.intent_id for i in first.values()] == [i.intent_id for i in again.values()]
    tick = int(found[13].candle.open_time.timestamp())
    assert first[13].intent_id == f"pm-main-p1-1h-{tick}-add"
    assert first[13].valid_until - first[13].created_at == timedelta(hours=1)


def test_the_legacy_adapter_gives_the_same_intents() -> None:
    found = run(LIFECYCLE, LIFECYCLE_LOWS)
    native = plan_all(found, position(size=10.0))
    adapter = LegacyPlannerAdapter(create_legacy_planner({}))
    for index, features in enumerate(found):
        if features.warm:
            converted = adapter(position(size=10.0), features, context(features))
            assert converted == ([native[index]] if index in native else [])


def test_planners_are_found_by_entry_point() -> None:
    assert {"reference", "reference-legacy"} <= set(planner_factories())
    assert isinstance(load_planner("reference", {"cooldown_bars": 3}), ReferencePlanner)
    assert isinstance(load_planner("reference-legacy", {}, legacy=True), LegacyPlannerAdapter)
    with pytest.raises(UnknownPlanner, match="nope"):
        load_planner("nope", {})
    with pytest.raises(ValueError, match="cooldown"):
        load_planner("reference", {"cooldown": 3})
