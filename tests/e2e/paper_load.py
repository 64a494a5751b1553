"""A paper-venue load for end-to-end tests: 40 positions on 3 symbols, long and short.

Every intent trades; the checks say each was executed once and the ledger equals the
venue's accounts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from nats.aio.client import Client

from intentbus.bus import PositionClient, Publisher
from intentbus.schemas import (
    ActionType,
    ExecutionIntent,
    build_intent,
)
from intentbus.schemas.intent import DEFAULT_TTL
from intentbus.testing.system import ProcessSystem
from tests.e2e.system_checks import (
    assert_executed_exactly_once,
    spread_positions,
    wait_for_ledger,
)

SYMBOLS = ("BTC", "ETH", "SOL")
PRICES = "BTC:65000,ETH:3200,SOL:150"
POSITIONS = spread_positions("r", 40, SYMBOLS)  # ids rp-00.., books r00..
# Every step trades: grow, grow, trim, grow, trim...; never flat, never closed.
CYCLE = (
    (ActionType.ADD, 0.02),
    (ActionType.RECLAIM, 0.01),
    (ActionType.TRIM, 0.5),
    (ActionType.ADD, 0.02),
    (ActionType.TRIM, 0.3),
)


def intents(run: str, count: int, ttl: timedelta = DEFAULT_TTL) -> list[ExecutionIntent]:
    """Return ``count`` intents, round-robin over the positions, valid for ``ttl``."""
    made = []
    for n in range(count):
        position = POSITIONS[n % len(POSITIONS)]
        action, frac = CYCLE[(n // len(POSITIONS)) % len(CYCLE)]
        made.append(
            build_intent(
                action=action,
                size_frac=frac,
                position_id=position.position_id,
                token_contract=position.token_contract,
                token_chain="paper",
                book_id=position.book_id,
                urgency="high",
                intent_id=f"{run}-{n:05d}",
                ttl=ttl,
            )
        )
    return made


def no_user(service: str) -> dict[str, str]:
    """Return no environment: every service connects as the test does."""
    return {}


async def start(
    system: ProcessSystem, nc: Client, env_of: Callable[[str], dict[str, str]] = no_user
) -> None:
    """Start the ledger, the venue and two executor replicas; open the positions.

    ``env_of(user)`` gives the environment of each service's NATS user (``ledger``,
    ``paper-venue``, ``executor-paper``).
    """
    system.start_ledger(env=env_of("ledger"))
    system.start_paper_venue("paper-venue", PRICES, env=env_of("paper-venue"))
    system.start_paper_executor("executor-1", env=env_of("executor-paper"))
    system.start_paper_executor("executor-2", env=env_of("executor-paper"))
    client = PositionClient(nc, system.topology, timeout_s=1.0)
    await wait_for_ledger(client, timeout_s=30)
    for position in POSITIONS:
        await client.open(position)


async def publish_paced(
    nc: Client,
    system: ProcessSystem,
    batch: list[ExecutionIntent],
    at: dict[int, Callable[[], Awaitable[None]]],
    rate: float,
) -> None:
    """Publish at ``rate`` per second on an absolute schedule; run ``at[n]`` before intent n."""
    publisher = Publisher(nc.jetstream(), system.topology)
    begin = time.monotonic()
    for n, one in enumerate(batch):
        if n in at:
            await at[n]()
        delay = begin + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load, not waiting for a condition
        await publisher.intent(one)


async def check(
    nc: Client, system: ProcessSystem, batch: list[ExecutionIntent], timeout_s: float = 120
) -> None:
    """Every intent executed once; nothing superseded or refused; ledger equals venue."""
    await assert_executed_exactly_once(
        nc, system.topology, batch, POSITIONS, SYMBOLS, timeout_s=timeout_s
    )
