"""Codec stage: encode+decode of one intent, project codec vs the spec's dataclass+json.

Project path: ``encode(intent)`` then ``decode(data, ExecutionIntent)`` (msgspec JSON,
typed and validated). Spec path: ``json.dumps(intent.to_dict()).encode()`` then
``ExecutionIntent.from_dict(json.loads(data))`` on :mod:`bench.spec_copy`. Both carry the
same field values; the project's message also carries its id, two timestamps and schema
tag, so it does more work, not less.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bench import spec_copy
from intentbus.schemas import ExecutionIntent, build_intent, decode, decoder, encode
from intentbus.schemas.legacy import to_spec_dict


@dataclass(frozen=True)
class CodecFigures:
    """Give ns per encode+decode round trip for both paths and their ratio."""

    project_ns: float
    spec_ns: float
    project_bytes: int
    spec_bytes: int
    project_encode_ns: float
    project_decode_ns: float
    spec_encode_ns: float
    spec_decode_ns: float

    @property
    def speedup(self) -> float:
        """Return how many times faster the project codec is."""
        return self.spec_ns / self.project_ns


def sample_intent() -> ExecutionIntent:
    """Return a realistic intent with every optional field set."""
    return build_intent(
        action="add",
        size_frac=0.25,
        position_id="pos-btc-0001",
        token_contract="BTC",
        token_chain="paper",
        book_id="alpha",
        urgency="high",
        priority=75,
        created_at=datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        max_slippage_bps=30,
        reason_codes=("buy_flag", "s2_dip", "high_a_score"),
        state="S2",
        prev_state="S1",
        a_final=0.72,
        e_final=0.18,
        max_leverage=3.0,
        risk_reason="vol_cap",
    )


def spec_intent(intent: ExecutionIntent) -> spec_copy.ExecutionIntent:
    """Return the spec dataclass holding the same values as ``intent``."""
    return spec_copy.ExecutionIntent.from_dict(to_spec_dict(intent))


def _time_per_call(func: Callable[[], object], loops: int, repeats: int) -> float:
    """Return the best mean ns per call over ``repeats`` runs of ``loops`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(loops):
            func()
        best = min(best, (time.perf_counter_ns() - start) / loops)
    return best


def run_codec(loops: int = 20_000, repeats: int = 7) -> CodecFigures:
    """Time both round trips and check they give back what went in."""
    intent = sample_intent()
    legacy = spec_intent(intent)

    def project_round_trip() -> ExecutionIntent:
        return decode(encode(intent), ExecutionIntent)

    def spec_round_trip() -> spec_copy.ExecutionIntent:
        return spec_copy.ExecutionIntent.from_dict(json.loads(json.dumps(legacy.to_dict())))

    if project_round_trip() != intent or spec_round_trip() != legacy:
        raise AssertionError("a codec round trip changed the message")
    for func in (project_round_trip, spec_round_trip):
        _time_per_call(func, loops // 10, 1)  # warm caches and the allocator
    project_data = encode(intent)
    spec_data = json.dumps(legacy.to_dict()).encode()
    project_decoder = decoder(ExecutionIntent)
    spec_cls = spec_copy.ExecutionIntent
    part = loops // 2
    return CodecFigures(
        project_ns=_time_per_call(project_round_trip, loops, repeats),
        spec_ns=_time_per_call(spec_round_trip, loops, repeats),
        project_bytes=len(project_data),
        spec_bytes=len(spec_data),
        project_encode_ns=_time_per_call(lambda: encode(intent), part, repeats),
        project_decode_ns=_time_per_call(
            lambda: project_decoder.decode(project_data), part, repeats
        ),
        spec_encode_ns=_time_per_call(lambda: json.dumps(legacy.to_dict()).encode(), part, repeats),
        spec_decode_ns=_time_per_call(
            lambda: spec_cls.from_dict(json.loads(spec_data)), part, repeats
        ),
    )
