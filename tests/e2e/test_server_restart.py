"""The system keeps its data through a nats-server crash (SIGKILL) and restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError

from intentbus.bus import (
    BusSettings,
    LedgerUnavailable,
    PositionClient,
    Publisher,
    Topology,
    connect,
)
from intentbus.bus.embedded import EmbeddedNatsServer
from intentbus.cli.processes import ServiceProcesses
from intentbus.schemas import (
    Direction,
    ExecutionResult,
    ExecutionStatus,
    OpenPosition,
    build_intent,
)
from intentbus.testing import wait_for
from intentbus.testing.system import ProcessSystem
from tests.e2e.system_checks import books, fills, final_results

pytestmark = pytest.mark.timeout(120)

POSITIONS = [f"pos-{n}" for n in range(8)]


def book_of(position_id: str) -> str:
    """Return the book (account) of a position: one BTC position per account."""
    return "b-" + position_id


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(str(tmp_path / "nats"))
    server.start()
    yield server
    server.cleanup()


async def test_a_killed_and_restarted_server_loses_nothing_and_trades_nothing_twice(
    own_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    url = own_server.url
    port = int(url.rsplit(":", 1)[1])
    topology = Topology("restart")
    with ServiceProcesses(tmp_path) as processes:
        system = ProcessSystem(url, topology, tmp_path, processes)
        system.start_ledger()
        system.start_paper_venue()
        system.start_paper_executor()
        nc = await connect(BusSettings.from_env(url, name="restart-test"))
        js = nc.jetstream()
        positions = PositionClient(nc, topology, timeout_s=1.0)

        async def ledger_answers() -> bool:
            try:
                await positions.list()
            except LedgerUnavailable:
                return False
            return True

        await wait_for(ledger_answers, timeout_s=30, what="ledger")

        async def executor_consumes() -> bool:
            try:
                consumers = await js.consumers_info(topology.intents_stream)
            except NotFoundError:
                return False
            return len(consumers) == 16  # every partition has its consumer

        # The crash hits a running system (startup under a crash is retried, not tested here).
        await wait_for(executor_consumes, timeout_s=30, what="executor's consumer")
        for pid in POSITIONS:
            await positions.open(
                OpenPosition(
                    position_id=pid,
                    venue="paper",
                    book_id=book_of(pid),
                    token_contract="BTC",
                    direction=Direction.LONG,
                    allocation_usd=10_000.0,
                )
            )
        publisher = Publisher(js, topology)
        intents = [
            build_intent(
                action="add",
                size_frac=0.01,
                position_id=pid,
                token_contract="BTC",
                token_chain="paper",
                book_id=book_of(pid),
                urgency="high",
            )
            for _ in range(5)
            for pid in POSITIONS
        ]
        half = len(intents) // 2
        for intent in intents[:half]:
            await publisher.intent(intent)

        own_server.stop(kill=True)
        own_server.start(port=port)

        for intent in intents[half:]:
            await publisher.intent(intent)  # retried with the same Nats-Msg-Id until stored

        async def results() -> list[ExecutionResult]:
            return await final_results(js, topology)

        done = await wait_for(
            results,
            until=lambda r: len({x.intent_id for x in r}) >= len(intents),
            timeout_s=90,
            what="a result for every intent",
        )
        # Nothing lost, nothing late: exactly one result per intent, and every intent
        # executed (a position's intents wait for each other; none is superseded).
        assert sorted(r.intent_id for r in done) == sorted(i.intent_id for i in intents)
        assert [r for r in done if r.status is not ExecutionStatus.SUCCESS] == []
        # Nothing twice: the venue holds exactly what the fills say, and the ledger too.
        stored = await fills(js, topology)
        assert len({f.fill_id for f in stored}) == len(stored)
        state = await books(nc, topology, ("BTC",))
        for pid in POSITIONS:
            traded = sum(r.filled_size for r in done if r.position_id == pid)
            assert state.venue[(book_of(pid), "BTC")] == pytest.approx(traded)
        assert state.ledger == pytest.approx(state.venue)
        for position in state.positions:
            assert position.results_applied == 5
            assert position.fills_applied == len(
                [f for f in stored if f.position_id == position.position_id]
            )
        assert processes.failed() == []
        await nc.drain()
