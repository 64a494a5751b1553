"""Check how a run becomes ratios, verdicts, JSON and the README section (no timing)."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from pathlib import Path

import pytest

from bench.codec import CodecFigures
from bench.ledger_probe import LedgerProbe, ProbeError, intent_id_of, to_ns
from bench.raw_proc import hop_of, make_payload, parse_payload, stamp_hop
from bench.readme import BEGIN, END, render_section, replace_section
from bench.results import assemble, clean, realistic_p99, stage_dict, verdict_row
from bench.stats import TARGETS, LatencySummary, LoadFigures, MaxFigures, StageFigures
from bench.tracing import SpanCounter, TracingFigures, traced_env
from intentbus.ledger.sqlite_schema import SCHEMA

MACHINE = {
    "nproc": 2,
    "cpu_model": "Test CPU",
    "python": "3.11.7",
    "os": "Linux",
    "nats_server": "v2.15.1",
    "nats_py": "2.16.0",
    "msgspec": "0.22.0",
    "loadavg_at_start": [0.1, 0.1, 0.1],
}


def _latency(p50: float, p99: float, p999: float) -> LatencySummary:
    return LatencySummary(count=100, p50_ms=p50, p99_ms=p99, p999_ms=p999, max_ms=p999, mean_ms=p50)


def _stage(
    max_rate: float, p99_at_1000: float, fills: bool = False, cpu: float = 55.0
) -> StageFigures:
    fill_500 = _latency(0.5, 1.5, 2.5) if fills else None
    fill_1000 = _latency(0.75, 2.25, 3.5) if fills else None
    return StageFigures(
        loads=[
            LoadFigures(500.0, 100, 100, 500.0, _latency(1.0, 2.0, 4.0), fill_500),
            LoadFigures(1000.0, 100, 100, 1000.0, _latency(1.0, p99_at_1000, 8.0), fill_1000),
        ],
        max=MaxFigures(sent=100, completed=100, rate=max_rate, latency=_latency(9, 9, 9)),
        result_statuses={"success": 200},
        cpu_pct={"max": {"executor": cpu}},
        window_s={"max": 2.0},
    )


def _tracing(spans: int = 1_300) -> TracingFigures:
    on = _stage(max_rate=5_400.0, p99_at_1000=5.0, fills=True, cpu=110.0)
    on.loads[0] = LoadFigures(500.0, 100, 100, 500.0, _latency(1.5, 3.0, 6.0))
    return TracingFigures(
        on=on,
        spans_received=spans,
        export_requests=3,
        spans_by_service={"intentbus-executor": spans},
        spans_by_name={"X_INTENTS consume": 200, "publish fill": spans - 200},
        middleware_off_ns={"consume": 2_000.0, "publish": 1_000.0, "per_intent": 4_000.0},
        middleware_on_ns={"consume": 20_000.0, "publish": 20_000.0, "per_intent": 60_000.0},
    )


def _doc(
    footprint: dict[str, dict[str, float]] | None = None, tracing: TracingFigures | None = None
) -> dict[str, object]:
    codec = CodecFigures(
        project_ns=500.0,
        spec_ns=7_000.0,
        project_bytes=550,
        spec_bytes=430,
        project_encode_ns=200.0,
        project_decode_ns=300.0,
        spec_encode_ns=3_000.0,
        spec_decode_ns=4_000.0,
    )
    return assemble(
        machine=MACHINE,
        config={},
        raw=_stage(max_rate=10_000.0, p99_at_1000=1.0),
        pipe=_stage(max_rate=6_000.0, p99_at_1000=4.0, fills=True),
        codec=codec,
        footprint=footprint
        if footprint is not None
        else {
            "idle": {"ledger": 60.0, "executor": 70.0, "paper-venue": 50.0},
            "load_1000": {"ledger": 90.0, "paper-venue": 160.0},
        },
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=100.0,
        tracing=tracing,
    )


def _verdicts(doc: dict[str, object]) -> dict[str, tuple[object, str]]:
    rows = doc["verdicts"]
    assert isinstance(rows, list)
    return {row["label"]: (row["value"], row["verdict"]) for row in rows}


def test_ratios_and_verdicts_follow_the_targets() -> None:
    doc = _doc()
    verdicts = _verdicts(doc)
    assert verdicts["pipeline max throughput / raw"] == (0.6, "met")
    assert verdicts["pipeline p99 / raw p99 at 1,000/s"] == (4.0, "missed")
    assert verdicts["codec speed-up vs spec dataclass+json"] == (14.0, "met")
    assert verdicts["peak RSS ledger, idle"] == (60.0, "met")
    assert verdicts["peak RSS ledger, 1,000/s"] == (90.0, "met")
    assert verdicts["peak RSS executor, 1,000/s"] == (None, "n/a")
    assert verdicts["peak RSS paper-venue, idle"] == (50.0, "met")
    assert verdicts["peak RSS paper-venue, 1,000/s"] == (160.0, "missed")


def test_latency_ratios_are_pipeline_over_raw_per_load() -> None:
    ratios = _doc()["ratios"]
    assert isinstance(ratios, dict)
    assert ratios["latency"]["1000"] == {"p50_ms": 1.0, "p99_ms": 4.0, "p999_ms": 1.0}
    assert ratios["latency"]["500"]["p99_ms"] == 1.0


def test_a_service_over_budget_is_missed() -> None:
    doc = _doc({"idle": {"ledger": 151.0, "executor": 10.0}, "load_1000": {}})
    assert _verdicts(doc)["peak RSS ledger, idle"] == (151.0, "missed")


def test_missing_stage_gives_na_and_strict_json() -> None:
    doc = assemble(
        machine=MACHINE,
        config={},
        raw=_stage(10_000.0, 1.0),
        pipe=None,
        codec=None,
        footprint={},
        started_at="x",
        duration_s=1.0,
    )
    assert _verdicts(doc)["pipeline max throughput / raw"] == (None, "n/a")
    json.loads(json.dumps(doc, allow_nan=False))  # no NaN left in the document


def test_readme_section_replaces_only_the_marked_text() -> None:
    text = f"# intentbus\n\nintro\n\n{BEGIN}\nold figures\n{END}\n\n## After\nkept\n"
    section = render_section(_doc(), "Notes here.")
    updated = replace_section(text, section)
    assert updated.startswith("# intentbus\n\nintro\n\n" + BEGIN)
    assert updated.endswith(END + "\n\n## After\nkept\n")
    assert "old figures" not in updated
    assert "Notes here." in updated
    assert "| p99 at 1,000/s (ms) | 1.00 | 4.00 | 4.00x | <= 3x | **missed** |" in updated
    assert "| fill -> ledger p50 at 500/s (ms) | - | 0.50 |  |  |  |" in updated
    assert "| fill -> ledger p99 at 1,000/s (ms) | - | 2.25 |  |  |  |" in updated
    assert "| peak RSS paper-venue, 1,000/s | 160.0 MB | < 150 MB | **missed** |" in updated
    assert replace_section(updated, section) == updated


def test_the_max_row_names_its_median_and_each_run_is_shown() -> None:
    doc = _doc()
    assert "| max throughput (msg/s) | 10,000 | 6,000 |" in render_section(doc, "")
    for name, rates in (
        ("raw", (9_000.0, 10_000.0, 12_000.0)),
        ("pipeline", (6_000.0, 5_500.0, 7_000.0)),
    ):
        stage = doc[name]
        assert isinstance(stage, dict)
        stage["max"]["runs"] = list(rates)
    section = render_section(doc, "")
    assert "| max throughput (msg/s) (median of 3 runs) | 10,000 | 6,000 | 0.60x |" in section
    assert (
        "| max throughput, each run (msg/s) | 9,000 / 10,000 / 12,000 | 6,000 / 5,500 / 7,000 |"
        in section
    )


def test_readme_section_is_appended_when_markers_are_absent() -> None:
    updated = replace_section("# intentbus\n", f"{BEGIN}\nx\n{END}")
    assert updated == f"# intentbus\n\n{BEGIN}\nx\n{END}\n"


def test_probe_reads_every_time_format_as_epoch_ns() -> None:
    ns = 1_767_225_600_123_456_000  # 2026-01-01T00:00:00.123456Z
    assert to_ns("2026-01-01T00:00:00.123456+00:00") == ns
    assert to_ns("2026-01-01T00:00:00.123456Z") == ns
    assert abs(to_ns(ns / 1e9) - ns) < 1_000
    assert to_ns(ns // 1_000) == ns
    assert to_ns(ns) == ns
    assert intent_id_of("res-abc") == "abc"
    assert intent_id_of("abc") == "abc"


def test_raw_payload_carries_run_sequence_and_send_time() -> None:
    payload = make_payload("r500", 7, 3000, 400)
    assert len(payload) == 400
    run, seq, count, sent = parse_payload(payload)
    assert (run, seq, count) == ("r500", 7, 3000)
    assert sent > 0
    assert not math.isnan(sent)


def test_the_raw_service_stamps_its_receipt_after_the_payload() -> None:
    payload = make_payload("r500", 7, 3000, 400)
    stamped = stamp_hop(payload, 1_767_225_600_123_456_789)
    assert hop_of(stamped) == 1_767_225_600_123_456_789
    assert parse_payload(stamped) == parse_payload(payload)


def test_tick_to_trade_is_set_against_the_raw_one_hop_at_each_load() -> None:
    raw = _stage(max_rate=10_000.0, p99_at_1000=1.0)
    pipe = _stage(max_rate=6_000.0, p99_at_1000=4.0, fills=True)
    raw.loads[0] = dataclasses.replace(raw.loads[0], first_hop=_latency(0.4, 1.0, 2.0))
    pipe.loads[0] = dataclasses.replace(pipe.loads[0], first_hop=_latency(1.0, 3.0, 5.0))
    doc = assemble(
        machine=MACHINE,
        config={},
        raw=raw,
        pipe=pipe,
        codec=None,
        footprint={},
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=1.0,
    )
    trade = doc["tick_to_trade_ms"]
    assert isinstance(trade, dict)
    assert set(trade) == {"500"}  # the 1,000/s load measured none
    assert trade["500"]["pipeline"]["p50_ms"] == 1.0
    assert trade["500"]["raw_one_hop"]["p50_ms"] == 0.4
    assert trade["500"]["p50_ratio"] == 2.5
    assert trade["500"]["p99_ratio"] == 3.0
    verdict = _verdicts(doc)["tick to trade p50 / raw one-hop p50 at 500/s"]
    assert verdict == (2.5, "missed")
    section = render_section(doc, "")
    assert "| tick to trade (raw: one hop) p50 at 500/s (ms) | 0.40 | 1.00 | 2.50x | <= 2x |" in (
        section
    )


def test_without_first_hops_tick_to_trade_has_no_verdict() -> None:
    assert _verdicts(_doc())["tick to trade p50 / raw one-hop p50 at 500/s"] == (None, "n/a")


def test_fill_to_ledger_latency_is_in_the_json_per_load() -> None:
    doc = _doc()
    fill = doc["fill_to_ledger_ms"]
    assert isinstance(fill, dict)
    assert fill["500"]["p50_ms"] == 0.5
    assert fill["1000"]["p99_ms"] == 2.25
    pipeline = doc["pipeline"]
    assert isinstance(pipeline, dict)
    assert pipeline["loads"][1]["fill_latency"]["p99_ms"] == 2.25
    assert pipeline["result_statuses"] == {"success": 200}
    assert pipeline["cpu_pct"] == {"max": {"executor": 55.0}}
    assert pipeline["window_s"] == {"max": 2.0}
    raw = doc["raw"]
    assert isinstance(raw, dict)
    assert raw["loads"][0]["fill_latency"] is None


def _ledger_db(path: Path) -> None:
    """Write a ledger database of the ledger's own schema: one filled intent, one skipped."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    fill_json = json.dumps(
        {
            "fill_id": "f-1",
            "created_at": "2026-01-01T00:00:00.001000Z",
            "venue_time": "2026-01-01T00:00:00.000500Z",
        }
    )
    db.execute(
        "INSERT INTO applied_fills (fill_id, fills_seq, position_id, intent_id, side, size, "
        "price, fee_usd, realized_pnl_usd, size_after, direction_after, applied_at, notes, "
        "fill_json) VALUES ('f-1', 1, 'p', 'i-1', 'buy', '1', '100', '0', '0', '1', 'long', "
        "'2026-01-01T00:00:00.004000+00:00', '[]', ?)",
        (fill_json,),
    )
    for seq, (intent, status) in enumerate((("i-1", "success"), ("i-2", "skipped")), 1):
        db.execute(
            "INSERT INTO results (result_id, results_seq, position_id, intent_id, action, "
            "status, last_fill_seq, fill_count, filled_size, fees_usd, mismatch, closes, "
            "applied_at, notes, result_json) VALUES (?, ?, 'p', ?, 'add', ?, 1, 1, '1', '0', "
            "0, 0, ?, '[]', '{}')",
            (f"res-{intent}", seq, intent, status, f"2026-01-01T00:00:0{seq}+00:00"),
        )
    db.commit()
    db.close()


