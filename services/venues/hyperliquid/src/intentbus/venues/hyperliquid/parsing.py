"""Parse the venue's answers (``/info``, ``/exchange``, ``/ws``) into executor types.

Every parser accepts the recorded real responses in ``/work/shared/fixtures/hyperliquid``
(see ``tests/unit/hyperliquid/test_parsing.py``); numbers arrive as strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from intentbus.executor.base import VenueFill, VenueOrder
from intentbus.schemas import Liquidity, OrderState, OrderType, Side, TimeInForce
from intentbus.venues.hyperliquid import constants as c

_TIF = {"Gtc": TimeInForce.GTC, "Ioc": TimeInForce.IOC, "Alo": TimeInForce.POST_ONLY}


@dataclass(frozen=True)
class AssetInfo:
    """One perp listing: its asset id (index in ``meta``) and trading rules."""

    name: str
    asset: int
    sz_decimals: int
    max_leverage: int
    only_isolated: bool = False
    delisted: bool = False


def parse_meta(meta: dict[str, Any]) -> dict[str, AssetInfo]:
    """Return the perp universe by name from ``meta``."""
    found = {}
    for index, row in enumerate(meta["universe"]):
        margin_mode = row.get("marginMode")
        found[row["name"]] = AssetInfo(
            name=row["name"],
            asset=index,
            sz_decimals=int(row["szDecimals"]),
            max_leverage=int(row["maxLeverage"]),
            only_isolated=bool(row.get("onlyIsolated"))
            or margin_mode in ("strictIsolated", "noCross"),
            delisted=bool(row.get("isDelisted")),
        )
    return found


def parse_mids(mids: dict[str, Any]) -> dict[str, float]:
    """Return ``allMids`` (or the WebSocket's ``{"mids": ...}``) as floats."""
    inner = mids.get("mids", mids)
    return {coin: float(px) for coin, px in inner.items() if isinstance(px, str)}


def parse_positions(state: dict[str, Any]) -> dict[str, float]:
    """Return the signed size per coin from ``clearinghouseState``."""
    return {
        row["position"]["coin"]: float(row["position"]["szi"]) for row in state["assetPositions"]
    }


def parse_leverage(state: dict[str, Any]) -> dict[str, tuple[bool, int]]:
    """Return (is_cross, leverage) per coin with a position from ``clearinghouseState``."""
    found = {}
    for row in state["assetPositions"]:
        lev = row["position"]["leverage"]
        found[row["position"]["coin"]] = (lev["type"] == "cross", int(lev["value"]))
    return found


def parse_open_orders(rows: list[dict[str, Any]]) -> list[tuple[str, int, Side, float, float]]:
    """Return (coin, oid, side, limit price, open size) of ``openOrders`` rows."""
    return [
        (r["coin"], int(r["oid"]), _side(r["side"]), float(r["limitPx"]), float(r["sz"]))
        for r in rows
    ]


def parse_l2(book: dict[str, Any]) -> tuple[float | None, float | None]:
    """Return the best bid and ask of an ``l2Book`` answer."""
    bids, asks = book["levels"]
    return (float(bids[0]["px"]) if bids else None, float(asks[0]["px"]) if asks else None)


def parse_candles(rows: list[dict[str, Any]]) -> list[tuple[datetime, float]]:
    """Return (open time, close) of ``candleSnapshot`` rows."""
    return [(_time(int(r["t"])), float(r["c"])) for r in rows]


def state_of(status: str, filled: float) -> OrderState:
    """Map a venue order status to an order state."""
    if status in c.OPEN_STATUSES:
        return OrderState.PARTIALLY_FILLED if filled > 0 else OrderState.WORKING
    if status in c.FILLED_STATUSES:
        return OrderState.FILLED
    if status in c.CANCELLED_REJECTIONS or "cancel" in status.lower():
        return OrderState.CANCELLED
    if "rejected" in status.lower():
        return OrderState.REJECTED
    return OrderState.UNKNOWN


def parse_order(
    row: dict[str, Any], status: str, status_ms: int | None, account: str
) -> VenueOrder:
    """Return a venue order from an order row (``orderStatus`` or ``orderUpdates``)."""
    orig = float(row.get("origSz", row["sz"]))
    filled = max(orig - float(row["sz"]), 0.0)
    state = state_of(status, filled)
    return VenueOrder(
        client_order_id=row.get("cloid") or f"oid:{row['oid']}",
        account=account,
        symbol=row["coin"],
        side=_side(row["side"]),
        order_type=OrderType.LIMIT,
        time_in_force=_TIF.get(row.get("tif") or "Gtc", TimeInForce.GTC),
        size=orig,
        state=state,
        price=float(row["limitPx"]),
        reduce_only=bool(row.get("reduceOnly", False)),
        filled_size=filled,
        venue_order_id=str(row["oid"]),
        reason="" if state.is_live or state is OrderState.FILLED else status,
        updated_at=_time(status_ms or int(row["timestamp"])),
    )


def parse_order_status(answer: dict[str, Any], account: str) -> VenueOrder | None:
    """Return the order of an ``orderStatus`` answer, or None for ``unknownOid``."""
    if answer.get("status") != "order":
        return None
    found = answer["order"]
    return parse_order(found["order"], found["status"], found.get("statusTimestamp"), account)


def parse_fill(row: dict[str, Any], account: str) -> VenueFill:
    """Return one ``userFills`` row as a venue fill (its ``tid`` is the fill id)."""
    return VenueFill(
        venue_fill_id=str(row["tid"]),
        client_order_id=row.get("cloid") or f"oid:{row['oid']}",
        account=account,
        symbol=row["coin"],
        side=_side(row["side"]),
        size=float(row["sz"]),
        price=float(row["px"]),
        fee=float(row["fee"]),
        fee_currency=row.get("feeToken", "USDC"),
        liquidity=Liquidity.TAKER if row.get("crossed") else Liquidity.MAKER,
        venue_time=_time(int(row["time"])),
        venue_order_id=str(row["oid"]),
        closed_pnl=float(row["closedPnl"]) if "closedPnl" in row else None,
    )


def exchange_error(answer: Any) -> str | None:
    """Return the whole-action error of an ``/exchange`` answer, or None if it is ``ok``."""
    if isinstance(answer, dict) and answer.get("status") == "ok":
        return None
    if isinstance(answer, dict) and "response" in answer:
        return str(answer["response"])
    return f"unexpected answer: {answer!r}"


def order_statuses(answer: dict[str, Any]) -> list[Any]:
    """Return the per-order statuses of an ``order`` or ``cancel`` answer."""
    return list(answer["response"]["data"]["statuses"])


def _side(side: str) -> Side:
    return Side.BUY if side == "B" else Side.SELL


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_ms(when: datetime) -> int:
    """Return a datetime as venue milliseconds."""
    return int(when.timestamp() * 1000)
