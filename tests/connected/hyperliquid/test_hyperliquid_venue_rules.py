"""Venue rules at the local venue: skipped before any request, or refused in the venue's words."""

from __future__ import annotations

import asyncio

import eth_account
from hyperliquid.exchange import Exchange
from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.schemas import ActionType, ExecutionStatus, OrderState, SkipReason
from intentbus.testing.executor_contract import ExecutorContractSuite, VenueHarness
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.testing.lifecycle_contract import LifecycleContractSuite
from intentbus.venues.hyperliquid.local import LocalVenue

LIFE = LifecycleContractSuite()
CONTRACT = ExecutorContractSuite()


async def test_an_order_worth_9_99_after_rounding_is_skipped_before_any_request(
    venue_harness: VenueHarness,
    local: LocalVenue,
    nats_url: str,
    js: JetStreamContext,
    topology: Topology,
    ledger: FakeLedger,
) -> None:
    h = venue_harness
    await h.set_price("BTC", 62_510.0)
    # 0.00016 BTC (szDecimals 5) is $10.0016 at the mark, but the passive limit
    # 62510 x 0.999 = 62447.49 rounds to 62447: $9.99 at the price sent.
    LIFE.open(h, ledger, "min-1", 10.002)
    async with LIFE.replica(h, nats_url, topology):
        iid = await LIFE.publish(js, topology, h, "min-1", ActionType.ADD, 1.0, urgency="low")
        result = await LIFE.result(ledger, iid)
    assert result.status is ExecutionStatus.SKIPPED
    assert result.skip_reason == SkipReason.BELOW_MIN_NOTIONAL.value
    assert "$9.99" in str(result.metadata["detail"])
    assert "min_notional_after_rounding" in str(result.metadata["constraints_applied"])
    assert local.sim.exchange_calls == 0  # nothing was sent


async def test_leverage_is_updated_only_when_it_differs(
    venue_harness: VenueHarness, local: LocalVenue
) -> None:
    h = venue_harness
    ex = local.executor(default_leverage=3)
    await ex.start(None)
    try:
        pos = CONTRACT.position(h, ex)
        first = CONTRACT.plan(h, ex, pos, ActionType.ADD, 0.1, urgency="low")
        assert first.leverage == 3.0
        await ex.place(first)
        assert local.sim.exchange_calls == 2  # updateLeverage, then the order
        second = CONTRACT.plan(h, ex, pos, ActionType.ADD, 0.2, urgency="low")
        await ex.place(second)
        assert local.sim.exchange_calls == 3  # the same leverage: the order only
        capped = CONTRACT.plan(h, ex, pos, ActionType.ADD, 0.3, urgency="low", max_leverage=2.5)
        assert capped.leverage == 2.0  # an integer, within the PM's cap
        await ex.place(capped)
        assert local.sim.exchange_calls == 5
        account = local.sim.engine.account(local.master)
        assert account.leverage["BTC"] == (True, 2)
    finally:
        await ex.stop()


