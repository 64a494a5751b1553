"""Two executor replicas, 40 positions on 3 symbols, long and short, at 200 intents/s.

Found: with two replicas a position's intents were spread over both, and one that had
to wait sent its intent back while the other ran a later one: 18% of intents were
skipped ``superseded`` at 200/s with no fault at all, 15% when the ledger restarted,
and about 21% ended in ``error`` "reduce-only order would not reduce the venue
position". Now a position's intents go to one replica, waits happen in the position's
lane, and reducing orders are sized against the account's net.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from nats.aio.client import Client

from intentbus.testing.system import ProcessSystem
from tests.e2e.paper_load import check, intents, publish_paced, start

pytestmark = pytest.mark.timeout(300)

COUNT, RATE = 3_000, 200.0


async def test_two_replicas_execute_every_intent_at_200_per_second(
    system: ProcessSystem, nc: Client
) -> None:
    await start(system, nc)
    batch = intents("calm", COUNT)
    await publish_paced(nc, system, batch, {}, RATE)
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
    batch = intents("faults", COUNT)
    await publish_paced(nc, system, batch, faults, RATE)
    await check(nc, system, batch)
