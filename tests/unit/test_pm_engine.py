"""The tick engine: positions the PM opens, book caps and their refusals, config."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from intentbus.pm.config import BookConfig, ConfigError, PMConfig
from intentbus.pm.engine import TickEngine, new_position_id
from intentbus.pm.indicators import Features
from intentbus.pm.planner import PlanContext
from intentbus.pm.warmup import subject_matches
from intentbus.schemas import ActionType, Direction, ExecutionIntent, Position
from tests.unit.test_pm_states import LIFECYCLE, LIFECYCLE_LOWS, run

NOW = datetime(2026, 6, 1, tzinfo=UTC)


class Always:
    """A planner that asks for one action on every position, whatever the features."""

    def __init__(self, action: ActionType, priority: int = 50) -> None:
        self.action = action
        self.priority = priority

    def __call__(
        self, position: Position, features: Features, context: PlanContext
    ) -> Sequence[ExecutionIntent]:
        size = 1.0 if self.action is ActionType.EXIT else 0.1
        return [context.intent(position, self.action, size, priority=self.priority)]


def held(pid: str, symbol: str = "BTC", book: str = "main", size: float = 1.0) -> Position:
    return Position(
        position_id=pid,
        venue="paper",
        book_id=book,
        token_contract=symbol,
        direction=Direction.LONG,
        allocation_usd=1_000.0,
        size=size,
    )


def book(**caps: object) -> BookConfig:
    return BookConfig(book_id="main", venue="paper", timeframe="1h", **caps)  # type: ignore[arg-type]


def features() -> Features:
    return run(LIFECYCLE, LIFECYCLE_LOWS)[13]


def test_a_book_opens_a_position_on_its_symbol_when_the_planner_buys() -> None:
    config = PMConfig(books=(book(symbols=("BTC",), allocation_usd=5_000.0),))
    engine = TickEngine(config, {"main": Always(ActionType.ADD)})
    plan = engine.plan(features(), [], NOW)
    [opened] = plan.opens
    assert opened.position_id == new_position_id(config.books[0], features().candle)
    assert opened.allocation_usd == 5_000.0
    assert [i.position_id for i in plan.intents] == [opened.position_id]
    assert plan.refusals == []


def test_nothing_is_opened_for_a_sell_or_a_symbol_not_configured() -> None:
    config = PMConfig(books=(book(symbols=("ETH",)),))
    assert (
        TickEngine(config, {"main": Always(ActionType.ADD)}).plan(features(), [], NOW).opens == []
    )
    config = PMConfig(books=(book(symbols=("BTC",)),))
    plan = TickEngine(config, {"main": Always(ActionType.TRIM)}).plan(features(), [], NOW)
    assert (plan.opens, plan.intents, plan.refusals) == ([], [], [])


@pytest.mark.parametrize(
    ("caps", "reason"),
    [
        ({"max_open_positions": 1}, "max_open_positions"),
        ({"max_allocation_usd": 1_500.0}, "max_allocation_usd"),
    ],
)
def test_opening_caps_refuse_with_a_reason(caps: dict[str, object], reason: str) -> None:
    config = PMConfig(books=(book(symbols=("BTC",), **caps),))
    other = held("p-eth", symbol="ETH")
    plan = TickEngine(config, {"main": Always(ActionType.ADD)}).plan(features(), [other], NOW)
    assert plan.opens == []
    assert plan.intents == []
    [refusal] = plan.refusals
    assert refusal.reason == reason
    assert refusal.action is ActionType.ADD


def test_intents_per_tick_keeps_the_highest_priority_and_never_refuses_exits() -> None:
    config = PMConfig(books=(book(max_intents_per_tick=2),))
    positions = [held(f"p{n}") for n in range(4)]
    plan = TickEngine(config, {"main": Always(ActionType.ADD)}).plan(features(), positions, NOW)
    assert [i.position_id for i in plan.intents] == ["p0", "p1"]
    assert [(r.position_id, r.reason) for r in plan.refusals] == [
        ("p2", "max_intents_per_tick"),
        ("p3", "max_intents_per_tick"),
    ]
    plan = TickEngine(config, {"main": Always(ActionType.EXIT)}).plan(features(), positions, NOW)
    assert len(plan.intents) == 4
    assert plan.refusals == []


def test_only_the_books_positions_on_the_candles_symbol_are_planned() -> None:
    config = PMConfig(books=(book(),))
    positions = [
        held("p1"),
        held("p2", symbol="ETH"),
        held("p3", book="other"),
        msgspec.structs.replace(held("p4"), closed=True),
    ]
    plan = TickEngine(config, {"main": Always(ActionType.TRIM)}).plan(features(), positions, NOW)
    assert [i.position_id for i in plan.intents] == ["p1"]


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "pm.toml"
    path.write_text(
        '[pm]\nname = "pm1"\n[books.main]\nvenue = "paper"\ntimeframe = "1d"\n'
        'symbols = ["GOOG"]\nmax_open_positions = 2\n'
        "[books.main.planner_options]\ncooldown_bars = 3\n"
    )
    config = PMConfig.load(path)
    assert config.name == "pm1"
    [only] = config.books
    assert (only.book_id, only.timeframe, only.symbols) == ("main", "1d", ("GOOG",))
    assert only.planner_options == {"cooldown_bars": 3}
    assert config.markets == {("paper", "1d")}
    TickEngine.from_config(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[books.main]\nvenue = "paper"\ntimeframe = "1h"\nmaxOpen = 1\n', "books.main.maxOpen"),
        ('[books.main]\nvenue = "paper"\ntimeframe = "1x"\n', "timeframe"),
        ('[books."a.b"]\nvenue = "paper"\ntimeframe = "1h"\n', "book"),
        ('[pm]\nname = "pm"\n', "no book"),
        ("[bookz]\n", "bookz"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pm.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        PMConfig.load(path)


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("ns.candles.paper.*.1h", "ns.candles.paper.BTC.1h", True),
        ("ns.candles.paper.*.1h", "ns.candles.paper.BTC.1d", False),
        ("ns.candles.*.*.*", "ns.candles.paper.BTC", False),
        ("ns.candles.>", "ns.candles.paper.BTC.1h", True),
        ("ns.candles.>", "ns.candles", False),
    ],
)
def test_warm_up_subject_filters(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches
