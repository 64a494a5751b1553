"""Answer the paper venue's requests: decode, act, reply; errors come back structured.

A malformed request is a ``bad_request``, an unknown order ``not_found``, a halted
server or a failed write ``unavailable``; nothing a client sends can crash the server.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from nats.aio.msg import Msg

from intentbus.venues.paper.constants import PAGE_SIZE
from intentbus.venues.paper.protocol import (
    REQUEST_TYPES,
    AccountsReply,
    AccountView,
    ErrorReply,
    FillsReply,
    FillsRequest,
    ListRequest,
    MetaReply,
    NetReply,
    NetRequest,
    OrderReply,
    OrderRequest,
    OrdersReply,
    PlaceRequest,
    Reply,
)

if TYPE_CHECKING:
    from intentbus.venues.paper.server import PaperVenueServer

log = logging.getLogger(__name__)


class Unavailable(RuntimeError):
    """Raise when the server cannot act now (halted, stopping, or its store failed)."""


class ApiHandler:
    """Dispatch one server's requests by operation (the subject's last token)."""

    def __init__(self, server: PaperVenueServer) -> None:
        self._server = server
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {
            op: msgspec.json.Decoder(kind) for op, kind in REQUEST_TYPES.items()
        }
        self._encoder = msgspec.json.Encoder()

    async def handle(self, msg: Msg) -> None:
        """Answer one request (never raises)."""
        op = msg.subject.rsplit(".", 1)[-1]
        reply: Reply
        try:
            decoder = self._decoders.get(op)
            if decoder is None:
                reply = ErrorReply(code="bad_request", message=f"unknown operation {op!r}")
            else:
                reply = await self._dispatch(op, decoder.decode(msg.data or b"{}"))
        except (msgspec.MsgspecError, ValueError) as exc:
            reply = ErrorReply(code="bad_request", message=f"invalid {op} request: {exc}")
        except Unavailable as exc:
            reply = ErrorReply(code="unavailable", message=str(exc))
        except Exception as exc:
            log.exception("paper venue: %s request failed", op)
            reply = ErrorReply(code="internal", message=f"{op} failed: {exc!r}")
        if msg.reply:
            try:
                await msg.respond(self._encoder.encode(reply))
            except Exception as exc:
                log.warning("paper venue: could not answer a %s request: %r", op, exc)

    async def _dispatch(self, op: str, request: Any) -> Reply:
        server = self._server
        if op == "meta":
            return self._meta()
        if op == "place" and isinstance(request, PlaceRequest):
            plan = request.plan
            mark = server.marks.price(plan.symbol)
            order = await server.commit(lambda step: server.matcher.place(step, plan, mark))
            return OrderReply(order=order)
        if op == "fence" and isinstance(request, OrderRequest):
            key = (request.account, request.client_order_id)
            return OrderReply(order=await server.commit(lambda s: server.matcher.fence(s, key)))
        if op in ("cancel", "status") and isinstance(request, OrderRequest):
            key = (request.account, request.client_order_id)
            found = server.state.orders.get(key)
            if found is None or found.order.symbol != request.symbol:
                return ErrorReply(
                    code="not_found",
                    message=f"no order {request.client_order_id} for {request.symbol} "
                    f"on account {request.account}",
                )
            order = found.order
            if op == "cancel":
                cancelled = await server.commit(lambda s: server.matcher.cancel(s, key))
                order = cancelled or order
            return OrderReply(order=order)
        if op == "fills" and isinstance(request, FillsRequest):
            return self._fills(request.account, request.since, request.start, request.limit)
        if op == "net" and isinstance(request, NetRequest):
            account = server.state.accounts.get(request.account)
            return NetReply(net=account.net(request.symbol) if account is not None else 0.0)
        if op == "accounts" and isinstance(request, ListRequest):
            return self._accounts(request.account)
        if op == "orders" and isinstance(request, ListRequest):
            orders = sorted(server.state.orders.values(), key=lambda r: r.number)
            wanted = [
                r.order
                for r in orders
                if (request.account is None or r.order.account == request.account)
                and (not request.live_only or r.order.state.is_live)
            ]
            return OrdersReply(orders=wanted[-max(1, min(request.limit, PAGE_SIZE)) :])
        return ErrorReply(code="bad_request", message=f"unexpected {op} request")

    def _meta(self) -> MetaReply:
        server = self._server
        return MetaReply(
            name=server.name,
            rules=server.config.rules_info(),
            accounts=dict(server.config.accounts),
            prices=server.marks.prices(),
            follow_marks=server.config.follow_marks,
            event_seqs={a.account: a.event_seq for a in server.state.accounts.values()},
        )

    def _fills(self, account: str, since: datetime, start: int, limit: int) -> FillsReply:
        fills = self._server.state.fills.get(account, [])
        limit = max(1, min(limit, PAGE_SIZE))
        index = max(start, 0)
        # Fills are stored in time order: skip to the first one at or after ``since``.
        low, high = index, len(fills)
        while low < high:
            middle = (low + high) // 2
            if fills[middle].venue_time < since:
                low = middle + 1
            else:
                high = middle
        page = fills[low : low + limit]
        following = low + limit
        return FillsReply(fills=page, next_start=following if following < len(fills) else None)

    def _accounts(self, only: str | None) -> AccountsReply:
        state = self._server.state
        views = [
            AccountView(
                account=a.account,
                book_id=a.book_id,
                cash_usd=a.cash_usd,
                fees_usd=a.fees_usd,
                event_seq=a.event_seq,
                positions={
                    s: (p.size, p.entry_price, p.realized_pnl_usd) for s, p in a.positions.items()
                },
                live_orders=sum(
                    1 for live in state.live.values() for account, _ in live if account == a.account
                ),
            )
            for a in sorted(state.accounts.values(), key=lambda a: a.account)
            if only is None or a.account == only
        ]
        return AccountsReply(accounts=views)
