"""The compose stack's ``pm`` profile: the PM and its candle feed as containers.

The PM trades its books from the feed's candles, each service under its own NATS user:
every intent the PM published gets one final result, and the ledger equals the paper
venue's accounts of the PM's books.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from intentbus.bus import Topology
from intentbus.schemas import ExecutionIntent, ExecutionStatus, decode
from intentbus.testing import wait_for
from intentbus.testing.docker_engine import ComposeStack, docker
from tests.e2e.system_checks import books, final_results, once_each, stream_messages

pytestmark = pytest.mark.timeout(600)

PM_BOOKS = {"trend", "swing"}  # deploy/pm/pm.toml
CANDLES = 240


@pytest.fixture
def stack(docker_engine: Path) -> Iterator[ComposeStack]:
    """Bring the default services and the PM profile up; always take them down."""
    stack = ComposeStack(
        docker_engine,
        docker_engine / "deploy/local/compose.env",
        overrides={"FEED_CANDLES": str(CANDLES), "FEED_PACE_S": "0.05"},
        profiles=("pm",),
    )
    with stack.running():
        yield stack


async def test_the_pm_profile_trades_its_books_from_the_feed(
    stack: ComposeStack, nc: Client
) -> None:
    topology = Topology("")
    js = nc.jetstream()
    (feed,) = stack.containers("feed")
    exit_code = await wait_for_exit(feed)
    assert exit_code == 0, stack.compose("logs", "--no-color", "feed").stdout

    async def pm_intents() -> list[ExecutionIntent]:
        raw = await stream_messages(js, topology.intents_stream, "intents.>")
        return [i for i in (decode(m, ExecutionIntent) for m in raw) if i.book_id in PM_BOOKS]

    intents = await pm_intents()
    assert len(intents) >= 4, "the PM published too few intents to say anything"
    wanted = {i.intent_id for i in intents}

    async def finished() -> int:
        return len(wanted & set(once_each(await final_results(js, topology))))

    await wait_for(finished, until=lambda n: n == len(wanted), timeout_s=120, interval_s=0.5)
    results = [r for r in await final_results(js, topology) if r.intent_id in wanted]
    assert set(once_each(results).values()) == {1}
    assert {r.status for r in results} <= {ExecutionStatus.SUCCESS, ExecutionStatus.SKIPPED}
    assert any(r.status is ExecutionStatus.SUCCESS for r in results)
    state = await books(nc, topology, ("BTC",))
    for key, held in state.ledger.items():
        assert abs(held - state.venue[key]) < 1e-9, (key, held, state.venue[key])


async def wait_for_exit(container: str) -> int:
    """Wait until a container has exited; return its exit code."""

    async def status() -> str:
        return docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container)

    found = await wait_for(
        status, until=lambda s: s.startswith("exited"), timeout_s=240, interval_s=1.0
    )
    return int(found.split()[1])
