"""The demo's scripted book: two books, a resting order that fills in parts, every outcome.

The script runs in three acts:

1. ``opening_intents``: a low-urgency BTC ADD (a GTC limit resting 10 bps below the
   mark), an ETH ADD that fills at once, an ETH ADD below the venue's minimum notional
   (skipped) and a reduce-only RECLAIM (skipped: reduce-only cannot buy for a long).
2. ``marks_through``: BTC marks moving down through the resting limit, one at a time;
   the venue fills at most ``BTC_DEPTH`` tokens per mark update, so the order fills in
   several parts.
3. ``closing_intents``: a BTC TRIM and a critical EXIT.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionIntent,
    ExecutionStatus,
    OpenPosition,
    build_intent,
)

VENUE = "paper"
DEMO_PRICES = {"BTC": 65_000.0, "ETH": 3_200.0}
BTC_DEPTH = 0.05  # tokens a resting BTC order may fill per mark update
MAX_MARKS = 12  # marks published at most to fill the resting order
MARK_STEP_BPS = 2.0  # each mark is this much further below the resting limit
RESTING_TTL = timedelta(minutes=10)  # the resting order lives long enough on a slow machine
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


def venue_options() -> tuple[str, ...]:
    """Return the paper venue server's ``--option`` values: start prices and BTC depth."""
    prices = ",".join(f"{symbol}:{price:g}" for symbol, price in DEMO_PRICES.items())
    return (f"prices={prices}", f"depths=BTC:{BTC_DEPTH:g}")


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


def opening_intents() -> list[ExecutionIntent]:
    """Return act 1: the resting BTC ADD first, then ETH's fill, min-notional and reduce-only."""
    btc, eth = DEMO_POSITIONS
    return [
        _on(btc, ActionType.ADD, 0.5, urgency="low", ttl=RESTING_TTL, reason_codes=("dip_bid",)),
        _on(eth, ActionType.ADD, 0.25, reason_codes=("buy_flag",)),
        _on(eth, ActionType.ADD, 0.0005, reason_codes=("tiny",)),
        _on(eth, ActionType.RECLAIM, 0.2, reduce_only=True),
    ]


def closing_intents() -> list[ExecutionIntent]:
    """Return act 3: trim half of the BTC the account holds, then exit it at once."""
    btc, _ = DEMO_POSITIONS
    return [
        _on(btc, ActionType.TRIM, 0.5, reason_codes=("take_profit",)),
        _on(btc, ActionType.EXIT, 1.0, urgency="critical"),
    ]


def expected_statuses(
    opening: list[ExecutionIntent], closing: list[ExecutionIntent]
) -> dict[str, ExecutionStatus]:
    """Return the final status each scripted intent must end with."""
    ok, skipped = ExecutionStatus.SUCCESS, ExecutionStatus.SKIPPED
    statuses = (ok, ok, skipped, skipped, ok, ok)
    return {i.intent_id: s for i, s in zip([*opening, *closing], statuses, strict=True)}


def marks_through(limit: float) -> Iterator[float]:
    """Yield BTC marks below a resting buy ``limit``, each a little lower (at most MAX_MARKS)."""
    for step in range(1, MAX_MARKS + 1):
        yield round(limit * (1 - step * MARK_STEP_BPS / 10_000), 2)
