"""Two executor replicas, 40 positions on 3 symbols, long and short, at 200 intents/s.

Found: with two replicas a position's intents were spread over both, and one that had
to wait sent its intent back while the other ran a later one: 18% of intents were
skipped ``superseded`` at 200/s with no fault at all, 15% when the ledger restarted,
and about 21% ended in ``error`` "reduce-only order would not reduce the venue
position". Now a position's intents go to one replica, waits happen in the position's
lane, and reducing orders are sized against the account's net.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from nats.aio.client import Client

from intentbus.bus import PositionClient, Publisher
from intentbus.schemas import (
    ActionType,
    ExecutionIntent,
    build_intent,
)
from intentbus.testing.system import ProcessSystem
from tests.e2e.system_checks import (
    assert_executed_exactly_once,
    spread_positions,
    wait_for_ledger,
)

pytestmark = pytest.mark.timeout(300)

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
COUNT, RATE = 3_000, 200.0


def intents(run: str) -> list[ExecutionIntent]:
    """Return the run's intents, round-robin over the positions."""
    made = []
    for n in range(COUNT):
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
            )
        )
    return made


async def start(system: ProcessSystem, nc: Client) -> None:
    """Start the ledger, the venue and two executor replicas; open the positions."""
    system.start_ledger()
    system.start_paper_venue("paper-venue", PRICES)
    system.start_paper_executor("executor-1")
    system.start_paper_executor("executor-2")
    client = PositionClient(nc, system.topology, timeout_s=1.0)
    await wait_for_ledger(client, timeout_s=30)
    for position in POSITIONS:
        await client.open(position)


async def publish_paced(
    nc: Client,
    system: ProcessSystem,
    batch: list[ExecutionIntent],
    at: dict[int, Callable[[], Awaitable[None]]],
) -> None:
    """Publish at RATE per second on an absolute schedule; run ``at[n]`` before intent n."""
    publisher = Publisher(nc.jetstream(), system.topology)
    begin = time.monotonic()
    for n, one in enumerate(batch):
        if n in at:
            await at[n]()
        delay = begin + n / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load, not waiting for a condition
        await publisher.intent(one)


async def check(nc: Client, system: ProcessSystem, batch: list[ExecutionIntent]) -> None:
    """Every intent executed once; nothing superseded or refused; ledger equals venue."""
    await assert_executed_exactly_once(nc, system.topology, batch, POSITIONS, SYMBOLS)


async def test_two_replicas_execute_every_intent_at_200_per_second(
    system: ProcessSystem, nc: Client
) -> None:
    await start(system, nc)
    batch = intents("calm")
    await publish_paced(nc, system, batch, {})
    await check(nc, system, batch)


async def test_a_ledger_restart_and_a_replica_kill_lose_and_double_nothing(
    system: ProcessSystem, nc: Client
) -> None:
    await start(system, nc)
    processes = system.processes

    async def kill_ledger() -> None:
        processes.kill("ledger")

    async def restart_ledger() -> None:
        system.start_ledger()

    async def kill_replica() -> None:
        processes.kill("executor-2")

    async def restart_replica() -> None:
        system.start_paper_executor("executor-2")

    faults: dict[int, Callable[[], Awaitable[None]]] = {
        400: kill_ledger,
        1_000: restart_ledger,
        1_600: kill_replica,
        2_200: restart_replica,
    }
    batch = intents("faults")
    await publish_paced(nc, system, batch, faults)
    await check(nc, system, batch)
