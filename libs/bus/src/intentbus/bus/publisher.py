"""Publish contract messages to JetStream with ``Nats-Msg-Id`` deduplication."""

from __future__ import annotations

import asyncio

import msgspec
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError

from intentbus.bus.subjects import Topology
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionResult,
    Fill,
    Mark,
    OrderUpdate,
    encode,
    validated,
)

MSG_ID = "Nats-Msg-Id"


class PublishFailed(RuntimeError):
    """Raise when the stream did not acknowledge a message after every retry."""


async def publish_with_id(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    msg_id: str,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
    attempts: int = 5,
) -> PubAck:
    """Publish and wait for the stream's ack, retrying with the same ``Nats-Msg-Id``.

    Retrying with the same id is safe: a copy the stream already stored is answered
    with ``duplicate=True`` and not stored again.
    """
    all_headers = {MSG_ID: msg_id, **(headers or {})}
    last_error: Exception | None = None
    for attempt in range(attempts):
        try:
            return await js.publish(subject, payload, timeout=timeout_s, headers=all_headers)
        except (NatsTimeoutError, NoStreamResponseError) as exc:
            last_error = exc
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
    raise PublishFailed(f"no ack for {subject} id={msg_id} after {attempts} attempts") from (
        last_error
    )


class Publisher:
    """Validate, then publish, intents, order updates, results, fills and marks.

    Every message is validated as a decoder would before it is published: a message the
    contract refuses is an error here, at its producer, never a dead letter downstream.
    """

    def __init__(self, js: JetStreamContext, topology: Topology) -> None:
        self._js = js
        self._topology = topology

    async def intent(
        self, intent: ExecutionIntent, headers: dict[str, str] | None = None
    ) -> PubAck:
        """Validate and publish an intent; its ``intent_id`` is the ``Nats-Msg-Id``."""
        checked = validated(intent)
        subject = self._topology.intents_subject(
            checked.token_chain, checked.book_id, checked.position_id
        )
        return await publish_with_id(
            self._js, subject, encode(checked), checked.intent_id, headers=headers
        )

    async def result(
        self, result: ExecutionResult, headers: dict[str, str] | None = None
    ) -> PubAck:
        """Validate and publish a final result; its ``result_id`` is the ``Nats-Msg-Id``."""
        checked = validated(result)
        subject = self._topology.results_subject(checked.venue, checked.book_id)
        return await publish_with_id(
            self._js, subject, encode(checked), checked.result_id, headers=headers
        )

    async def order_update(
        self, update: OrderUpdate, headers: dict[str, str] | None = None
    ) -> PubAck:
        """Validate and publish an order update on the results subject (``update_id``)."""
        checked = validated(update)
        subject = self._topology.results_subject(checked.venue, checked.book_id)
        return await publish_with_id(
            self._js, subject, encode(checked), checked.update_id, headers=headers
        )

    async def fill(self, fill: Fill, headers: dict[str, str] | None = None) -> PubAck:
        """Validate and publish a venue fill; its ``fill_id`` is the ``Nats-Msg-Id``."""
        checked = validated(fill)
        subject = self._topology.fills_subject(checked.venue, checked.book_id)
        return await publish_with_id(
            self._js, subject, encode(checked), checked.fill_id, headers=headers
        )

    async def mark(self, mark: Mark) -> PubAck:
        """Validate and publish a mark price (the stream keeps the latest per symbol)."""
        mark = validated(mark)
        subject = self._topology.marks_subject(mark.venue, mark.symbol)
        msg_id = f"{mark.venue}-{mark.symbol}-{mark.at.timestamp():.6f}"
        return await publish_with_id(self._js, subject, encode(mark), msg_id)

    async def raw(self, subject: str, payload: bytes, msg_id: str) -> PubAck:
        """Publish bytes as they are (operators' hand-written JSON, replays)."""
        return await publish_with_id(self._js, subject, payload, msg_id)


def encode_struct(message: msgspec.Struct) -> bytes:
    """Encode any contract message (re-exported for callers of the bus only)."""
    return encode(message)
