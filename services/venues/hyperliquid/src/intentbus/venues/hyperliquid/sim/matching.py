"""The local venue's matching engine: a book around the mid, fees, margin and ``closedPnl``.

The book: outside liquidity quotes ``bid``/``ask`` one tick around the mid (at least
``half_spread_bps``). An arriving order that crosses takes at the touch (taker fee) up to
``taker_depth`` tokens; an IOC's rest is cancelled, a GTC rests. Each mid update fills
resting orders it reaches (the new ask at or below a buy, the bid at or above a sell) by
at most ``depth`` tokens per order, at the order's own price (maker fee). Fills move the
account's position and USDC as the venue does: ``closedPnl`` is the closed size times
the move from the average entry price (fees excluded), the fee is taken from USDC.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from intentbus.venues.hyperliquid import constants as c
from intentbus.venues.hyperliquid.grid import round_price, tick, valid_price, valid_size, wire
from intentbus.venues.hyperliquid.sim.state import (
    DEFAULT_ASSETS,
    Account,
    Asset,
    Order,
    fill_row,
)

Listener = Callable[[str, str, Any], None]  # user, channel, data


@dataclass
class EngineSettings:
    """How the local venue fills orders."""

    taker_fee: float = 0.00045
    maker_fee: float = 0.00015
    half_spread_bps: float = 0.5
    depth: float = math.inf  # tokens per resting order per mid update
    taker_depth: float = math.inf  # tokens one arriving order takes
    default_leverage: int = 20
    cloid_on_fills: bool = True  # older fills carry no cloid (only oid)


class OrderRefused(Exception):
    """An order the venue refuses: its per-order error and the status it keeps."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


MAX_PRICES = 100_000  # mids kept per coin for candleSnapshot


def now_ms() -> int:
    """Return the venue clock in milliseconds."""
    return int(time.time() * 1000)


