"""The local venue's state: assets, accounts, positions, orders and fills, in venue shapes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from intentbus.venues.hyperliquid.grid import wire


@dataclass(frozen=True)
class Asset:
    """One perp listing of the universe (``meta``); its asset id is its index."""

    name: str
    sz_decimals: int
    max_leverage: int
    only_isolated: bool = False
    is_delisted: bool = False

    def meta(self) -> dict[str, Any]:
        """Return the asset as ``meta`` lists it."""
        row: dict[str, Any] = {
            "name": self.name,
            "szDecimals": self.sz_decimals,
            "maxLeverage": self.max_leverage,
            "marginTableId": self.max_leverage,
        }
        if self.only_isolated:
            row["onlyIsolated"] = True
        if self.is_delisted:
            row["isDelisted"] = True
        return row


DEFAULT_ASSETS = (
    Asset("BTC", 5, 40),
    Asset("ETH", 4, 25),
    Asset("SOL", 2, 20),
    Asset("DOGE", 0, 10),
    Asset("ISO", 1, 3, only_isolated=True),
    Asset("OLD", 2, 3, is_delisted=True),
)


@dataclass
class Order:
    """One order of one account (resting or finished)."""

    oid: int
    user: str
    coin: str
    asset: int
    is_buy: bool
    limit_px: float
    orig_sz: float
    sz: float
    reduce_only: bool
    tif: str
    timestamp: int
    cloid: str | None
    status: str = "open"
    status_ts: int = 0
    filled_px_sz: float = 0.0  # sum of px * sz of its fills

    @property
    def filled(self) -> float:
        """Return the size filled so far."""
        return self.orig_sz - self.sz

    def basic(self) -> dict[str, Any]:
        """Return the order as ``openOrders`` and ``orderUpdates`` show it."""
        row: dict[str, Any] = {
            "coin": self.coin,
            "side": "B" if self.is_buy else "A",
            "limitPx": wire(self.limit_px),
            "sz": wire(self.sz),
            "oid": self.oid,
            "timestamp": self.timestamp,
            "origSz": wire(self.orig_sz),
        }
        if self.cloid is not None:
            row["cloid"] = self.cloid
        return row

    def frontend(self) -> dict[str, Any]:
        """Return the order as ``frontendOpenOrders`` and ``orderStatus`` show it."""
        return {
            **self.basic(),
            "triggerCondition": "N/A",
            "isTrigger": False,
            "triggerPx": "0.0",
            "children": [],
            "isPositionTpsl": False,
            "reduceOnly": self.reduce_only,
            "orderType": "Limit",
            "tif": self.tif,
            "cloid": self.cloid,
        }

    def status_row(self) -> dict[str, Any]:
        """Return ``orderStatus``'s answer for this order."""
        return {
            "status": "order",
            "order": {
                "order": self.frontend(),
                "status": self.status,
                "statusTimestamp": self.status_ts,
            },
        }

    def update_row(self) -> dict[str, Any]:
        """Return one ``orderUpdates`` element."""
        return {"order": self.basic(), "status": self.status, "statusTimestamp": self.status_ts}


@dataclass
class Position:
    """One account's net position in one coin."""

    szi: float = 0.0
    entry_px: float = 0.0
    cum_funding: float = 0.0


@dataclass
class Account:
    """One account (master, sub-account or vault): USDC, positions, leverage, orders, fills."""

    address: str
    usdc: float
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, tuple[bool, int]] = field(default_factory=dict)  # coin -> cross, value
    orders: dict[int, Order] = field(default_factory=dict)
    by_cloid: dict[str, int] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)

    def position(self, coin: str) -> Position:
        """Return the account's position in ``coin`` (created flat)."""
        return self.positions.setdefault(coin, Position())

    def open_orders(self) -> list[Order]:
        """Return the resting orders, newest first (as the venue lists them)."""
        live = [o for o in self.orders.values() if o.status == "open"]
        return sorted(live, key=lambda o: o.oid, reverse=True)


def fill_row(
    *,
    order: Order,
    px: float,
    sz: float,
    start: float,
    closed_pnl: float,
    fee: float,
    crossed: bool,
    time_ms: int,
    tid: int,
    with_cloid: bool = True,
) -> dict[str, Any]:
    """Return one fill as ``userFills`` shows it."""
    row: dict[str, Any] = {
        "coin": order.coin,
        "px": wire(px),
        "sz": wire(sz),
        "side": "B" if order.is_buy else "A",
        "time": time_ms,
        "startPosition": wire(start),
        "dir": direction(start, sz if order.is_buy else -sz),
        "closedPnl": f"{closed_pnl:.6f}",
        "hash": "0x" + secrets.token_hex(32),
        "oid": order.oid,
        "crossed": crossed,
        "fee": f"{fee:.6f}",
        "tid": tid,
        "feeToken": "USDC",
    }
    if order.cloid is not None and with_cloid:
        row["cloid"] = order.cloid
    return row


def direction(start: float, delta: float) -> str:
    """Return the venue's ``dir`` of a fill moving the position from ``start`` by ``delta``."""
    end = start + delta
    if delta > 0:
        if start >= 0:
            return "Open Long"
        return "Close Short" if end <= 1e-12 else "Short > Long"
    if start <= 0:
        return "Open Short"
    return "Close Long" if end >= -1e-12 else "Long > Short"
