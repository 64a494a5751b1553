"""JSON codec for the contract: one encoder, typed decoders built once."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from intentbus.schemas.candle import Candle
from intentbus.schemas.control import HaltSwitch, Heartbeat
from intentbus.schemas.drift import Drift
from intentbus.schemas.fill import Fill
from intentbus.schemas.intent import ExecutionIntent
from intentbus.schemas.operational import DeadLetter, Mark
from intentbus.schemas.plan import ExecutionPlan, Skip
from intentbus.schemas.position import (
    ListPositions,
    OpenPosition,
    Position,
    PositionQuery,
    PositionReply,
)
from intentbus.schemas.result import ExecutionResult, OrderUpdate

T = TypeVar("T")

MESSAGE_TYPES: dict[str, type[msgspec.Struct]] = {
    "ExecutionIntent": ExecutionIntent,
    "ExecutionPlan": ExecutionPlan,
    "Skip": Skip,
    "ExecutionResult": ExecutionResult,
    "OrderUpdate": OrderUpdate,
    "Fill": Fill,
    "Position": Position,
    "PositionQuery": PositionQuery,
    "OpenPosition": OpenPosition,
    "ListPositions": ListPositions,
    "PositionReply": PositionReply,
    "DeadLetter": DeadLetter,
    "Mark": Mark,
    "HaltSwitch": HaltSwitch,
    "Heartbeat": Heartbeat,
    "Candle": Candle,
    "Drift": Drift,
}

_encoder = msgspec.json.Encoder()
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}

ValidationError = msgspec.ValidationError
DecodeError = msgspec.DecodeError


def encode(message: msgspec.Struct) -> bytes:
    """Encode a message as JSON."""
    return _encoder.encode(message)


def decoder(message_type: type[T]) -> msgspec.json.Decoder[T]:
    """Return the cached typed decoder of a message type."""
    found = _decoders.get(message_type)
    if found is None:
        found = msgspec.json.Decoder(message_type)
        _decoders[message_type] = found
    return found


_results_stream: msgspec.json.Decoder[ExecutionResult | OrderUpdate] = msgspec.json.Decoder(
    ExecutionResult | OrderUpdate
)


def results_stream_decoder() -> msgspec.json.Decoder[ExecutionResult | OrderUpdate]:
    """Return the decoder of the ``RESULTS`` stream: final results and order updates."""
    return _results_stream


def decode(data: bytes | str, message_type: type[T]) -> T:
    """Decode and validate JSON into ``message_type``; raise ``msgspec.MsgspecError``."""
    return decoder(message_type).decode(data)


def validated(message: T) -> T:
    """Return ``message`` after checking every field constraint, as a decoder would."""
    return decode(_encoder.encode(message), type(message))


def encoded_valid(message: T) -> tuple[T, bytes]:
    """Return ``message`` checked as a decoder would, and the bytes that were checked."""
    data = _encoder.encode(message)
    return decode(data, type(message)), data
