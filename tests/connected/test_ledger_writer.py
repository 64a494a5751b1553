"""One ledger writes a store: a second is refused, a stopped or killed one lets it go.

Each test runs on a SQLite file and on a PostgreSQL database (``ledger_db``).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from nats.aio.client import Client

from intentbus.bus import BusSettings, LedgerUnavailable, PositionClient, Topology
from intentbus.ledger.postgres_store import is_postgres_url
from intentbus.ledger.service import LedgerInUse, LedgerService
from intentbus.ledger.stores import store_for
from intentbus.testing import wait_for
from tests.connected.test_ledger_service import opened, running_ledger

REFUSAL_WAIT_S = 0.3


def _service(nats_url: str, topology: Topology, db: str, *, rebuild: bool = False) -> LedgerService:
    return LedgerService(
        BusSettings.from_env(nats_url, name="ledger-writer-test"),
        topology,
        db,
        rebuild=rebuild,
        writer_wait_s=REFUSAL_WAIT_S,
    )


async def _refused(service: LedgerService) -> str:
    try:
        with pytest.raises(LedgerInUse) as refused:
            await service.start()
    finally:
        await service.stop()
    return str(refused.value)


def _sqlite_files(db: str) -> list[str]:
    """Return the ledger files beside a SQLite ``db`` (a set-aside one would show)."""
    names = (p.name for p in Path(db).parent.glob("ledger.sqlite3*"))
    return sorted(name for name in names if not name.endswith(("-wal", "-shm")))


async def _answers(client: PositionClient) -> bool:
    try:
        return await client.get("p1") is not None
    except (LedgerUnavailable, TimeoutError):
        return False


async def test_a_second_ledger_is_refused_and_the_first_keeps_its_store(
    nats_url: str, topology: Topology, nc: Client, ledger_db: str
) -> None:
    db = await opened(ledger_db)
    client = PositionClient(nc, topology, timeout_s=2.0)
    async with running_ledger(nats_url, topology, db):
        message = await _refused(_service(nats_url, topology, db))
        assert "another ledger" in message
        # A rebuild would set the store aside under the running ledger: refused first.
        await _refused(_service(nats_url, topology, db, rebuild=True))
        if not is_postgres_url(db):
            assert _sqlite_files(db) == ["ledger.sqlite3", "ledger.sqlite3.writer"]
        assert await client.get("p1") is not None  # the first still answers, from its store
    # Stopped, the first lets the store go: the next ledger starts without waiting.
    async with running_ledger(nats_url, topology, db):
        assert await client.get("p1") is not None
    reader = store_for(db, read_only=True)
    await reader.open()
    try:
        assert await reader.get("p1") is not None  # nothing was set aside
    finally:
        await reader.close()


@asynccontextmanager
async def _ledger_process(
    nats_url: str, topology: Topology, db: str, *extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    child = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "intentbus.command.app", "ledger", "--db", db, *extra],
        *["--nats-url", nats_url, "--namespace", topology.namespace],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield child
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_a_killed_ledger_lets_the_next_take_over_and_a_second_command_fails_clearly(
    nats_url: str, topology: Topology, nc: Client, ledger_db: str
) -> None:
    db = await opened(ledger_db)
    client = PositionClient(nc, topology, timeout_s=1.0)
    async with _ledger_process(nats_url, topology, db) as first:
        await wait_for(lambda: _answers(client), timeout_s=30, what="the first ledger")
        async with _ledger_process(nats_url, topology, db, "--writer-wait", "0.5") as second:
            output, _ = await asyncio.wait_for(second.communicate(), timeout=30)
        assert second.returncode == 1, output.decode()
        assert "another ledger" in output.decode()
        assert "Traceback" not in output.decode()
        first.send_signal(signal.SIGKILL)
        await first.wait()
    # The killed ledger's lock went with it (its file lock, its database session).
    async with _ledger_process(nats_url, topology, db) as third:
        await wait_for(lambda: _answers(client), timeout_s=30, what="the next ledger")
        assert third.returncode is None
