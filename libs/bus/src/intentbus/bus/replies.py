"""Requests and JetStream publishes on one reply inbox, for the executor's hot path.

nats-py's ``request`` and ``JetStreamContext.publish`` pay, per call, a random token
(``secrets``), an ``asyncio.wait_for`` and a JSON + dataclass decode of the PubAck.
:class:`Replies` sends the same protocol messages with a counter as the token, one
timer per call and a msgspec-decoded PubAck. Errors are nats-py's, so callers handle
both paths alike: ``TimeoutError`` (nats-py's), ``NoRespondersError`` and
``NoStreamResponseError``, and ``APIError`` subclasses (``KeyWrongLastSequenceError``
for a KV create over an existing key).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError

_NO_RESPONDERS = "503"
_STATUS = "Status"


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int | None = None
    description: str | None = None


class _PubAckReply(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool | None = None
    domain: str | None = None
    error: _ApiError | None = None


_ack_decoder = msgspec.json.Decoder(_PubAckReply)


class Replies:
    """One wildcard inbox for many requests in flight; see the module docstring."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = ""
        self._tokens = itertools.count()
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._sub: Subscription | None = None
        self._starting: asyncio.Lock | None = None

    async def _start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._sub is None:
                prefix = f"{self._nc.new_inbox()}."
                self._sub = await self._nc.subscribe(f"{prefix}*", cb=self._on_reply)
                self._prefix = prefix

    async def _on_reply(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if future is not None and not future.done():
            future.set_result(msg)

    async def request(
        self,
        subject: str,
        payload: bytes,
        *,
        timeout_s: float,
        headers: dict[str, str] | None = None,
    ) -> Msg:
        """Send a request and return its reply; raise nats-py's errors on none."""
        if self._sub is None:
            await self._start()
        token = str(next(self._tokens))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._waiting[token] = future
        timer = loop.call_later(timeout_s, _time_out, future)
        try:
            await self._nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
            msg = await future
        finally:
            timer.cancel()
            self._waiting.pop(token, None)
        if msg.headers and msg.headers.get(_STATUS) == _NO_RESPONDERS and not msg.data:
            raise NoRespondersError
        return msg

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        timeout_s: float,
        headers: dict[str, str] | None = None,
    ) -> PubAck:
        """Publish to a stream and return its PubAck (as ``JetStreamContext.publish``)."""
        try:
            msg = await self.request(subject, payload, timeout_s=timeout_s, headers=headers)
        except NoRespondersError:
            raise NoStreamResponseError from None
        reply = _ack_decoder.decode(msg.data)
        if reply.error is not None:
            error: dict[str, Any] = msgspec.structs.asdict(reply.error)
            raise APIError.from_error(error)
        return PubAck(
            stream=reply.stream, seq=reply.seq, domain=reply.domain, duplicate=reply.duplicate
        )


def _time_out(future: asyncio.Future[Msg]) -> None:
    if not future.done():
        future.set_exception(NatsTimeoutError())
