"""Publish contract messages to JetStream with ``Nats-Msg-Id`` deduplication."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError
from opentelemetry import trace
from opentelemetry.trace import Span

from intentbus.bus import observe, refusals
from intentbus.bus.replies import Replies
from intentbus.bus.subjects import Topology
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionResult,
    Fill,
    Mark,
    OrderUpdate,
    encode,
    encoded_valid,
    validated,
)
from intentbus.schemas.candle import Candle
from intentbus.schemas.drift import Drift

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
    retry_for_s: float = 30.0,
    kind: str = "message",
    intent_id: str | None = None,
    on_span: Callable[[Span], None] | None = None,
    replies: Replies | None = None,
) -> PubAck:
    """Publish and wait for the stream's ack, retrying with the same ``Nats-Msg-Id``.

    Retrying with the same id is safe: a copy the stream already stored is answered
    with ``duplicate=True`` and not stored again. Retries go on for ``retry_for_s``: a
    cluster electing a stream leader after a node died answers nothing for seconds. The
    message carries the trace context of its ``publish <kind>`` span (and ``intent_id``)
    in its headers. ``replies``, when given, carries the publish (the executor's lighter
    path).
    """
    last_error: Exception | None = None
    loop = asyncio.get_running_loop()
    give_up = loop.time() + retry_for_s
    attempt = 0
    with observe.publishing(kind, subject, msg_id, intent_id, on_span) as traced:
        all_headers = {MSG_ID: msg_id, **traced, **(headers or {})}
        while attempt == 0 or loop.time() < give_up:
            attempt += 1
            try:
                if replies is not None:
                    return await replies.publish(
                        subject, payload, timeout_s=timeout_s, headers=all_headers
                    )
                return await js.publish(subject, payload, timeout=timeout_s, headers=all_headers)
            except (NatsTimeoutError, NoStreamResponseError) as exc:
                refused = refusals.of_subject(subject)
                if refused is not None:
                    raise refusals.PermissionDenied(refused) from None
                last_error = exc
                await asyncio.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
    raise PublishFailed(
        f"no ack for {subject} id={msg_id} after {attempt} attempts in {retry_for_s:g}s"
    ) from last_error


class Publisher:
    """Validate, then publish, intents, order updates, results, fills and marks.

    Every message is validated as a decoder would before it is published: a message the
    contract refuses is an error here, at its producer, never a dead letter downstream.
    """

    def __init__(
        self, js: JetStreamContext, topology: Topology, *, replies: Replies | None = None
    ) -> None:
        self._js = js
        self._topology = topology
        self._replies = replies

    async def intent(
        self, intent: ExecutionIntent, headers: dict[str, str] | None = None
    ) -> PubAck:
        """Validate and publish an intent; its ``intent_id`` is the ``Nats-Msg-Id``."""
        checked, payload = encoded_valid(intent)
        subject = self._topology.intents_subject(
            checked.token_chain, checked.book_id, checked.position_id
        )
        return await publish_with_id(
            self._js,
            subject,
            payload,
            checked.intent_id,
            headers=headers,
            kind="intent",
            intent_id=checked.intent_id,
        )

    async def result(
        self, result: ExecutionResult, headers: dict[str, str] | None = None
    ) -> PubAck:
        """Validate and publish a final result; its ``result_id`` is the ``Nats-Msg-Id``.

        The current trace id goes into ``metadata["trace_id"]``; a skip or an error marks
        the current span.
        """
        checked, payload = encoded_valid(observe.with_trace_id(result))
        observe.mark_result(trace.get_current_span(), checked)
        subject = self._topology.results_subject(checked.venue, checked.book_id)
        ack = await publish_with_id(
            self._js,
            subject,
            payload,
            checked.result_id,
            headers=headers,
            kind="result",
            replies=self._replies,
            intent_id=checked.intent_id,
            on_span=lambda span: observe.mark_result(span, checked),
        )
        observe.count_result(checked)
        return ack

    async def order_update(
        self, update: OrderUpdate, headers: dict[str, str] | None = None
    ) -> PubAck:
        """Validate and publish an order update on the results subject (``update_id``)."""
        checked, payload = encoded_valid(update)
        subject = self._topology.results_subject(checked.venue, checked.book_id)
        return await publish_with_id(
            self._js,
            subject,
            payload,
            checked.update_id,
            headers=headers,
            kind="order_update",
            replies=self._replies,
            intent_id=checked.intent_id,
        )

    async def fill(self, fill: Fill, headers: dict[str, str] | None = None) -> PubAck:
        """Validate and publish a venue fill; its ``fill_id`` is the ``Nats-Msg-Id``.

        The current trace id goes into ``metadata["trace_id"]``.
        """
        checked, payload = encoded_valid(observe.with_trace_id(fill))
        subject = self._topology.fills_subject(checked.venue, checked.book_id)
        ack = await publish_with_id(
            self._js,
            subject,
            payload,
            checked.fill_id,
            headers=headers,
            kind="fill",
            replies=self._replies,
            intent_id=checked.intent_id,
        )
        observe.fill_published(checked)
        return ack

    async def mark(self, mark: Mark) -> PubAck:
        """Validate and publish a mark price (the stream keeps the latest per symbol)."""
        mark = validated(mark)
        subject = self._topology.marks_subject(mark.venue, mark.symbol)
        msg_id = f"{mark.venue}-{mark.symbol}-{mark.at.timestamp():.6f}"
        return await publish_with_id(self._js, subject, encode(mark), msg_id, kind="mark")

    async def candle(self, candle: Candle) -> PubAck:
        """Validate and publish a closed candle; its ``candle_id`` is the ``Nats-Msg-Id``."""
        checked = validated(candle)
        subject = self._topology.candles_subject(checked.venue, checked.symbol, checked.timeframe)
        return await publish_with_id(self._js, subject, encode(checked), checked.candle_id)

    async def drift(self, drift: Drift) -> PubAck:
        """Validate and publish a reconciliation drift; its ``drift_id`` is the ``Nats-Msg-Id``."""
        checked = validated(drift)
        subject = self._topology.drift_subject(checked.venue, checked.book_id, checked.symbol)
        return await publish_with_id(
            self._js, subject, encode(checked), checked.drift_id, kind="drift"
        )

    async def raw(self, subject: str, payload: bytes, msg_id: str) -> PubAck:
        """Publish bytes as they are (operators' hand-written JSON, replays)."""
        return await publish_with_id(self._js, subject, payload, msg_id)


def encode_struct(message: msgspec.Struct) -> bytes:
    """Encode any contract message (re-exported for callers of the bus only)."""
    return encode(message)
