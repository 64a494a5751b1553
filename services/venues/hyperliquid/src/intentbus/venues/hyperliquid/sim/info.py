"""``/info`` of the local venue: the queries an executor (and the SDK) makes, in venue shapes."""

from __future__ import annotations

from typing import Any

from intentbus.venues.hyperliquid.grid import wire
from intentbus.venues.hyperliquid.sim.matching import Engine, now_ms

FILLS_PAGE = 2000
OUTSIDE_SIZE = 10.0  # the outside liquidity shown at the touch


class BadQuery(Exception):
    """A query the venue answers with HTTP 422."""


def answer(engine: Engine, query: dict[str, Any]) -> Any:
    """Answer one ``/info`` query."""
    kind = query.get("type")
    user = str(query.get("user", "")).lower()
    if kind == "meta":
        return meta(engine)
    if kind == "spotMeta":
        return {"universe": [], "tokens": []}
    if kind == "metaAndAssetCtxs":
        return [meta(engine), [asset_ctx(engine, a.name) for a in engine.assets]]
    if kind == "spotMetaAndAssetCtxs":
        return [{"universe": [], "tokens": []}, []]
    if kind == "allMids":
        return {coin: wire(mid) for coin, mid in engine.mids.items()}
    if kind == "l2Book":
        return l2_book(engine, query["coin"])
    if kind == "clearinghouseState":
        return clearinghouse_state(engine, user)
    if kind == "openOrders":
        return [o.basic() for o in engine.account(user).open_orders()]
    if kind == "frontendOpenOrders":
        return [o.frontend() for o in engine.account(user).open_orders()]
    if kind == "userFills":
        return list(reversed(engine.account(user).fills))[:FILLS_PAGE]
    if kind == "userFillsByTime":
        start = int(query["startTime"])
        end = int(query.get("endTime") or now_ms() + 1)
        rows = [f for f in engine.account(user).fills if start <= f["time"] <= end]
        return rows[:FILLS_PAGE]
    if kind == "orderStatus":
        order = engine.find(user, query["oid"])
        return {"status": "unknownOid"} if order is None else order.status_row()
    if kind == "candleSnapshot":
        return candles(engine, query["req"])
    raise BadQuery(f"unknown info type {kind!r}")


def meta(engine: Engine) -> dict[str, Any]:
    """Return ``meta``: the perp universe (asset id = index) and margin tables."""
    tables = sorted({a.max_leverage for a in engine.assets})
    return {
        "universe": [a.meta() for a in engine.assets],
        "marginTables": [
            [lev, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}]
            for lev in tables
        ],
    }


def asset_ctx(engine: Engine, coin: str) -> dict[str, Any]:
    """Return one asset context of ``metaAndAssetCtxs``."""
    mid = engine.mids.get(coin)
    px = wire(mid) if mid is not None else None
    return {
        "funding": "0.0000125",
        "openInterest": "0.0",
        "prevDayPx": px,
        "dayNtlVlm": "0.0",
        "premium": "0.0",
        "oraclePx": px,
        "markPx": px,
        "midPx": px,
        "impactPxs": [px, px] if px else None,
    }


def l2_book(engine: Engine, coin: str) -> dict[str, Any]:
    """Return the book: the outside quotes plus the resting orders of every account."""
    levels: list[list[dict[str, Any]]] = [[], []]
    if coin in engine.mids:
        bid, ask = engine.bbo(coin)
        sides: list[dict[float, list[float]]] = [{bid: [OUTSIDE_SIZE]}, {ask: [OUTSIDE_SIZE]}]
        for account in engine.accounts.values():
            for order in account.open_orders():
                if order.coin == coin:
                    side = sides[0 if order.is_buy else 1]
                    side.setdefault(order.limit_px, []).append(order.sz)
        for index, side in enumerate(sides):
            prices = sorted(side, reverse=index == 0)  # bids high to low, asks low to high
            levels[index] = [
                {"px": wire(px), "sz": wire(sum(side[px])), "n": len(side[px])} for px in prices
            ]
    return {"coin": coin, "time": now_ms(), "levels": levels}


