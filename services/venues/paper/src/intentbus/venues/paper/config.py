"""The paper venue server's configuration, parsed and validated from ``--option`` strings.

See the package README for the table of options.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from intentbus.bus import check_token
from intentbus.executor.sizing import MarketRules
from intentbus.venues.paper import constants as c
from intentbus.venues.paper.parsing import (
    OptionError,
    parse_accounts,
    parse_bool,
    parse_float,
    parse_symbol_map,
)
from intentbus.venues.paper.protocol import RulesInfo

KNOWN_OPTIONS = (
    "name",
    "prices",
    "follow_marks",
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
    "passive_offset_bps",
    "depth_usd",
    "depths",
    "taker_depth_usd",
    "taker_depths",
    "accounts",
    "lease_s",
    "heartbeat_s",
)


@dataclass(frozen=True, kw_only=True)
class PaperConfig:
    """Say how the paper venue fills orders, which rules it enforces and who trades."""

    name: str = c.VENUE
    prices: Mapping[str, float] = field(default_factory=dict)
    follow_marks: bool = True
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
    passive_offset_bps: int = c.DEFAULT_PASSIVE_OFFSET_BPS
    depth_usd: float = c.DEFAULT_DEPTH_USD
    depths: Mapping[str, float] = field(default_factory=dict)
    taker_depth_usd: float = c.DEFAULT_DEPTH_USD
    taker_depths: Mapping[str, float] = field(default_factory=dict)
    accounts: Mapping[str, str] = field(default_factory=dict)
    lease_s: float = c.DEFAULT_LEASE_S
    heartbeat_s: float = c.DEFAULT_HEARTBEAT_S

    def __post_init__(self) -> None:
        try:
            check_token("venue", self.name)
        except ValueError as exc:
            raise OptionError(f"option name: {exc}") from None
        if "=" in self.name:  # it names a KV bucket too
            raise OptionError(f"option name: {self.name!r} may not contain '='")
        checks = {
            "slippage_bps": 0 <= self.slippage_bps < 10_000,
            "taker_fee_bps": 0 <= self.taker_fee_bps < 10_000,
            "maker_fee_bps": -self.taker_fee_bps <= self.maker_fee_bps < 10_000,
            "lot_size": self.lot_size > 0,
            "min_notional_usd": self.min_notional_usd >= 0,
            "default_leverage": self.default_leverage > 0,
            "max_leverage": self.max_leverage > 0,
            "max_slippage_bps": 0 <= self.max_slippage_bps <= 10_000,
            "passive_offset_bps": 0 <= self.passive_offset_bps < 10_000,
            "depth_usd": self.depth_usd >= 0,
            "taker_depth_usd": self.taker_depth_usd >= 0,
            "lease_s": self.lease_s >= 1,
            "heartbeat_s": self.heartbeat_s > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise OptionError(f"invalid paper option value(s): {', '.join(bad)}")
        parse_accounts(",".join(f"{b}:{a}" for b, a in self.accounts.items()))

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> PaperConfig:
        """Build the config from ``KEY=VALUE`` options; unknown keys are an error."""
        unknown = sorted(set(options) - set(KNOWN_OPTIONS))
        if unknown:
            raise OptionError(
                f"unknown paper option(s): {', '.join(unknown)}; known: {', '.join(KNOWN_OPTIONS)}"
            )

        def number(
            key: str, default: float, *, strict: bool = False, signed: bool = False
        ) -> float:
            if key not in options:
                return default
            minimum = None if signed else 0.0
            return parse_float(key, options[key], minimum=minimum, strict=strict)

        def table(key: str) -> dict[str, float]:
            return parse_symbol_map(key, options.get(key, ""))

        return cls(
            name=options.get("name", c.VENUE),
            prices=table("prices"),
            follow_marks=parse_bool("follow_marks", options.get("follow_marks", "true")),
            slippage_bps=number("slippage_bps", c.DEFAULT_SLIPPAGE_BPS),
            taker_fee_bps=number("taker_fee_bps", c.DEFAULT_TAKER_FEE_BPS),
            maker_fee_bps=number("maker_fee_bps", c.DEFAULT_MAKER_FEE_BPS, signed=True),
            lot_size=number("lot_size", c.DEFAULT_LOT_SIZE, strict=True),
            lot_sizes=table("lot_sizes"),
            min_notional_usd=number("min_notional_usd", c.DEFAULT_MIN_NOTIONAL_USD),
            default_leverage=number("default_leverage", c.DEFAULT_LEVERAGE, strict=True),
            max_leverage=number("max_leverage", c.DEFAULT_MAX_LEVERAGE, strict=True),
            max_leverages=table("max_leverages"),
            max_slippage_bps=int(number("max_slippage_bps", c.DEFAULT_MAX_SLIPPAGE_BPS)),
            passive_offset_bps=int(number("passive_offset_bps", c.DEFAULT_PASSIVE_OFFSET_BPS)),
            depth_usd=number("depth_usd", c.DEFAULT_DEPTH_USD),
            depths=table("depths"),
            taker_depth_usd=number("taker_depth_usd", c.DEFAULT_DEPTH_USD),
            taker_depths=table("taker_depths"),
            accounts=parse_accounts(options.get("accounts", "")),
            lease_s=number("lease_s", c.DEFAULT_LEASE_S, strict=True),
            heartbeat_s=number("heartbeat_s", c.DEFAULT_HEARTBEAT_S, strict=True),
        )

    def rules_info(self) -> RulesInfo:
        """Return the rules as the server publishes them to its clients."""
        return RulesInfo(
            lot_size=self.lot_size,
            lot_sizes=dict(self.lot_sizes),
            min_notional_usd=self.min_notional_usd,
            default_leverage=self.default_leverage,
            max_leverage=self.max_leverage,
            max_leverages=dict(self.max_leverages),
            max_slippage_bps=self.max_slippage_bps,
            passive_offset_bps=self.passive_offset_bps,
        )

    def rules(self, symbol: str) -> MarketRules:
        """Return the trading rules of ``symbol``."""
        return rules_from(self.rules_info(), symbol)

    def depth(self, symbol: str, mark: float) -> float:
        """Return how many tokens of resting orders may fill per side per mark update."""
        return _tokens(self.depths.get(symbol), self.depth_usd, mark)

    def taker_depth(self, symbol: str, mark: float) -> float:
        """Return how many tokens one taker order may fill on arrival."""
        return _tokens(self.taker_depths.get(symbol), self.taker_depth_usd, mark)

    def account_for(self, book_id: str) -> str:
        """Return the account of ``book_id``: as mapped, else the book's own name."""
        return self.accounts.get(book_id, book_id)


def _tokens(tokens: float | None, usd: float, mark: float) -> float:
    if tokens is not None:
        return tokens
    return usd / mark if usd > 0 else math.inf


def rules_from(info: RulesInfo, symbol: str) -> MarketRules:
    """Return one symbol's :class:`MarketRules` from the published rules."""
    return MarketRules(
        lot_size=info.lot_sizes.get(symbol, info.lot_size),
        min_notional_usd=info.min_notional_usd,
        default_leverage=info.default_leverage,
        max_leverage=info.max_leverages.get(symbol, info.max_leverage),
        default_max_slippage_bps=info.max_slippage_bps,
        passive_offset_bps=info.passive_offset_bps,
    )
