"""Assemble one run's figures into the JSON document, with ratios and target verdicts."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from bench.codec import CodecFigures
from bench.stats import TARGETS, StageFigures, Target, ratio
from bench.tracing import TracingFigures

SERVICES = ("paper-venue", "ledger", "executor")
FOOTPRINT_WINDOWS = (("idle", "idle"), ("load_1000", "1,000/s"))


def clean(value: Any) -> Any:
    """Turn NaN and infinities into None (strict JSON) throughout a nested structure."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean(item) for item in value]
    return value


def stage_dict(stage: StageFigures | None) -> dict[str, Any] | None:
    """Return a stage's figures as plain data."""
    if stage is None:
        return None
    return {
        "loads": [dataclasses.asdict(load) for load in stage.loads],
        "max": dataclasses.asdict(stage.max) if stage.max else None,
        "error": stage.error,
        "result_statuses": dict(stage.result_statuses),
        "cpu_pct": {window: dict(procs) for window, procs in stage.cpu_pct.items()},
        "window_s": dict(stage.window_s),
        "msgs_per_intent": stage.msgs_per_intent,
        "cpu_ms_per_intent": {
            name: stage.cpu_s_per_intent(name) * 1e3 for name in stage.cpu_pct.get("max", {})
        },
    }


def _pct_cost(on: float | None, off: float | None) -> float:
    """Return 100 * (1 - on/off): the share of throughput lost (NaN when either is missing)."""
    share = ratio(on, off)
    return math.nan if math.isnan(share) else 100.0 * (1.0 - share)


def tracing_dict(
    tracing: TracingFigures | None, pipe: StageFigures | None
) -> dict[str, Any] | None:
    """Return the tracing stage's figures, set against the pipeline stage's (telemetry off)."""
    if tracing is None:
        return None
    on = tracing.on
    on_max = on.max.rate if on and on.max else None
    off_max = pipe.max.rate if pipe and pipe.max else None
    on_500, off_500 = (on.at(500.0) if on else None), (pipe.at(500.0) if pipe else None)
    cpu_off = pipe.cpu_s_per_intent("executor") if pipe else math.nan
    cpu_on = on.cpu_s_per_intent("executor") if on else math.nan
    per_intent_ns = tracing.middleware_off_ns.get("per_intent")
    off_pct = ratio(None if per_intent_ns is None else per_intent_ns / 1e9, cpu_off)
    # every intent of the traced run (warm-ups included) ends in one final result
    intents = sum(on.result_statuses.values()) if on else 0
    intent_spans = sum(
        count for name, count in tracing.spans_by_name.items() if name.endswith("INTENTS consume")
    )
    return {
        "spans_received": tracing.spans_received,
        "export_requests": tracing.export_requests,
        "spans_by_service": dict(tracing.spans_by_service),
        "spans_by_name": dict(tracing.spans_by_name),
        "intents_on": intents,
        "intent_consume_spans": intent_spans,
        "middleware_off_ns": dict(tracing.middleware_off_ns),
        "middleware_on_ns": dict(tracing.middleware_on_ns),
        "executor_cpu_ms_per_intent": {
            "off": cpu_off * 1e3,
            "on": cpu_on * 1e3,
        },
        "off_pct": 100.0 * off_pct,
        "max_rate": {"off": off_max, "on": on_max},
        "max_ratio": ratio(on_max, off_max),
        "on_cost_pct": _pct_cost(on_max, off_max),
        "latency_500": {
            "off": None if off_500 is None else dataclasses.asdict(off_500.latency),
            "on": None if on_500 is None else dataclasses.asdict(on_500.latency),
            "sustained": {
                "off": None if off_500 is None else off_500.sustained,
                "on": None if on_500 is None else on_500.sustained,
            },
            "p50_ratio": ratio(
                on_500.latency.p50_ms if on_500 else None,
                off_500.latency.p50_ms if off_500 else None,
            ),
            "p99_ratio": ratio(
                on_500.latency.p99_ms if on_500 else None,
                off_500.latency.p99_ms if off_500 else None,
            ),
        },
        "on_run": stage_dict(on),
        "error": tracing.error,
    }


def fill_to_ledger(pipe: StageFigures | None) -> dict[str, Any]:
    """Return the fill created -> ledger committed latency (ms) at each load, by rate."""
    out: dict[str, Any] = {}
    for load in pipe.loads if pipe else []:
        if load.fill_latency is not None:
            out[f"{load.offered_rate:g}"] = dataclasses.asdict(load.fill_latency)
    return out