def clearinghouse_state(engine: Engine, user: str) -> dict[str, Any]:
    """Return ``clearinghouseState`` of ``user``."""
    account = engine.account(user)
    rows = []
    total_ntl = 0.0
    for coin, pos in sorted(account.positions.items()):
        if not pos.szi:
            continue
        asset = engine.asset(coin)
        is_cross, lev = engine.leverage(account, asset)
        mark = engine.mids.get(coin, pos.entry_px)
        value = abs(pos.szi) * mark
        total_ntl += value
        upnl = (mark - pos.entry_px) * pos.szi
        margin = value / lev
        leverage: dict[str, Any] = {"type": "cross" if is_cross else "isolated", "value": lev}
        if not is_cross:
            leverage["rawUsd"] = wire(-pos.szi * pos.entry_px + margin)
        rows.append(
            {
                "type": "oneWay",
                "position": {
                    "coin": coin,
                    "szi": wire(pos.szi),
                    "leverage": leverage,
                    "entryPx": wire(pos.entry_px),
                    "positionValue": f"{value:.6f}",
                    "unrealizedPnl": f"{upnl:.6f}",
                    "returnOnEquity": f"{upnl / margin if margin else 0.0:.8f}",
                    "liquidationPx": None,
                    "marginUsed": f"{margin:.6f}",
                    "maxLeverage": asset.max_leverage,
                    "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
                },
            }
        )
    value = engine.account_value(account)
    used = engine.used_margin(account)
    summary = {
        "accountValue": f"{value:.6f}",
        "totalNtlPos": f"{total_ntl:.6f}",
        "totalRawUsd": f"{account.usdc:.6f}",
        "totalMarginUsed": f"{used:.6f}",
    }
    return {
        "marginSummary": summary,
        "crossMarginSummary": dict(summary),
        "crossMaintenanceMarginUsed": f"{used / 2:.6f}",
        "withdrawable": f"{max(value - used, 0.0):.6f}",
        "assetPositions": rows,
        "time": now_ms(),
    }


INTERVAL_MS = {
    name: int(name[:-1]) * unit
    for name, unit in (
        *((f"{n}m", 60_000) for n in (1, 3, 5, 15, 30)),
        *((f"{n}h", 3_600_000) for n in (1, 2, 4, 8, 12)),
        ("1d", 86_400_000),
        ("3d", 86_400_000),
        ("1w", 604_800_000),
    )
}


def candles(engine: Engine, req: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the candles of ``req["coin"]`` built from its recorded mids (the venue's shape).

    Buckets are aligned on the epoch; every bucket from the first recorded mid to the one
    holding now has a candle (a bucket without a mid is flat at the previous close), the
    last one still open. Candles overlapping ``[startTime, endTime]`` are returned, as the
    venue does (the first may open before ``startTime``).
    """
    coin = req["coin"]
    interval = req.get("interval", "1m")
    if interval not in INTERVAL_MS:
        raise BadQuery(f"unknown interval {interval!r}")
    size = INTERVAL_MS[interval]
    path = engine.prices.get(coin, [])
    if not path:
        return []
    start = int(req["startTime"])
    end = min(int(req.get("endTime") or now_ms()), now_ms())
    rows: list[dict[str, Any]] = []
    first_bucket = path[0][0] - path[0][0] % size
    bucket = max(first_bucket, start - start % size)
    index = 0
    close = path[0][1]
    while index < len(path) and path[index][0] < bucket:
        close = path[index][1]
        index += 1
    while bucket <= end:
        points = []
        while index < len(path) and path[index][0] < bucket + size:
            points.append(path[index][1])
            index += 1
        prices = points or [close]
        close = prices[-1]
        rows.append(
            {
                "T": bucket + size - 1,
                "c": wire(prices[-1]),
                "h": wire(max(prices)),
                "i": interval,
                "l": wire(min(prices)),
                "n": len(points),
                "o": wire(prices[0]),
                "s": coin,
                "t": bucket,
                "v": "0.0",
            }
        )
        bucket += size
    return rows
