"""The docker tests' engine: set up (installed, started, images built) once per session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client

from intentbus.bus import BusSettings
from intentbus.bus import connect as connect_bus
from intentbus.testing.docker_engine import ComposeStack, ensure_engine

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# The first docker test also pays for the engine's set-up, which pytest-timeout counts:
# on a fresh machine that is apt, debootstrap and six image builds (about 3 minutes here).
ENGINE_SETUP_SECONDS = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each docker test its own time limit plus the engine's set-up."""
    for item in items:
        if HERE not in item.path.parents:
            continue
        marker = item.get_closest_marker("timeout")
        default = float(item.config.getini("timeout"))
        own = float(marker.args[0]) if marker and marker.args else default
        item.add_marker(pytest.mark.timeout(own + ENGINE_SETUP_SECONDS))


@pytest.fixture(scope="session")
def docker_engine(request: pytest.FixtureRequest) -> Path:
    """Run ``python3 dev.py docker`` with its progress shown (minutes on a fresh machine)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        ensure_engine(ROOT)
    return ROOT


async def _connected(stack: ComposeStack, user: str) -> AsyncIterator[Client]:
    settings = BusSettings.from_env(
        stack.nats_url, name=f"compose-test-{user}", env=stack.credentials(user)
    )
    client = await connect_bus(settings)
    yield client
    await client.drain()


@pytest_asyncio.fixture
async def nc(stack: ComposeStack) -> AsyncIterator[Client]:
    """Connect from the host to the module's stack as the operator (reads every stream)."""
    async for client in _connected(stack, "operator"):
        yield client


@pytest_asyncio.fixture
async def pm(stack: ComposeStack) -> AsyncIterator[Client]:
    """Connect from the host as the PM user: it publishes intents and opens positions."""
    async for client in _connected(stack, "pm"):
        yield client
