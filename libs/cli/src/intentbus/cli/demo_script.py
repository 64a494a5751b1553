"""The demo's scripted book: two books, each outcome the system can produce."""

from __future__ import annotations

from typing import Any

from intentbus.schemas import ActionType, Direction, ExecutionIntent, OpenPosition, build_intent

VENUE = "paper"
DEMO_PRICES = {"BTC": 65_000.0, "ETH": 3_200.0}
DEMO_POSITIONS = (
    OpenPosition(
        position_id="alpha-btc",
        venue=VENUE,
        book_id="alpha",
        token_contract="BTC",
        direction=Direction.LONG,
        allocation_usd=20_000.0,
    ),
    OpenPosition(
        position_id="beta-eth",
        venue=VENUE,
        book_id="beta",
        token_contract="ETH",
        direction=Direction.LONG,
        allocation_usd=8_000.0,
    ),
)


def _on(
    position: OpenPosition, action: ActionType, size_frac: float, **extra: Any
) -> ExecutionIntent:
    return build_intent(
        action=action,
        size_frac=size_frac,
        position_id=position.position_id,
        token_contract=position.token_contract,
        token_chain=position.venue,
        book_id=position.book_id,
        **extra,
    )


def demo_intents() -> list[ExecutionIntent]:
    """Return the scripted intents: add, trim, exit, a min-notional skip, a reduce-only skip."""
    btc, eth = DEMO_POSITIONS
    return [
        _on(btc, ActionType.ADD, 0.5, reason_codes=("buy_flag",)),
        _on(eth, ActionType.ADD, 0.25),
        _on(btc, ActionType.TRIM, 0.5, reason_codes=("take_profit",)),
        _on(eth, ActionType.ADD, 0.0005, reason_codes=("tiny",)),
        _on(eth, ActionType.RECLAIM, 0.2, reduce_only=True),
        _on(btc, ActionType.EXIT, 1.0, urgency="critical"),
    ]
