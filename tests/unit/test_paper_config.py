"""The paper venue's options: parsing, validation and per-symbol rules."""

from __future__ import annotations

import pytest

from intentbus.venues.paper import PaperConfig, create_executor
from intentbus.venues.paper.parsing import OptionError, parse_symbol_map


def test_defaults() -> None:
    config = PaperConfig.from_options({})
    assert config.name == "paper"
    assert config.lot_size == 0.0001
    assert config.min_notional_usd == 10.0
    rules = config.rules("BTC")
    assert rules.default_leverage > 0
    assert rules.max_leverage >= rules.default_leverage


def test_every_option_is_parsed() -> None:
    config = PaperConfig.from_options(
        {
            "name": "paper2",
            "prices": "BTC:65000, ETH:3000",
            "slippage_bps": "2.5",
            "taker_fee_bps": "5",
            "maker_fee_bps": "0",
            "lot_size": "0.01",
            "lot_sizes": "BTC:0.001",
            "min_notional_usd": "5",
            "default_leverage": "3",
            "max_leverage": "20",
            "max_leverages": "ETH:2",
            "max_slippage_bps": "80",
            "follow_marks": "false",
        }
    )
    assert config.name == "paper2"
    assert dict(config.prices) == {"BTC": 65_000.0, "ETH": 3_000.0}
    assert (config.slippage_bps, config.taker_fee_bps, config.maker_fee_bps) == (2.5, 5.0, 0.0)
    assert config.rules("BTC").lot_size == 0.001
    assert config.rules("ETH").lot_size == 0.01
    assert config.rules("ETH").max_leverage == 2.0
    assert config.rules("BTC").max_leverage == 20.0
    assert config.rules("BTC").default_max_slippage_bps == 80
    assert config.follow_marks is False


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lot_size": "abc"}, "lot_size='abc' is not a number"),
        ({"lot_size": "0"}, "lot_size='0' must be > 0"),
        ({"slippage_bps": "-1"}, "slippage_bps='-1' must be >= 0"),
        ({"prices": "BTC=1"}, "not SYMBOL:VALUE"),
        ({"prices": "BTC:0"}, r"prices\[BTC\]"),
        ({"follow_marks": "maybe"}, "not a boolean"),
        ({"name": "pa.per"}, "not a safe subject token"),
        ({"colour": "red"}, "unknown paper option"),
        ({"max_slippage_bps": "20000"}, "max_slippage_bps"),
    ],
)
def test_bad_options_are_refused_clearly(options: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        PaperConfig.from_options(options)


def test_symbol_map_allows_colons_in_symbols() -> None:
    assert parse_symbol_map("prices", "xyz:TSLA:250") == {"xyz:TSLA": 250.0}
    assert parse_symbol_map("prices", "") == {}


def test_factory_does_no_io_and_names_the_venue() -> None:
    executor = create_executor({"prices": "BTC:100"})
    assert executor.venue == "paper"
    assert executor.marks.price("BTC") == 100.0
    assert executor.can_trade_now("BTC")
    assert not executor.can_trade_now("ETH")