async def test_the_venue_refuses_what_the_rules_forbid_in_its_own_words(
    local: LocalVenue,
) -> None:
    key = local.agent_key_file.read_text().strip()
    wallet = eth_account.Account.from_key(key)
    ex = await asyncio.to_thread(
        lambda: Exchange(wallet, local.sim.url, account_address=local.master)
    )
    local.set_mid("ISO", 10.0)
    gtc = {"limit": {"tif": "Gtc"}}

    def statuses(answer: dict[str, object]) -> object:
        return answer["response"]["data"]["statuses"][0]  # type: ignore[index]

    off_tick = await asyncio.to_thread(ex.order, "BTC", True, 0.001, 64_000.5, gtc)
    assert statuses(off_tick) == {"error": "Price must be divisible by tick size. asset=0"}
    small = await asyncio.to_thread(ex.order, "BTC", True, 0.00015, 64_000.0, gtc)
    assert statuses(small) == {"error": "Order must have minimum value of $10. asset=0"}
    reduce = await asyncio.to_thread(ex.order, "BTC", False, 0.001, 64_000.0, gtc, True)
    assert statuses(reduce) == {"error": "Reduce only order would increase position. asset=0"}
    alo = await asyncio.to_thread(ex.order, "BTC", True, 0.001, 66_000.0, {"limit": {"tif": "Alo"}})
    assert statuses(alo) == {
        "error": "Post only order would have immediately matched, bbo was 64996.0@65004.0. asset=0"
    }
    ioc = await asyncio.to_thread(ex.order, "BTC", True, 0.001, 64_000.0, {"limit": {"tif": "Ioc"}})
    assert statuses(ioc) == {
        "error": "Order could not immediately match against any resting orders. asset=0"
    }
    odd_size = await asyncio.to_thread(ex.order, "BTC", True, 0.000011, 64_000.0, gtc)
    assert statuses(odd_size) == {"error": "Order has invalid size."}  # 6 > szDecimals 5
    far = await asyncio.to_thread(ex.order, "BTC", True, 0.001, 12_000.0, gtc)
    assert statuses(far) == {  # the documented text (no live sample with its suffix)
        "error": "Order price cannot be more than 80% away from the reference price"
    }
    huge = await asyncio.to_thread(ex.order, "BTC", True, 400.0, 64_000.0, gtc)  # $1.3M margin
    assert statuses(huge) == {"error": "Insufficient margin to place order. asset=0"}
    too_high = await asyncio.to_thread(ex.update_leverage, 41, "BTC")
    assert too_high == {"status": "err", "response": "Invalid leverage value"}
    cross = await asyncio.to_thread(ex.update_leverage, 2, "ISO", True)
    assert cross["status"] == "err"
    isolated = await asyncio.to_thread(ex.update_leverage, 2, "ISO", False)
    assert isolated == {"status": "ok", "response": {"type": "default"}}
    await asyncio.to_thread(ex.market_open, "BTC", True, 0.001)
    switch = await asyncio.to_thread(ex.update_leverage, 5, "BTC", False)
    assert switch == {
        "status": "err",
        "response": "Cannot switch leverage type with open position.",
    }


async def test_an_only_isolated_asset_trades_isolated_and_a_delisted_one_is_skipped(
    venue_harness: VenueHarness, local: LocalVenue
) -> None:
    h = venue_harness
    local.set_mid("ISO", 10.0)
    local.set_mid("OLD", 10.0)
    ex = local.executor(default_leverage=5)
    await ex.start(None)
    try:
        pos = CONTRACT.position(h, ex, symbol="ISO")
        plan = CONTRACT.plan(h, ex, pos, ActionType.ADD, 0.1, urgency="critical")
        assert plan.leverage == 3.0  # ISO's maxLeverage
        order = await ex.place(plan)
        assert order.state is OrderState.FILLED
        assert local.sim.engine.account(local.master).leverage["ISO"] == (False, 3)
        old = CONTRACT.position(h, ex, symbol="OLD")
        skip = CONTRACT.skip(h, ex, old, ActionType.ADD, 0.1)
        assert skip.reason == SkipReason.MARKET_CLOSED.value
    finally:
        await ex.stop()


async def test_a_book_mapped_to_a_vault_trades_the_vault(
    venue_harness: VenueHarness, local: LocalVenue
) -> None:
    h = venue_harness
    vault = str(eth_account.Account.create().address).lower()
    local.sim.add_vault(vault, local.master, 100_000.0)
    ex = local.executor(vaults={"main": vault})
    await ex.start(None)
    try:
        assert ex.account_for("main") == vault
        plan = CONTRACT.plan(
            h, ex, CONTRACT.position(h, ex), ActionType.ADD, 0.1, urgency="critical"
        )
        assert plan.account == vault
        filled = await ex.place(plan)
        assert filled.state is OrderState.FILLED
        assert await ex.net_position(vault, "BTC") == filled.filled_size
        assert await ex.net_position(local.master, "BTC") == 0
    finally:
        await ex.stop()
