"""The local venue, seen through the official SDK, unmodified: shapes, signatures, nonces.

The SDK's own ``Exchange`` places, rests, partly fills, cancels and closes orders; an
unknown signer and a reused nonce get the venue's own error texts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import eth_account
from hyperliquid.api import API
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import (
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid

from intentbus.testing import wait_for
from intentbus.venues.hyperliquid.local import LocalVenue
from intentbus.venues.hyperliquid.sim.matching import now_ms
from intentbus.venues.hyperliquid.sim.server import HyperliquidSim

CLOID = Cloid("0x" + "ab" * 16)


def _agent(local: LocalVenue) -> Exchange:
    key = local.agent_key_file.read_text().strip()
    wallet = eth_account.Account.from_key(key)
    return Exchange(wallet, local.sim.url, account_address=local.master)


async def test_the_sdk_places_rests_partly_fills_cancels_and_closes(local: LocalVenue) -> None:
    ex = await asyncio.to_thread(_agent, local)
    gtc = {"limit": {"tif": "Gtc"}}
    placed = await asyncio.to_thread(ex.order, "BTC", True, 0.03, 64_000.0, gtc, False, CLOID)
    oid = placed["response"]["data"]["statuses"][0]["resting"]["oid"]
    book = await asyncio.to_thread(ex.info.l2_snapshot, "BTC")
    assert {"px": "64000.0", "sz": "0.03", "n": 1} in book["levels"][0]
    local.set_mid("BTC", 63_990.0)  # crosses: 0.01 BTC (the depth) fills
    status = await asyncio.to_thread(ex.info.query_order_by_cloid, local.master, CLOID)
    assert status["order"]["status"] == "open"
    assert status["order"]["order"]["sz"] == "0.02"
    cancelled = await asyncio.to_thread(ex.cancel_by_cloid, "BTC", CLOID)
    assert cancelled["response"]["data"]["statuses"] == ["success"]
    again = await asyncio.to_thread(ex.cancel_by_cloid, "BTC", CLOID)
    assert again["response"]["data"]["statuses"] == [
        {"error": "Order was never placed, already canceled, or filled. asset=0"}
    ]
    local.set_mid("BTC", 65_000.0)
    bought = await asyncio.to_thread(ex.market_open, "BTC", True, 0.02)
    assert bought["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.02"
    state = await asyncio.to_thread(ex.info.user_state, local.master)
    assert state["assetPositions"][0]["position"]["szi"] == "0.03"
    closed = await asyncio.to_thread(ex.market_close, "BTC")
    assert closed["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.03"
    state = await asyncio.to_thread(ex.info.user_state, local.master)
    assert state["assetPositions"] == []
    fills = await asyncio.to_thread(ex.info.user_fills, local.master)
    assert [f["dir"] for f in reversed(fills)] == ["Open Long", "Open Long", "Close Long"]
    assert fills[-1]["oid"] == oid
    assert fills[-1]["crossed"] is False  # the resting part: maker


async def test_an_unknown_signer_is_refused_with_the_venues_text(local: LocalVenue) -> None:
    stranger = eth_account.Account.create()
    ex = await asyncio.to_thread(Exchange, stranger, local.sim.url)
    gtc = {"limit": {"tif": "Gtc"}}
    answer = await asyncio.to_thread(ex.order, "BTC", True, 0.001, 64_000.0, gtc)
    address = str(stranger.address).lower()
    assert answer == {
        "status": "err",
        "response": f"User or API Wallet {address} does not exist.",
    }
    assert local.sim.engine.account(local.master).orders == {}


async def test_a_reused_nonce_is_refused_as_a_duplicate(local: LocalVenue) -> None:
    key = local.agent_key_file.read_text().strip()
    wallet = eth_account.Account.from_key(key)
    api = API(local.sim.url)
    nonce = _now_ms()

    def send(px: float) -> Any:
        order: Any = {
            "coin": "BTC",
            "is_buy": True,
            "sz": 0.001,
            "limit_px": px,
            "order_type": {"limit": {"tif": "Gtc"}},
            "reduce_only": False,
        }
        action = order_wires_to_order_action([order_request_to_order_wire(order, 0)])
        signature = sign_l1_action(wallet, action, None, nonce, None, False)
        payload = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None}
        return api.post("/exchange", payload)

    first = await asyncio.to_thread(send, 64_000.0)
    assert first["status"] == "ok"
    second = await asyncio.to_thread(send, 63_000.0)
    assert second == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}


async def test_info_answers_what_the_sdk_asks(local: LocalVenue) -> None:
    info = await asyncio.to_thread(Info, local.sim.url, True)
    assert info.name_to_asset("BTC") == 0
    assert info.asset_to_sz_decimals[0] == 5
    assert (await asyncio.to_thread(info.all_mids))["BTC"] == "65000.0"
    book = await asyncio.to_thread(info.l2_snapshot, "BTC")
    assert [len(side) for side in book["levels"]] == [1, 1]  # the outside quotes only
    assert await asyncio.to_thread(info.open_orders, local.master) == []
    assert await asyncio.to_thread(info.frontend_open_orders, local.master) == []
    ctx = await asyncio.to_thread(info.meta_and_asset_ctxs)
    assert ctx[0]["universe"][0]["name"] == "BTC"
    now = now_ms()
    candles = await asyncio.to_thread(info.candles_snapshot, "BTC", "1m", now - 120_000, now)
    assert (candles[-1]["s"], candles[-1]["c"]) == ("BTC", "65000.0")  # the open minute
    assert candles[-1]["t"] <= now <= candles[-1]["T"]
    unknown = await asyncio.to_thread(info.query_order_by_cloid, local.master, CLOID)
    assert unknown == {"status": "unknownOid"}


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


async def test_an_api_wallet_approved_through_the_sdk_trades_for_its_master(
    local: LocalVenue,
) -> None:
    master = eth_account.Account.create()
    local.sim.fund(master.address, 10_000.0)
    owner = await asyncio.to_thread(Exchange, master, local.sim.url)
    approved, agent_key = await asyncio.to_thread(owner.approve_agent, "bot")
    assert approved == {"status": "ok", "response": {"type": "default"}}
    agent = await asyncio.to_thread(
        lambda: Exchange(
            eth_account.Account.from_key(agent_key),
            local.sim.url,
            account_address=master.address,
        )
    )
    gtc = {"limit": {"tif": "Gtc"}}
    answer = await asyncio.to_thread(agent.order, "BTC", True, 0.001, 64_000.0, gtc)
    assert "resting" in answer["response"]["data"]["statuses"][0]
    mine = local.sim.engine.account(str(master.address)).open_orders()
    assert len(mine) == 1
    # an API wallet cannot approve another one
    refused, _ = await asyncio.to_thread(agent.approve_agent)
    assert refused["status"] == "err"


async def test_websocket_post_and_ping(local: LocalVenue) -> None:
    url = local.sim.url.replace("http", "ws") + "/ws"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        assert await ws.receive_str() == "Websocket connection established."
        await ws.send_json({"method": "ping"})
        assert await ws.receive_json() == {"channel": "pong"}
        query = {"type": "info", "payload": {"type": "allMids"}}
        await ws.send_json({"method": "post", "id": 7, "request": query})
        answer = await ws.receive_json()
    assert answer["channel"] == "post"
    assert answer["data"]["id"] == 7
    assert answer["data"]["response"]["payload"]["BTC"] == "65000.0"


class _RecordingSim(HyperliquidSim):
    """Record every mid the price driver sets (polling the mid could miss steps)."""

    def __init__(self, mids: dict[str, float]) -> None:
        super().__init__(mids=mids)
        self.path: list[float] = []

    def set_mid(self, coin: str, mid: float) -> None:
        super().set_mid(coin, mid)
        self.path.append(self.engine.mids[coin])


async def test_a_seeded_price_path_repeats() -> None:
    paths = []
    for _ in range(2):
        sim = _RecordingSim(mids={"BTC": 65_000.0})
        await sim.start()
        try:
            sim.drive_prices(seed=42, interval_s=0.01)

            async def steps(sim: _RecordingSim = sim) -> int:
                return len(sim.path)

            await wait_for(steps, until=lambda n: n >= 6)
        finally:
            await sim.stop()
        paths.append(sim.path[:6])
    assert paths[0] == paths[1]
    assert len(set(paths[0])) == 6
