"""Talk to a paper venue server over NATS request/reply (typed decoders built once)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from intentbus import telemetry
from intentbus.bus import Coalescer, Replies
from intentbus.executor.base import OrderNotFound, VenueFill, VenueOrder
from intentbus.schemas import ExecutionPlan
from intentbus.venues.paper.protocol import (
    BATCH_OPS,
    MAX_BATCH_CALLS,
    REPLY_TYPES,
    AccountsReply,
    AccountView,
    BatchCall,
    BatchReply,
    BatchRequest,
    ErrorReply,
    FillsReply,
    FillsRequest,
    ListRequest,
    MetaReply,
    MetaRequest,
    NetReply,
    NetRequest,
    OrderReply,
    OrderRequest,
    OrdersReply,
    PaperSubjects,
    PlaceRequest,
)

R = TypeVar("R")
log = logging.getLogger(__name__)
ORDERED_OPS = BATCH_OPS | {"fills"}  # the ops the venue answers in arrival order


class VenueUnavailable(ConnectionError):
    """Raise when no paper venue server answered (the request may or may not have acted)."""


class VenueError(RuntimeError):
    """Raise when the server refused or failed a request; ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class PaperVenueClient:
    """Send requests to one paper venue server."""

    def __init__(
        self,
        nc: Client,
        subjects: PaperSubjects,
        timeout_s: float,
        *,
        replies: Replies | None = None,
    ) -> None:
        self._nc = nc
        self._replies = replies
        self._subjects = subjects
        self._timeout_s = timeout_s
        self._encoder = msgspec.json.Encoder()
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {
            op: msgspec.json.Decoder(kind) for op, kind in REPLY_TYPES.items()
        }
        self._calls: Coalescer[tuple[str, msgspec.Struct], Any] = Coalescer(
            self._send_batch,
            max_batch=MAX_BATCH_CALLS,
            send_one=self._send_one,
            alone=lambda call: call[0] not in BATCH_OPS,  # fills: its pages are large
        )
        self._batching = True  # False once the server was found to answer no batch

    async def call(self, op: str, request: msgspec.Struct, expected: type[R]) -> R:
        """Send one request; return its reply or raise the error it carries.

        Order and net calls made in one loop turn go out as one ``batch`` (answered in
        one venue step, each as if sent alone), unless a trace is being recorded: each
        call then carries its own trace context. Every call the venue orders (orders,
        nets, fills) goes out in call order, so each sees the changes asked before it.
        """
        if op in ORDERED_OPS and self._batching and not telemetry.in_trace():
            reply = await self._calls.call((op, request))
        else:
            reply = await self._send(op, request)
        if isinstance(reply, ErrorReply):
            if reply.code == "not_found":
                raise OrderNotFound(reply.message)
            raise VenueError(reply.code, reply.message)
        if not isinstance(reply, expected):
            raise VenueError("internal", f"unexpected reply to {op}: {reply!r}")
        return reply

    async def _send(self, op: str, request: msgspec.Struct) -> Any:
        """Send one request; return its decoded reply (an ``ErrorReply`` included)."""
        subject = self._subjects.api(op)
        payload = self._encoder.encode(request)
        # the venue server joins the trace
        headers = (telemetry.inject({}) or None) if telemetry.in_trace() else None
        try:
            if self._replies is not None:
                msg = await self._replies.request(
                    subject, payload, timeout_s=self._timeout_s, headers=headers
                )
            else:
                msg = await self._nc.request(
                    subject, payload, timeout=self._timeout_s, headers=headers
                )
        except NoRespondersError:
            raise VenueUnavailable(
                f"no paper venue server answers on {subject} "
                "(start one with `intentbus paper-venue`, and check --namespace)"
            ) from None
        except (NatsTimeoutError, TimeoutError):
            raise VenueUnavailable(
                f"the paper venue did not answer {op} within {self._timeout_s:g}s"
            ) from None
        return self._decoders[op].decode(msg.data)

    async def _send_one(self, call: tuple[str, msgspec.Struct]) -> Any:
        return await self._send(*call)

    async def _send_batch(self, calls: list[tuple[str, msgspec.Struct]]) -> list[Any]:
        """Send several calls as one ``batch``; return each call's decoded reply."""
        batch = BatchRequest(
            calls=tuple(
                BatchCall(op=op, request=msgspec.Raw(self._encoder.encode(request)))
                for op, request in calls
            )
        )
        reply = await self._send("batch", batch)
        if isinstance(reply, ErrorReply) and reply.message == "unknown operation 'batch'":
            log.warning("the paper venue answers no batch: sending each call alone")
            self._batching = False  # a server older than this client
            return list(await asyncio.gather(*(self._send(op, r) for op, r in calls)))
        if isinstance(reply, ErrorReply):
            return [reply] * len(calls)
        if not isinstance(reply, BatchReply) or len(reply.replies) != len(calls):
            raise VenueError("internal", f"unexpected reply to a batch of {len(calls)}: {reply!r}")
        return [
            self._decoders[op].decode(raw)
            for (op, _), raw in zip(calls, reply.replies, strict=True)
        ]

    async def meta(self) -> MetaReply:
        """Return the venue's rules, accounts, prices and event sequence numbers."""
        return await self.call("meta", MetaRequest(), MetaReply)

    async def place(self, plan: ExecutionPlan) -> VenueOrder:
        """Place the plan's order (idempotent on its client order id)."""
        reply = await self.call("place", PlaceRequest(plan=plan), OrderReply)
        if reply.order is None:
            raise VenueError("internal", "place answered without an order")
        return reply.order

    async def order(self, op: str, account: str, symbol: str, cloid: str) -> VenueOrder | None:
        """Run ``cancel``, ``status`` or ``fence`` on one order."""
        request = OrderRequest(account=account, symbol=symbol, client_order_id=cloid)
        return (await self.call(op, request, OrderReply)).order

    async def fills_since(self, account: str, since: datetime) -> list[VenueFill]:
        """Return every fill of ``account`` at or after ``since``, oldest first."""
        fills: list[VenueFill] = []
        start: int | None = 0
        while start is not None:
            request = FillsRequest(account=account, since=since, start=start)
            page = await self.call("fills", request, FillsReply)
            fills.extend(page.fills)
            start = page.next_start
        return fills

    async def net(self, account: str, symbol: str) -> float:
        """Return the signed net position."""
        return (await self.call("net", NetRequest(account=account, symbol=symbol), NetReply)).net

    async def accounts(self, account: str | None = None) -> list[AccountView]:
        """Return every account (or one)."""
        return (await self.call("accounts", ListRequest(account=account), AccountsReply)).accounts

    async def orders(self, account: str | None = None, live_only: bool = False) -> list[VenueOrder]:
        """Return orders, oldest first."""
        request = ListRequest(account=account, live_only=live_only)
        return (await self.call("orders", request, OrdersReply)).orders
