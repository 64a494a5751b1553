"""The compose stack on a local Docker engine: intents from the host, restarts, nothing lost.

The ledger keeps its books in the stack's PostgreSQL (compose's default ``--db`` URL):
the test reads the committed results from that database itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from intentbus.bus import PositionClient, Publisher, Topology
from intentbus.schemas import ActionType, ExecutionIntent, build_intent
from intentbus.testing.docker_engine import ComposeStack, docker
from tests.e2e.system_checks import (
    assert_executed_exactly_once,
    spread_positions,
    wait_for_ledger,
)

pytestmark = pytest.mark.timeout(600)

SYMBOLS = ("BTC", "ETH", "SOL")
POSITIONS = spread_positions("c", 12, SYMBOLS)
CYCLE = ((ActionType.ADD, 0.02), (ActionType.TRIM, 0.5), (ActionType.RECLAIM, 0.01))
COUNT, RATE = 600, 60.0


@pytest.fixture
def stack(docker_engine: Path) -> Iterator[ComposeStack]:
    """Bring the default services up on free ports; always take them down with volumes."""
    stack = ComposeStack(docker_engine, docker_engine / "deploy/local/compose.env")
    with stack.running():
        yield stack


def intents() -> list[ExecutionIntent]:
    """Return the run's intents, round-robin over the positions; every one trades."""
    return [
        build_intent(
            action=CYCLE[(n // len(POSITIONS)) % len(CYCLE)][0],
            size_frac=CYCLE[(n // len(POSITIONS)) % len(CYCLE)][1],
            position_id=POSITIONS[n % len(POSITIONS)].position_id,
            token_contract=POSITIONS[n % len(POSITIONS)].token_contract,
            token_chain="paper",
            book_id=POSITIONS[n % len(POSITIONS)].book_id,
            urgency="high",
            intent_id=f"compose-{n:04d}",
        )
        for n in range(COUNT)
    ]


async def publish_paced(
    nc: Client, topology: Topology, batch: list[ExecutionIntent], at: dict[int, Callable[[], None]]
) -> None:
    """Publish at RATE per second; start ``at[n]`` in a thread before intent n; await them."""
    publisher = Publisher(nc.jetstream(), topology)
    faults: list[Awaitable[None]] = []
    begin = time.monotonic()
    for n, one in enumerate(batch):
        if n in at:
            faults.append(asyncio.create_task(asyncio.to_thread(at[n])))
        delay = begin + n / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load, not waiting for a condition
        await publisher.intent(one)
    await asyncio.gather(*faults)


async def test_the_stack_executes_every_intent_once_across_container_restarts(
    stack: ComposeStack, nc: Client, pm: Client
) -> None:
    topology = Topology("")
    client = PositionClient(pm, topology, timeout_s=2.0)
    await wait_for_ledger(client, timeout_s=120)
    for position in POSITIONS:
        await client.open(position)
    replicas = stack.containers("executor-paper")
    assert len(replicas) == 2  # deploy.replicas, honoured by both compose versions

    def restart_replica() -> None:
        docker("restart", "--time", "2", replicas[0])

    def kill_and_start_ledger() -> None:
        stack.compose("kill", "ledger")
        stack.compose("start", "ledger")

    batch = intents()
    await publish_paced(pm, topology, batch, {150: restart_replica, 350: kill_and_start_ledger})
    await assert_executed_exactly_once(nc, topology, batch, POSITIONS, SYMBOLS)

    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "intentbus.command.app", "positions", "--json"],
        env={**os.environ, "NATS_URL": stack.nats_url, **stack.credentials("pm")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    listed = {row["position_id"] for row in json.loads(shown.stdout)}
    assert listed == {p.position_id for p in POSITIONS}
    # The books are in PostgreSQL: one stored result per intent, one fill row per fill.
    counted = stack.compose(
        "exec",
        "-T",
        "postgres",
        "psql",
        "-U",
        "intentbus",
        "-d",
        "intentbus",
        "-tAc",
        "SELECT count(*) FROM intentbus_ledger.results WHERE intent_id LIKE 'compose-%'",
    )
    assert int(counted.stdout.strip()) == COUNT