class Engine:
    """Accounts, books and fills of the local venue."""

    def __init__(
        self, assets: tuple[Asset, ...] = DEFAULT_ASSETS, settings: EngineSettings | None = None
    ) -> None:
        self.assets = list(assets)
        self.index = {a.name: i for i, a in enumerate(self.assets)}
        self.settings = settings or EngineSettings()
        self.mids: dict[str, float] = {}
        self.prices: dict[str, list[tuple[int, float]]] = {}  # (ms, mid), in time order
        self.depths: dict[str, float] = {}
        self.accounts: dict[str, Account] = {}
        self.listeners: list[Listener] = []
        self._oid = 1_000_000
        self._tid = 5_000_000

    # accounts ----------------------------------------------------------------------
    def account(self, user: str) -> Account:
        """Return the account of ``user`` (a lower-case address), created empty if new."""
        return self.accounts.setdefault(user.lower(), Account(user.lower(), 0.0))

    def deposit(self, user: str, usdc: float) -> None:
        """Credit USDC to ``user``."""
        self.account(user).usdc += usdc

    def _emit(self, user: str, channel: str, data: Any) -> None:
        for listener in list(self.listeners):
            listener(user, channel, data)

    # the market ----------------------------------------------------------------------
    def asset(self, coin: str) -> Asset:
        """Return the listed asset named ``coin``."""
        return self.assets[self.index[coin]]

    def bbo(self, coin: str) -> tuple[float, float]:
        """Return the outside bid and ask around the mid."""
        mid = self.mids[coin]
        decimals = self.asset(coin).sz_decimals
        spread = mid * self.settings.half_spread_bps / 10_000
        step = tick(mid, decimals)
        bid = round_price(mid - max(spread, step / 2), decimals, up=False)
        ask = round_price(mid + max(spread, step / 2), decimals, up=True)
        return bid, ask

    def set_mid(self, coin: str, mid: float) -> None:
        """Move the mid of ``coin`` and fill the resting orders the new touch reaches."""
        self.mids[coin] = mid
        self.record_price(coin, mid, now_ms())
        bid, ask = self.bbo(coin)
        depth = self.depths.get(coin, self.settings.depth)
        resting = [o for a in self.accounts.values() for o in a.open_orders() if o.coin == coin]
        for order in sorted(resting, key=lambda o: o.oid):
            reached = ask <= order.limit_px if order.is_buy else bid >= order.limit_px
            if reached:
                self._fill(order, order.limit_px, min(order.sz, depth), crossed=False)
                self._finish_if_done(order)

    def record_price(self, coin: str, mid: float, at_ms: int) -> None:
        """Add a mid at ``at_ms`` to the price path the candles are built from.

        A past time backfills history (the live mid does not move); the path keeps the
        last ``MAX_PRICES`` points per coin.
        """
        path = self.prices.setdefault(coin, [])
        bisect.insort(path, (at_ms, mid), key=lambda point: point[0])
        if len(path) > MAX_PRICES + MAX_PRICES // 10:  # trimmed in batches, not per mid
            del path[:-MAX_PRICES]

    # orders ----------------------------------------------------------------------------
    def place(self, user: str, wire_order: dict[str, Any]) -> dict[str, Any]:
        """Place one order of an ``order`` action; return its status as the venue does."""
        account = self.account(user)
        asset_id = int(wire_order["a"])
        asset = self.assets[asset_id]
        tif = wire_order["t"]["limit"]["tif"]
        order = Order(
            oid=self._next_oid(),
            user=account.address,
            coin=asset.name,
            asset=asset_id,
            is_buy=bool(wire_order["b"]),
            limit_px=float(wire_order["p"]),
            orig_sz=float(wire_order["s"]),
            sz=float(wire_order["s"]),
            reduce_only=bool(wire_order["r"]),
            tif=tif,
            timestamp=now_ms(),
            cloid=wire_order.get("c"),
        )
        try:
            self._check(account, asset, order, wire_order)
        except OrderRefused as refused:
            self._keep(account, order, refused.status)
            suffix = "" if refused.status == "rejected" else f" asset={asset_id}"
            return {"error": f"{refused}{suffix}"}
        self._keep(account, order, "open")
        _, ask = self.bbo(asset.name)
        bid = self.bbo(asset.name)[0]
        touch = ask if order.is_buy else bid
        crosses = order.limit_px >= ask if order.is_buy else order.limit_px <= bid
        if crosses:
            self._fill(order, touch, min(order.sz, self.settings.taker_depth), crossed=True)
        if order.sz > 0 and tif == "Ioc":
            if order.filled == 0:
                self._set_status(order, "iocCancelRejected")
                return {"error": f"{c.ERR_IOC_NO_MATCH} asset={asset_id}"}
            self._set_status(order, "canceled")
        self._finish_if_done(order)
        if order.status == "open":
            if not order.filled:
                self._emit(account.address, "orderUpdates", [order.update_row()])
            return {"resting": {"oid": order.oid}}
        avg = order.filled_px_sz / order.filled
        filled = {"totalSz": wire(order.filled), "avgPx": wire(avg), "oid": order.oid}
        return {"filled": filled}

    def _check(self, account: Account, asset: Asset, order: Order, raw: dict[str, Any]) -> None:
        if asset.is_delisted:
            raise OrderRefused(c.ERR_DELISTED, "rejected")
        if not valid_size(raw["s"], asset.sz_decimals):
            raise OrderRefused(c.ERR_INVALID_SIZE, "rejected")
        if not valid_price(raw["p"], asset.sz_decimals):
            raise OrderRefused(c.ERR_TICK, "tickRejected")
        mid = self.mids.get(asset.name)
        if mid is None:
            raise OrderRefused(c.ERR_INVALID_PRICE, "rejected")
        if abs(order.limit_px - mid) > 0.8 * mid:
            raise OrderRefused(c.ERR_PRICE_BAND, "rejected")
        held = account.position(asset.name).szi
        if order.reduce_only:
            if held == 0 or (held > 0) == order.is_buy:
                raise OrderRefused(c.ERR_REDUCE_ONLY, "reduceOnlyRejected")
            if order.sz > abs(held):
                order.sz = order.orig_sz = abs(held)
        full_close = order.reduce_only and math.isclose(order.sz, abs(held))
        if order.limit_px * order.sz < c.MIN_NOTIONAL_USD and not full_close:
            raise OrderRefused(c.ERR_MIN_VALUE, "minTradeNtlRejected")
        bid, ask = self.bbo(asset.name)
        crosses = order.limit_px >= ask if order.is_buy else order.limit_px <= bid
        if order.tif == "Alo" and crosses:
            message = c.ERR_POST_ONLY.format(bid=wire(bid), ask=wire(ask))
            raise OrderRefused(message, "badAloPxRejected")
        grows = not order.reduce_only and (held == 0 or (held > 0) == order.is_buy)
        if grows and order.limit_px * order.sz / self.leverage(account, asset)[1] > (
            self.available(account)
        ):
            raise OrderRefused(c.ERR_MARGIN, "perpMarginRejected")

    def cancel(self, user: str, *, oid: int | None = None, cloid: str | None = None) -> bool:
        """Cancel a resting order by oid or cloid; say whether one was cancelled."""
        account = self.account(user)
        if cloid is not None:
            oid = account.by_cloid.get(cloid)
        order = account.orders.get(oid) if oid is not None else None
        if order is None or order.status != "open":
            return False
        self._set_status(order, "canceled")
        self._emit(account.address, "orderUpdates", [order.update_row()])
        return True

    def cancel_all(self, user: str, status: str = "scheduledCancel") -> int:
        """Cancel every resting order of ``user`` (a ``scheduleCancel`` that came due)."""
        account = self.account(user)
        live = account.open_orders()
        for order in live:
            self._set_status(order, status)
            self._emit(account.address, "orderUpdates", [order.update_row()])
        return len(live)

    def find(self, user: str, oid: int | str) -> Order | None:
        """Return the order with this oid or cloid, or None."""
        account = self.account(user)
        if isinstance(oid, str):
            found = account.by_cloid.get(oid.lower())
            return account.orders.get(found) if found is not None else None
        return account.orders.get(oid)

    # leverage and margin ------------------------------------------------------------------
    def leverage(self, account: Account, asset: Asset) -> tuple[bool, int]:
        """Return the account's (is_cross, leverage) on ``asset``."""
        default = min(self.settings.default_leverage, asset.max_leverage)
        return account.leverage.get(asset.name, (not asset.only_isolated, default))

    def used_margin(self, account: Account) -> float:
        """Return the margin held by positions and resting orders."""
        used = 0.0
        for coin, pos in account.positions.items():
            if pos.szi:
                lev = self.leverage(account, self.asset(coin))[1]
                used += abs(pos.szi) * self.mids.get(coin, pos.entry_px) / lev
        for order in account.open_orders():
            if not order.reduce_only:
                used += (
                    order.limit_px * order.sz / self.leverage(account, self.asset(order.coin))[1]
                )
        return used

    def account_value(self, account: Account) -> float:
        """Return USDC plus unrealized PnL."""
        return account.usdc + sum(
            (self.mids.get(coin, p.entry_px) - p.entry_px) * p.szi
            for coin, p in account.positions.items()
        )

    def available(self, account: Account) -> float:
        """Return what new orders may still use as margin."""
        return self.account_value(account) - self.used_margin(account)

    # fills ------------------------------------------------------------------------------
    def _fill(self, order: Order, px: float, sz: float, *, crossed: bool) -> None:
        account = self.accounts[order.user]
        pos = account.position(order.coin)
        start = pos.szi
        if order.reduce_only:
            sz = min(sz, abs(start))
        decimals = self.asset(order.coin).sz_decimals
        sz = round(sz, decimals)
        if sz <= 0:
            return
        delta = sz if order.is_buy else -sz
        closing = min(sz, abs(start)) if start and (start > 0) != order.is_buy else 0.0
        closed_pnl = (px - pos.entry_px) * closing * (1 if start > 0 else -1) if closing else 0.0
        opening = sz - closing
        if opening:
            if abs(start) > closing:  # growing the same side
                pos.entry_px = (abs(start) * pos.entry_px + opening * px) / (abs(start) + opening)
            else:  # opened or flipped
                pos.entry_px = px
        pos.szi = round(start + delta, decimals)
        if pos.szi == 0:
            pos.entry_px = 0.0
        rate = self.settings.taker_fee if crossed else self.settings.maker_fee
        fee = round(px * sz * rate, 6)
        closed_pnl = round(closed_pnl, 6)
        account.usdc += closed_pnl - fee
        order.sz = round(order.sz - sz, decimals)
        order.filled_px_sz += px * sz
        self._tid += 1
        row = fill_row(
            order=order,
            px=px,
            sz=sz,
            start=start,
            closed_pnl=closed_pnl,
            fee=fee,
            crossed=crossed,
            time_ms=now_ms(),
            tid=self._tid,
            with_cloid=self.settings.cloid_on_fills,
        )
        account.fills.append(row)
        message = {"isSnapshot": False, "user": account.address, "fills": [row]}
        self._emit(account.address, "userFills", message)

    def _finish_if_done(self, order: Order) -> None:
        if order.status == "open" and order.sz <= 0:
            self._set_status(order, "filled")
        elif order.status == "open" and order.reduce_only and not self._held(order):
            self._set_status(order, "reduceOnlyCanceled")
        if order.status != "open" or order.filled:
            self._emit(order.user, "orderUpdates", [order.update_row()])

    def _held(self, order: Order) -> float:
        return self.accounts[order.user].position(order.coin).szi

    def _keep(self, account: Account, order: Order, status: str) -> None:
        account.orders[order.oid] = order
        if order.cloid is not None:
            account.by_cloid[order.cloid.lower()] = order.oid
        self._set_status(order, status)

    @staticmethod
    def _set_status(order: Order, status: str) -> None:
        order.status = status
        order.status_ts = now_ms()

    def _next_oid(self) -> int:
        self._oid += 1
        return self._oid
