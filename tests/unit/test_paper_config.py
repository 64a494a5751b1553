"""The paper venue's options: parsing, validation and per-symbol rules."""

from __future__ import annotations

import math

import pytest

from intentbus.venues.paper import PaperConfig, PaperExecutorOptions, create_executor
from intentbus.venues.paper.parsing import OptionError, parse_accounts, parse_symbol_map


def test_defaults() -> None:
    config = PaperConfig.from_options({})
    assert config.name == "paper"
    assert config.lot_size == 0.0001
    assert config.min_notional_usd == 10.0
    rules = config.rules("BTC")
    assert rules.default_leverage > 0
    assert rules.max_leverage >= rules.default_leverage
    assert config.depth("BTC", 100.0) == math.inf
    assert config.account_for("main") == "main"


def test_every_option_is_parsed() -> None:
    config = PaperConfig.from_options(
        {
            "name": "paper2",
            "prices": "BTC:65000, ETH:3000",
            "slippage_bps": "2.5",
            "taker_fee_bps": "5",
            "maker_fee_bps": "-1",
            "lot_size": "0.01",
            "lot_sizes": "BTC:0.001",
            "min_notional_usd": "5",
            "default_leverage": "3",
            "max_leverage": "20",
            "max_leverages": "ETH:2",
            "max_slippage_bps": "80",
            "passive_offset_bps": "25",
            "follow_marks": "false",
            "depth_usd": "1000",
            "depths": "BTC:0.5",
            "taker_depth_usd": "500",
            "taker_depths": "ETH:2",
            "accounts": "alpha:acct-A, beta:acct-B",
            "lease_s": "5",
            "heartbeat_s": "0.5",
        }
    )
    assert config.name == "paper2"
    assert dict(config.prices) == {"BTC": 65_000.0, "ETH": 3_000.0}
    assert (config.slippage_bps, config.taker_fee_bps, config.maker_fee_bps) == (2.5, 5.0, -1.0)
    assert config.rules("BTC").lot_size == 0.001
    assert config.rules("ETH").lot_size == 0.01
    assert config.rules("ETH").max_leverage == 2.0
    assert config.rules("BTC").max_leverage == 20.0
    assert config.rules("BTC").default_max_slippage_bps == 80
    assert config.rules("BTC").passive_offset_bps == 25
    assert config.follow_marks is False
    assert config.depth("BTC", 100.0) == 0.5
    assert config.depth("ETH", 100.0) == 10.0  # 1000 USD at 100
    assert (config.taker_depth("ETH", 100.0), config.taker_depth("BTC", 100.0)) == (2.0, 5.0)
    assert config.account_for("alpha") == "acct-A"
    assert (config.lease_s, config.heartbeat_s) == (5.0, 0.5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lot_size": "abc"}, "lot_size='abc' is not a number"),
        ({"lot_size": "0"}, "lot_size='0' must be > 0"),
        ({"slippage_bps": "-1"}, "slippage_bps='-1' must be >= 0"),
        ({"maker_fee_bps": "-9"}, "maker_fee_bps"),  # a rebate above the taker fee
        ({"prices": "BTC=1"}, "not SYMBOL:VALUE"),
        ({"prices": "BTC:0"}, r"prices\[BTC\]"),
        ({"depths": "BTC:0"}, r"depths\[BTC\]"),
        ({"follow_marks": "maybe"}, "not a boolean"),
        ({"name": "pa.per"}, "not a safe subject token"),
        ({"name": "pa=per"}, "may not contain"),
        ({"colour": "red"}, "unknown paper option"),
        ({"max_slippage_bps": "20000"}, "max_slippage_bps"),
        ({"accounts": "a:x,b:x"}, "cannot share account"),
        ({"accounts": "a.b:x"}, "not BOOK:ACCOUNT"),
        ({"accounts": "a:" + "x" * 129}, "not BOOK:ACCOUNT"),
        ({"lease_s": "0.5"}, "lease_s"),
    ],
)
def test_bad_options_are_refused_clearly(options: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        PaperConfig.from_options(options)


def test_maps_allow_colons_in_symbols_and_long_accounts() -> None:
    assert parse_symbol_map("prices", "xyz:TSLA:250") == {"xyz:TSLA": 250.0}
    assert parse_symbol_map("prices", "") == {}
    assert parse_accounts("b:" + "A" * 128) == {"b": "A" * 128}


def test_executor_options_and_factory_do_no_io() -> None:
    executor = create_executor({"name": "paper2", "timeout_s": "2"})
    assert executor.venue == "paper2"
    assert executor.account_for("main") == "main"
    assert executor.rules("BTC") is None  # known once started
    assert not executor.can_trade_now("BTC")
    with pytest.raises(OptionError, match="options of the venue server"):
        PaperExecutorOptions.from_options({"prices": "BTC:100"})
