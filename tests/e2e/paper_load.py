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

from intentbus.bus import LedgerUnavailable, PositionClient, Publisher
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionIntent,
    ExecutionStatus,
    OpenPosition,
    build_intent,
)
from intentbus.schemas.intent import DEFAULT_TTL
from intentbus.testing import wait_for
from intentbus.testing.system import ProcessSystem
from tests.e2e.system_checks import books, fills, final_results, once_each

SYMBOLS = ("BTC", "ETH", "SOL")
PRICES = "BTC:65000,ETH:3200,SOL:150"
POSITIONS = [
    OpenPosition(
        position_id=f"rp-{n:02d}",
        venue="paper",
        book_id=f"b{n // 3:02d}",  # one position per symbol in each book (account)
        token_contract=SYMBOLS[n % 3],
        direction=Direction.LONG if n % 2 == 0 else Direction.SHORT,
        allocation_usd=100_000.0,
    )
    for n in range(40)
]
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

    async def answers() -> bool:
        try:
            await client.list()
        except LedgerUnavailable:
            return False
        return True

    await wait_for(answers, timeout_s=30, what="the ledger")
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
    js = nc.jetstream()
    wanted = {one.intent_id for one in batch}

    async def finished() -> int:
        return len(wanted & set(once_each(await final_results(js, system.topology))))

    await wait_for(finished, until=lambda n: n == len(wanted), timeout_s=timeout_s, interval_s=0.5)
    results = [r for r in await final_results(js, system.topology) if r.intent_id in wanted]
    assert set(once_each(results).values()) == {1}
    not_done = [
        (r.intent_id, r.status, r.skip_reason, r.error)
        for r in results
        if r.status is not ExecutionStatus.SUCCESS
    ]
    assert not_done == [], (len(not_done), not_done[:10])
    stored = await fills(js, system.topology)
    assert len({f.fill_id for f in stored}) == len(stored)
    state = await books(nc, system.topology, SYMBOLS)
    for key, held in state.ledger.items():
        assert abs(held - state.venue[key]) < 1e-9, (key, held, state.venue[key])
    per_position = {p.position_id: p.fills_applied for p in state.positions}
    seen: dict[str, int] = {}
    for fill in stored:
        seen[fill.position_id] = seen.get(fill.position_id, 0) + 1
    assert per_position == {p.position_id: seen.get(p.position_id, 0) for p in POSITIONS}