def test_probe_reads_the_ledger_schema(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    probe = LedgerProbe(path)
    with pytest.raises(ProbeError, match="does not exist"):
        probe.count()
    _ledger_db(path)
    second = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
    assert probe.count() == 2
    assert probe.committed() == {"i-1": second + 1_000_000_000, "i-2": second + 2_000_000_000}
    assert probe.statuses() == {"success": 1, "skipped": 1}
    assert probe.fills() == [("i-1", second + 1_000_000, second + 4_000_000)]
    assert probe.trades() == {"i-1": second + 500_000}  # the venue's time of its first fill
    probe.close()


def test_probe_names_the_tables_it_misses(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE results (result_id TEXT, applied_at TEXT)")
    db.commit()
    db.close()
    probe = LedgerProbe(path)
    with pytest.raises(ProbeError, match="no fills table"):
        probe.count()


def test_tracing_figures_set_on_against_off_and_the_off_path_against_cpu() -> None:
    doc = _doc(tracing=_tracing())
    tracing = doc["tracing"]
    assert isinstance(tracing, dict)
    assert tracing["max_ratio"] == pytest.approx(0.9)  # 5,400 / 6,000
    assert tracing["on_cost_pct"] == pytest.approx(10.0)
    assert tracing["latency_500"]["p50_ratio"] == pytest.approx(1.5)
    assert tracing["latency_500"]["p99_ratio"] == pytest.approx(1.5)
    # executor, off: 55% of a core for 2 s over 100 intents = 11 ms per intent
    assert tracing["executor_cpu_ms_per_intent"]["off"] == pytest.approx(11.0)
    assert tracing["executor_cpu_ms_per_intent"]["on"] == pytest.approx(22.0)
    assert tracing["off_pct"] == pytest.approx(100 * 4_000e-9 / 0.011)
    assert tracing["intents_on"] == 200
    assert tracing["intent_consume_spans"] == 200
    verdicts = _verdicts(doc)
    assert verdicts["tracing on: max throughput cost (1 - on/off)"][1] == "met"
    assert verdicts["telemetry off: middleware / executor CPU per intent"][1] == "met"
    json.loads(json.dumps(doc, allow_nan=False))


def test_tracing_without_spans_has_no_cost_verdict() -> None:
    doc = _doc(tracing=_tracing(spans=0))
    assert _verdicts(doc)["tracing on: max throughput cost (1 - on/off)"] == (None, "n/a")
    section = render_section(doc, "")
    assert (
        "| spans received (0.0 per intent; intents with an INTENTS consume span: 200 of 200)"
        in section
    )
    assert "| > 0 | **missed** |" in section


def test_tracing_stage_absent_adds_nothing() -> None:
    doc = _doc()
    assert doc["tracing"] is None
    labels = _verdicts(doc)
    assert not any(label.startswith(("tracing", "telemetry")) for label in labels)
    assert "Telemetry off" not in render_section(doc, "")


def test_readme_section_has_the_tracing_table() -> None:
    section = render_section(_doc(tracing=_tracing()), "")
    assert "| max throughput (msg/s) | 6,000 | 5,400 | 0.90x |  |  |" in section
    assert "| tracing on: throughput cost, 1 - on/off |  | 10.0% |  | < 15% | met |" in section
    assert "| p99 at 500/s (ms) | 2.00 | 3.00 | 1.50x |  |  |" in section
    assert "| executor CPU per intent, max throughput (ms) | 11.000 | 22.000 | 2.00x |" in section
    assert "per intent, 4,000 ns (consume 2,000 + 2 x publish 1,000)" in section
    assert "| 0.036% |  |  | < 2% | met |" in section
    assert "not exported) | 4,000 | 60,000 | 15.00x |  |  |" in section
    assert "Spans received by service (tracing on): intentbus-executor 1,300." in section


def test_traced_env_turns_tracing_on_and_metrics_off() -> None:
    env = traced_env("http://127.0.0.1:4318")
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert env["OTEL_METRICS_EXPORTER"] == "none"


def test_span_counter_counts_exported_spans_by_service_and_name() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attr = resource_spans.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "intentbus-ledger"
    scope = resource_spans.scope_spans.add()
    for name in ("RESULTS consume", "RESULTS consume", "ledger answer get"):
        span = scope.spans.add()
        span.name = name
    counter = SpanCounter()
    try:
        counter._take(request.SerializeToString())
        assert counter.total == 3
        assert counter.requests == 1
        assert counter.by_service == {"intentbus-ledger": 3}
        assert counter.by_name == {"RESULTS consume": 2, "ledger answer get": 1}
    finally:
        counter._server.server_close()


def test_readme_section_shows_per_intent_figures_and_the_realistic_stage() -> None:
    doc = _doc()
    pipeline = doc["pipeline"]
    assert isinstance(pipeline, dict)
    # executor: 55% of a core for 2 s over 100 intents = 11 ms each
    assert pipeline["cpu_ms_per_intent"] == {"executor": pytest.approx(11.0)}
    pipeline["msgs_per_intent"] = {
        "max": {"executor": {"sent": 7.5, "received": 9.25}},
        "load_500": {"executor": {"sent": 8.0, "received": 10.0}},
    }
    realistic = _stage(max_rate=900.0, p99_at_1000=3.0, fills=True)
    realistic.loads = [LoadFigures(200.0, 100, 100, 120.0, _latency(40.0, 230.0, 850.0))]
    doc["realistic"] = stage_dict(realistic)
    section = render_section(doc, "")
    assert "| executor | 11.000 | 7.50 | 9.25 | 8.00 |" in section
    assert "| achieved at 200/s | 120/s (not sustained: 120/s) |" in section
    assert "| p99 at 200/s, ms | 230.00 |" in section
    assert "| max throughput, msg/s | 900.00 |" in section
    assert "| final results | success 200 |" in section


def test_the_realistic_p99_target_misses_a_load_that_was_not_sustained() -> None:
    stage = _stage(max_rate=900.0, p99_at_1000=3.0)
    stage.loads = [LoadFigures(200.0, 100, 100, 200.0, _latency(4.0, 14.0, 16.0))]
    assert realistic_p99(stage) == 14.0
    assert TARGETS["realistic_p99_200"].verdict(realistic_p99(stage)) == "met"
    stage.loads = [LoadFigures(200.0, 100, 100, 200.0, _latency(4.0, 25.0, 30.0))]
    assert TARGETS["realistic_p99_200"].verdict(realistic_p99(stage)) == "missed"
    stage.loads = [LoadFigures(200.0, 100, 100, 120.0, _latency(4.0, 14.0, 16.0))]
    assert TARGETS["realistic_p99_200"].verdict(realistic_p99(stage)) == "missed"
    assert clean(verdict_row(TARGETS["realistic_p99_200"], realistic_p99(stage)))["value"] is None
    assert TARGETS["realistic_p99_200"].verdict(realistic_p99(None)) == "n/a"