def tick_to_trade(raw: StageFigures | None, pipe: StageFigures | None) -> dict[str, Any]:
    """Return, by rate, tick to trade (ms), the raw one-hop latency and their p50/p99 ratios."""
    out: dict[str, Any] = {}
    for load in pipe.loads if pipe else []:
        base = raw.at(load.offered_rate) if raw else None
        hop = base.first_hop if base else None
        trade = load.first_hop
        if trade is None:
            continue
        out[f"{load.offered_rate:g}"] = {
            "pipeline": dataclasses.asdict(trade),
            "raw_one_hop": dataclasses.asdict(hop) if hop else None,
            "p50_ratio": ratio(trade.p50_ms, hop.p50_ms if hop else None),
            "p99_ratio": ratio(trade.p99_ms, hop.p99_ms if hop else None),
        }
    return out


def latency_ratios(raw: StageFigures | None, pipe: StageFigures | None) -> dict[str, Any]:
    """Return pipeline / raw for p50, p99 and p99.9 at each load both stages ran."""
    out: dict[str, Any] = {}
    if raw is None or pipe is None:
        return out
    for load in pipe.loads:
        base = raw.at(load.offered_rate)
        if base is None:
            continue
        out[f"{load.offered_rate:g}"] = {
            name: ratio(getattr(load.latency, name), getattr(base.latency, name))
            for name in ("p50_ms", "p99_ms", "p999_ms")
        }
    return out


def verdict_row(target: Target, value: float | None, label: str | None = None) -> dict[str, Any]:
    """Return one target's value, its statement and the verdict."""
    return {
        "key": target.key,
        "label": label or target.label,
        "value": value,
        "target": target.describe(),
        "verdict": target.verdict(value),
    }


def realistic_p99(stage: StageFigures | None, rate: float = 200.0) -> float:
    """Return the realistic stage's p99 at ``rate``, or infinity when it was not sustained.

    A load the pipeline cannot keep up with is a queue, not a latency: it misses.
    NaN (no verdict) when the stage did not run that load.
    """
    load = stage.at(rate) if stage else None
    if load is None:
        return math.nan
    return load.latency.p99_ms if load.sustained else math.inf


def assemble(
    *,
    machine: dict[str, Any],
    config: dict[str, Any],
    raw: StageFigures | None,
    pipe: StageFigures | None,
    codec: CodecFigures | None,
    footprint: dict[str, dict[str, float]],
    started_at: str,
    duration_s: float,
    tracing: TracingFigures | None = None,
) -> dict[str, Any]:
    """Return the whole run as a JSON-ready document."""
    raw_max = raw.max.rate if raw and raw.max else None
    pipe_max = pipe.max.rate if pipe and pipe.max else None
    raw_1000 = raw.at(1_000.0) if raw else None
    pipe_1000 = pipe.at(1_000.0) if pipe else None
    ratios: dict[str, Any] = {
        "pipeline_max_ratio": ratio(pipe_max, raw_max),
        "pipeline_p99_ratio_1000": ratio(
            pipe_1000.latency.p99_ms if pipe_1000 else None,
            raw_1000.latency.p99_ms if raw_1000 else None,
        ),
        "codec_ratio": codec.speedup if codec else math.nan,
        "latency": latency_ratios(raw, pipe),
    }
    trades = tick_to_trade(raw, pipe)
    ratios["tick_to_trade_p50_ratio_500"] = trades.get("500", {}).get("p50_ratio", math.nan)
    verdicts = [
        verdict_row(TARGETS[key], ratios[key])
        for key in (
            "pipeline_max_ratio",
            "pipeline_p99_ratio_1000",
            "tick_to_trade_p50_ratio_500",
            "codec_ratio",
        )
    ]
    for service in SERVICES:
        for window, label in FOOTPRINT_WINDOWS:
            value = footprint.get(window, {}).get(service)
            verdicts.append(
                verdict_row(TARGETS["service_rss_mb"], value, f"peak RSS {service}, {label}")
            )
    traced = tracing_dict(tracing, pipe)
    if traced is not None:
        verdicts.append(verdict_row(TARGETS["tracing_off_pct"], traced["off_pct"]))
        # tracing that delivered no span is not a cost figure
        on_cost = traced["on_cost_pct"] if tracing and tracing.spans_received else math.nan
        verdicts.append(verdict_row(TARGETS["tracing_on_cost_pct"], on_cost))
    document: dict[str, Any] = clean(
        {
            "schema": 1,
            "started_at": started_at,
            "duration_s": duration_s,
            "machine": machine,
            "config": config,
            "raw": stage_dict(raw),
            "pipeline": stage_dict(pipe),
            "codec": None if codec is None else {
                **dataclasses.asdict(codec), "speedup": codec.speedup
            },
            "fill_to_ledger_ms": fill_to_ledger(pipe),
            "tick_to_trade_ms": trades,
            "tracing": traced,
            "footprint_mb": footprint,
            "ratios": ratios,
            "verdicts": verdicts,
        }
    )  # fmt: skip
    return document
