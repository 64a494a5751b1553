"""Answer the paper venue's requests: decode, act, reply; errors come back structured.

A malformed request is a ``bad_request``, an unknown order ``not_found``, a halted
server or a failed write ``unavailable``; nothing a client sends can crash the server.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from nats.aio.msg import Msg
from opentelemetry.trace import SpanKind

from intentbus import telemetry
from intentbus.executor.base import VenueFill
from intentbus.venues.paper.committer import Unavailable
from intentbus.venues.paper.constants import PAGE_SIZE
from intentbus.venues.paper.protocol import (
    BATCH_OPS,
    REQUEST_TYPES,
    AccountsReply,
    AccountView,
    BatchReply,
    BatchRequest,
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
from intentbus.venues.paper.step import Step

if TYPE_CHECKING:
    from intentbus.venues.paper.server import PaperVenueServer

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 512


class ApiHandler:
    """Dispatch one server's requests by operation (the subject's last token).

    Requests are answered concurrently (at most ``MAX_IN_FLIGHT``), but every order,
    fill and net request is queued to the committer in arrival order: a read sees every
    change that arrived before it, as if requests were handled one by one.
    """

    def __init__(self, server: PaperVenueServer) -> None:
        self._server = server
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {
            op: msgspec.json.Decoder(kind) for op, kind in REQUEST_TYPES.items()
        }
        self._encoder = msgspec.json.Encoder()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, msg: Msg) -> None:
        """Take one request (the subscription's callback): answered by its own task."""
        await self._slots.acquire()
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def drain(self) -> None:
        """Wait for the requests being answered."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _answer(self, msg: Msg) -> None:
        """Answer one request (never raises), in a server span joined to the caller's trace."""
        op = msg.subject.rsplit(".", 1)[-1]
        with telemetry.tracer().start_as_current_span(
            f"paper-venue {op}",
            context=telemetry.extract(msg.headers),
            kind=SpanKind.SERVER,
            attributes={"intentbus.venue": self._server.name, "rpc.method": op},
        ) as span:
            reply = await self._reply(op, msg)
            if isinstance(reply, ErrorReply) and span.is_recording():
                span.set_attribute("intentbus.venue.error_code", reply.code)
                if reply.code != "not_found":  # asking about an unknown order is no error
                    telemetry.set_outcome(span, error=f"{reply.code}: {reply.message}")
            if msg.reply:
                try:
                    await msg.respond(self._encoder.encode(reply))
                except Exception as exc:
                    log.warning("paper venue: could not answer a %s request: %r", op, exc)

    async def _reply(self, op: str, msg: Msg) -> Reply:
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
        return reply

    async def _dispatch(self, op: str, request: Any) -> Reply:
        if op == "meta":
            return self._meta()
        if op == "accounts" and isinstance(request, ListRequest):
            return self._accounts(request.account)
        if op == "orders" and isinstance(request, ListRequest):
            return self._orders(request)
        if op == "batch" and isinstance(request, BatchRequest):
            return await self._batch(request)
        return await self._server.commit(lambda step: self._build(op, request, step), group=True)

    async def _batch(self, batch: BatchRequest) -> BatchReply:
        """Answer every call of a batch in one step, in order; a bad call spoils no other."""
        calls: list[tuple[str, Any] | ErrorReply] = []
        for call in batch.calls:
            if call.op not in BATCH_OPS:
                calls.append(ErrorReply(code="bad_request", message=f"{call.op!r} in a batch"))
                continue
            try:
                calls.append((call.op, self._decoders[call.op].decode(call.request)))
            except (msgspec.MsgspecError, ValueError) as exc:
                message = f"invalid {call.op} request: {exc}"
                calls.append(ErrorReply(code="bad_request", message=message))

        def build(step: Step) -> list[Reply]:
            replies: list[Reply] = []
            for call in calls:
                if isinstance(call, ErrorReply):
                    replies.append(call)
                    continue
                saved = step.checkpoint()
                try:
                    replies.append(self._build(*call, step))
                except Exception as exc:  # a bug in one call: the others go on
                    step.rollback(saved)
                    log.exception("paper venue: a batched %s failed", call[0])
                    replies.append(
                        ErrorReply(code="internal", message=f"{call[0]} failed: {exc!r}")
                    )
            return replies

        replies = await self._server.commit(build, group=True)
        return BatchReply(replies=tuple(msgspec.Raw(self._encoder.encode(r)) for r in replies))

    def _build(self, op: str, request: Any, step: Step) -> Reply:
        """Act on (or read through) ``step``: the state with the earlier requests' changes."""
        matcher = self._server.matcher
        if op == "place" and isinstance(request, PlaceRequest):
            plan = request.plan
            mark = self._server.marks.price(plan.symbol)
            return OrderReply(order=matcher.place(step, plan, mark))
        if op in ("cancel", "status", "fence") and isinstance(request, OrderRequest):
            key = (request.account, request.client_order_id)
            if op == "fence":
                return OrderReply(order=matcher.fence(step, key))
            found = step.order(key)
            if found is None or found.order.symbol != request.symbol:
                return ErrorReply(
                    code="not_found",
                    message=f"no order {request.client_order_id} for {request.symbol} "
                    f"on account {request.account}",
                )
            order = matcher.cancel(step, key) if op == "cancel" else found.order
            return OrderReply(order=order or found.order)
        if op == "fills" and isinstance(request, FillsRequest):
            fills = step.state.fills.get(request.account, [])
            pending = [f for f in step.fills if f.account == request.account]
            return _page(fills + pending if pending else fills, request.since, *request.page)
        if op == "net" and isinstance(request, NetRequest):
            net = step.account(request.account, request.account).net(request.symbol)
            return NetReply(net=net)
        return ErrorReply(code="bad_request", message=f"unexpected {op} request")

    def _orders(self, request: ListRequest) -> OrdersReply:
        orders = sorted(self._server.state.orders.values(), key=lambda r: r.number)
        wanted = [
            r.order
            for r in orders
            if (request.account is None or r.order.account == request.account)
            and (not request.live_only or r.order.state.is_live)
        ]
        return OrdersReply(orders=wanted[-max(1, min(request.limit, PAGE_SIZE)) :])

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


def _page(fills: list[VenueFill], since: datetime, start: int, limit: int) -> FillsReply:
    """Return the fills at or after ``since`` from index ``start`` (fills are in time order)."""
    limit = max(1, min(limit, PAGE_SIZE))
    low, high = max(start, 0), len(fills)
    while low < high:
        middle = (low + high) // 2
        if fills[middle].venue_time < since:
            low = middle + 1
        else:
            high = middle
    following = low + limit
    more = following < len(fills)
    return FillsReply(fills=fills[low:following], next_start=following if more else None)
