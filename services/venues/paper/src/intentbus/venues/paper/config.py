"""The paper venue's configuration, parsed and validated from ``--option`` strings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from intentbus.bus import check_token
from intentbus.executor.sizing import MarketRules
from intentbus.venues.paper import constants as c
from intentbus.venues.paper.parsing import OptionError, parse_bool, parse_float, parse_symbol_map

KNOWN_OPTIONS = (
    "name",
    "prices",
    "slippage_bps",
    "taker_fee_bps",
    "maker_fee_bps",
    "lot_size",
    "lot_sizes",
    "min_notional_usd",
    "default_leverage",
    "max_leverage",
    "max_leverages",
    "max_slippage_bps",
    "follow_marks",
)


@dataclass(frozen=True, kw_only=True)
class PaperConfig:
    """Say how the paper venue fills orders and which rules it enforces."""

    name: str = c.VENUE
    prices: Mapping[str, float] = field(default_factory=dict)
    slippage_bps: float = c.DEFAULT_SLIPPAGE_BPS
    taker_fee_bps: float = c.DEFAULT_TAKER_FEE_BPS
    maker_fee_bps: float = c.DEFAULT_MAKER_FEE_BPS
    lot_size: float = c.DEFAULT_LOT_SIZE
    lot_sizes: Mapping[str, float] = field(default_factory=dict)
    min_notional_usd: float = c.DEFAULT_MIN_NOTIONAL_USD
    default_leverage: float = c.DEFAULT_LEVERAGE
    max_leverage: float = c.DEFAULT_MAX_LEVERAGE
    max_leverages: Mapping[str, float] = field(default_factory=dict)
    max_slippage_bps: int = c.DEFAULT_MAX_SLIPPAGE_BPS
    follow_marks: bool = True

    def __post_init__(self) -> None:
        try:
            check_token("venue", self.name)
        except ValueError as exc:
            raise OptionError(f"option name: {exc}") from None
        checks = {
            "slippage_bps": self.slippage_bps >= 0,
            "taker_fee_bps": self.taker_fee_bps >= 0,
            "maker_fee_bps": self.maker_fee_bps >= 0,
            "lot_size": self.lot_size > 0,
            "min_notional_usd": self.min_notional_usd >= 0,
            "default_leverage": self.default_leverage > 0,
            "max_leverage": self.max_leverage > 0,
            "max_slippage_bps": 0 <= self.max_slippage_bps <= 10_000,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise OptionError(f"invalid paper option value(s): {', '.join(bad)}")

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> PaperConfig:
        """Build the config from ``KEY=VALUE`` options; unknown keys are an error."""
        unknown = sorted(set(options) - set(KNOWN_OPTIONS))
        if unknown:
            raise OptionError(
                f"unknown paper option(s): {', '.join(unknown)}; known: {', '.join(KNOWN_OPTIONS)}"
            )

        def number(key: str, default: float, *, strict: bool = False) -> float:
            if key not in options:
                return default
            return parse_float(key, options[key], minimum=0.0, strict=strict)

        return cls(
            name=options.get("name", c.VENUE),
            prices=parse_symbol_map("prices", options.get("prices", "")),
            slippage_bps=number("slippage_bps", c.DEFAULT_SLIPPAGE_BPS),
            taker_fee_bps=number("taker_fee_bps", c.DEFAULT_TAKER_FEE_BPS),
            maker_fee_bps=number("maker_fee_bps", c.DEFAULT_MAKER_FEE_BPS),
            lot_size=number("lot_size", c.DEFAULT_LOT_SIZE, strict=True),
            lot_sizes=parse_symbol_map("lot_sizes", options.get("lot_sizes", "")),
            min_notional_usd=number("min_notional_usd", c.DEFAULT_MIN_NOTIONAL_USD),
            default_leverage=number("default_leverage", c.DEFAULT_LEVERAGE, strict=True),
            max_leverage=number("max_leverage", c.DEFAULT_MAX_LEVERAGE, strict=True),
            max_leverages=parse_symbol_map("max_leverages", options.get("max_leverages", "")),
            max_slippage_bps=int(number("max_slippage_bps", c.DEFAULT_MAX_SLIPPAGE_BPS)),
            follow_marks=parse_bool("follow_marks", options.get("follow_marks", "true")),
        )

    def rules(self, symbol: str) -> MarketRules:
        """Return the trading rules of ``symbol``."""
        return MarketRules(
            lot_size=self.lot_sizes.get(symbol, self.lot_size),
            min_notional_usd=self.min_notional_usd,
            default_leverage=self.default_leverage,
            max_leverage=self.max_leverages.get(symbol, self.max_leverage),
            default_max_slippage_bps=self.max_slippage_bps,
        )
