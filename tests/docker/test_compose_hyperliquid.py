"""The compose stack's ``hyperliquid`` profile: the Hyperliquid executor in its container.

It trades a funded account through an approved API wallet on the local Hyperliquid
(the simulator's container), under its own NATS user; the ledger shows what the
venue's account holds.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import eth_account
import pytest
from nats.aio.client import Client

from intentbus.bus import PositionClient, Publisher, Topology
from intentbus.schemas import ActionType, ExecutionStatus, OpenPosition, build_intent
from intentbus.testing import wait_for
from intentbus.testing.docker_engine import ComposeStack, free_port
from tests.e2e.system_checks import final_results, wait_for_ledger

pytestmark = pytest.mark.timeout(600)

MASTER = eth_account.Account.create()
AGENT = eth_account.Account.create()


@pytest.fixture
def stack(docker_engine: Path) -> Iterator[ComposeStack]:
    """Bring the default services and the Hyperliquid profile up; always take them down."""
    keys = Path(tempfile.mkdtemp(prefix="intentbus-hl-compose-"))
    keys.chmod(0o755)  # the executor runs as uid 65534 and reads the key through a mount
    key_file = keys / "agent.key"
    key_file.write_text(AGENT.key.hex(), encoding="utf-8")
    key_file.chmod(0o644)
    stack = ComposeStack(
        docker_engine,
        docker_engine / "deploy/local/compose.env",
        overrides={
            "HYPERLIQUID_ACCOUNT": MASTER.address.lower(),
            "HYPERLIQUID_AGENT_ADDRESS": AGENT.address.lower(),
            "HYPERLIQUID_AGENT_KEY_FILE": str(key_file),
            "HYPERLIQUID_VENUE_PORT": str(free_port()),
        },
        profiles=("hyperliquid",),
    )
    try:
        with stack.running():
            yield stack
    finally:
        shutil.rmtree(keys, ignore_errors=True)


def venue_position(stack: ComposeStack, coin: str) -> float:
    """Return the account's signed size in ``coin`` as the local venue reports it."""
    url = f"http://127.0.0.1:{stack.overrides['HYPERLIQUID_VENUE_PORT']}/info"
    query = {"type": "clearinghouseState", "user": MASTER.address.lower()}
    request = urllib.request.Request(
        url, json.dumps(query).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        state = json.load(reply)
    sizes = [
        float(row["position"]["szi"])
        for row in state["assetPositions"]
        if row["position"]["coin"] == coin
    ]
    return sum(sizes)


async def test_the_hyperliquid_profile_trades_through_the_api_wallet(
    stack: ComposeStack, nc: Client, pm: Client
) -> None:
    topology = Topology("")
    client = PositionClient(pm, topology, timeout_s=2.0)
    await wait_for_ledger(client, timeout_s=120)
    await client.open(
        OpenPosition(
            position_id="hl-c1",
            venue="hyperliquid",
            book_id="main",
            token_contract="BTC",
            allocation_usd=3_900.0,
        )
    )
    intent = build_intent(
        action=ActionType.ADD,
        size_frac=0.5,
        position_id="hl-c1",
        token_contract="BTC",
        token_chain="hyperliquid",
        book_id="main",
        urgency="critical",  # a marketable IOC: it trades at once against the local book
    )
    await Publisher(pm.jetstream(), topology).intent(intent)

    async def result_of() -> list[ExecutionStatus]:
        found = await final_results(nc.jetstream(), topology)
        return [r.status for r in found if r.intent_id == intent.intent_id]

    statuses = await wait_for(result_of, timeout_s=120, interval_s=0.5, what="the result")
    assert statuses == [ExecutionStatus.SUCCESS]
    held = venue_position(stack, "BTC")
    assert held > 0

    async def ledger_size() -> float:
        position = await client.get("hl-c1")
        return 0.0 if position is None else position.size

    await wait_for(ledger_size, until=lambda size: abs(size - held) < 1e-9, timeout_s=30)
