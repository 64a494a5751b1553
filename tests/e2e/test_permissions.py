"""Every service runs under its own least-privilege user from deploy/nats/auth.conf."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client

from intentbus.bus import BusSettings, PermissionDenied, Publisher, Topology, connect
from intentbus.cli.processes import ServiceProcesses
from intentbus.executor.kv import ensure_bucket
from intentbus.executor.orders import WorkingOrder, WorkingOrderStore
from intentbus.executor.settings import ORDERS_BUCKET
from intentbus.schemas import ExecutionIntent, build_intent
from intentbus.testing.secured import SecuredServer, start_secured
from intentbus.testing.system import ProcessSystem
from tests.connected.paper.paper_support import plan
from tests.e2e.paper_load import check, intents, publish_paced, start

pytestmark = pytest.mark.timeout(180)

AUTH_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "auth.conf"
PRODUCTION = Topology("")  # the permissions name production subjects


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[SecuredServer]:
    started = start_secured(AUTH_CONF, tmp_path / "nats")
    yield started
    started.server.cleanup()


async def connect_as(secured: SecuredServer, user: str) -> Client:
    env = secured.env_of(user)
    settings = BusSettings.from_env(secured.url, name=f"test-{user}", env=env)
    return await connect(settings)


async def intentbus(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run ``intentbus ARGS`` with only ``env``; return its exit code and standard error."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "intentbus.command.app",
        *args,
        env={**env, "COLUMNS": "300"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, raw = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode is not None
    return child.returncode, raw.decode()


@pytest_asyncio.fixture
async def operator(secured: SecuredServer) -> AsyncIterator[Client]:
    """Provision as the operator (services may not create streams); connect as one."""
    code, stderr = await intentbus(
        secured.env_of("operator"), "provision", "--nats-url", secured.url
    )
    assert code == 0, stderr
    client = await connect_as(secured, "operator")
    yield client
    await client.close()


def paper_intent() -> ExecutionIntent:
    return build_intent(
        action="add",
        size_frac=0.1,
        position_id="p1",
        token_contract="BTC",
        token_chain="paper",
        book_id="b1",
    )


async def test_the_paper_pipeline_runs_with_each_service_under_its_own_user(
    secured: SecuredServer, operator: Client, tmp_path: Path
) -> None:
    pm = await connect_as(secured, "pm")
    with ServiceProcesses(tmp_path) as processes:
        system = ProcessSystem(secured.url, PRODUCTION, tmp_path, processes)
        await start(system, pm, secured.env_of)
        batch = intents("secured", 200)
        await publish_paced(pm, system, batch, {}, 200.0)
        await check(operator, system, batch)
        assert processes.failed() == []
    await pm.close()


async def test_an_executor_may_not_publish_intents(
    secured: SecuredServer, operator: Client, tmp_path: Path
) -> None:
    executor = await connect_as(secured, "executor-paper")
    with pytest.raises(PermissionDenied, match=r"'executor-paper' has no permission to publish"):
        await Publisher(executor.jetstream(), PRODUCTION).intent(paper_intent())
    await executor.close()
    stored = await operator.jetstream().stream_info(PRODUCTION.intents_stream)
    assert stored.state.messages == 0

    # The operator's command says so and fails, instead of timing out in silence.
    code, stderr = await intentbus(
        secured.env_of("executor-paper"),
        *("publish", "--action", "add", "--size-frac", "0.1", "--position", "p1"),
        *("--symbol", "BTC", "--venue", "paper", "--book", "b1", "--nats-url", secured.url),
    )
    assert code == 3, stderr
    assert "no permission to publish to 'intents.paper.b1.p1'" in stderr


async def test_a_user_who_may_not_ask_the_ledger_is_told_so(secured: SecuredServer) -> None:
    # The feed publishes prices; it may not ask for positions. The request is dropped by
    # the server, so without the refusal the command would blame a missing ledger.
    code, stderr = await intentbus(
        secured.env_of("feed"), "positions", "--json", "--nats-url", secured.url
    )
    assert code == 3, stderr
    assert "'feed' has no permission to publish to 'ledger.positions.list'" in stderr


async def test_an_executor_removes_its_finished_order_records(
    secured: SecuredServer, operator: Client
) -> None:
    executor = await connect_as(secured, "executor-paper")
    bucket = PRODUCTION.bucket(ORDERS_BUCKET)
    store = WorkingOrderStore(await ensure_bucket(executor.jetstream(), bucket))
    intent = paper_intent()
    order = WorkingOrder(
        intent=intent,
        plan=plan(position_id=intent.position_id, book=intent.book_id),
        partition=0,
        placed_at=datetime.now(UTC),
        owner="replica-a",
    )
    await store.put(order)
    await store.delete(order)  # a stream purge of its subject: allowed to the executor
    await executor.close()
    assert (await operator.jetstream().stream_info(f"KV_{bucket}")).state.messages == 0
