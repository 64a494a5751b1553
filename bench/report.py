"""Show a run as Rich tables and write it as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stats import SUSTAINED_FRACTION, TARGETS

LATENCY_FIELDS = (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"))
FILL_FIELDS = (("p50_ms", "p50"), ("p99_ms", "p99"))
FILL_LABEL = "fill -> ledger"  # a fill's created_at (executor) -> the ledger's commit of it
# publish -> the venue's order (pipeline); publish -> the service's receipt (raw)
TRADE_LABEL = "tick to trade (raw: one hop)"
VERDICT_STYLE = {"met": "[green]met[/]", "missed": "[bold red]missed[/]", "n/a": "[yellow]n/a[/]"}


def num(value: float | None, digits: int = 2, suffix: str = "") -> str:
    """Format a figure; a missing one is a dash."""
    if value is None:
        return "-"
    if abs(value) >= 1_000:
        return f"{value:,.0f}{suffix}"
    if 0 < abs(value) < 0.1:
        return f"{value:.3f}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def max_runs(stage: dict[str, Any]) -> str:
    """Return a stage's max-throughput runs, each rate in the order run ("-": none)."""
    runs = (stage.get("max") or {}).get("runs") or []
    return " / ".join(num(rate) for rate in runs) or "-"


def max_label(*stages: dict[str, Any], unit: str = ", msg/s") -> str:
    """Name the max-throughput row: how many runs its median is of, when more than one."""
    count = max(len((stage.get("max") or {}).get("runs") or []) for stage in stages)
    return f"max throughput{unit}" + (f" (median of {count} runs)" if count > 1 else "")


def overload_note(load: dict[str, Any] | None) -> str:
    """Say how a load fell short of its offered rate, or return an empty string."""
    if not load:
        return ""
    if load["completed"] < load["sent"]:
        return f"only {load['completed']:,} of {load['sent']:,} done"
    achieved = load["achieved_rate"]
    if achieved is None or achieved < SUSTAINED_FRACTION * load["offered_rate"]:
        return f"not sustained: {num(achieved, 0)}/s"
    return ""


def fill_latency(load: dict[str, Any] | None, field: str) -> float | None:
    """Return one figure of a load's fill -> ledger latency, if the load has one."""
    summary = (load or {}).get("fill_latency") or {}
    value = summary.get(field)
    return None if value is None else float(value)


TradeRow = tuple[str, str, str, str, str, str]


def tick_to_trade_rows(doc: dict[str, Any], rate: float) -> list[TradeRow]:
    """Return tick to trade against the raw one hop at ``rate``: name, raw, pipeline, ratio,
    target and verdict (the verdict a key of :data:`VERDICT_STYLE`, or empty)."""
    figures = (doc.get("tick_to_trade_ms") or {}).get(f"{rate:g}")
    if not figures:
        return []
    row = next((r for r in doc["verdicts"] if r["key"] == "tick_to_trade_p50_ratio_500"), None)
    hop = figures.get("raw_one_hop") or {}
    rows: list[TradeRow] = []
    for field, name in FILL_FIELDS:
        judged = row is not None and rate == 500.0 and field == "p50_ms"
        rows.append(
            (
                f"{TRADE_LABEL} {name}",
                num(hop.get(field)),
                num(figures["pipeline"][field]),
                num(figures.get(f"{name}_ratio"), suffix="x"),
                str(row["target"]) if judged and row else "",
                str(row["verdict"]) if judged and row else "",
            )
        )
    return rows


def _verdicts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["label"]: row for row in doc["verdicts"]}


def bus_table(doc: dict[str, Any]) -> Table:
    """Return raw baseline vs pipeline: max throughput and latency at each load."""
    table = Table(
        title="Bus: raw nats-py chain vs intentbus pipeline (publish -> end; "
        f"{FILL_LABEL}: a fill's created_at -> the ledger's commit of it)"
    )
    for header in ("Figure", "Raw", "Pipeline", "Ratio", "Target", "Verdict"):
        table.add_column(header, justify="left" if header == "Figure" else "right")
    raw, pipe = doc.get("raw") or {}, doc.get("pipeline") or {}
    verdicts = _verdicts(doc)
    max_row = verdicts[TARGETS["pipeline_max_ratio"].label]
    table.add_row(
        max_label(raw, pipe),
        num((raw.get("max") or {}).get("rate")),
        num((pipe.get("max") or {}).get("rate")),
        num(doc["ratios"]["pipeline_max_ratio"], suffix="x"),
        max_row["target"],
        VERDICT_STYLE[max_row["verdict"]],
    )
    table.add_row("max throughput, each run", max_runs(raw), max_runs(pipe), "", "", "")
    p99_row = verdicts[TARGETS["pipeline_p99_ratio_1000"].label]
    pipe_loads = {load["offered_rate"]: load for load in pipe.get("loads", [])}
    for base in raw.get("loads", []):
        rate = base["offered_rate"]
        load = pipe_loads.get(rate)
        ratios = doc["ratios"]["latency"].get(f"{rate:g}", {})
        why = overload_note(load)
        note = f" [red]({why})[/]" if why else ""
        for field, name in LATENCY_FIELDS:
            target = verdict = ""
            if rate == 1_000.0 and field == "p99_ms":
                target, verdict = p99_row["target"], VERDICT_STYLE[p99_row["verdict"]]
            table.add_row(
                f"{name} @ {rate:,.0f}/s, ms{note if field == 'p50_ms' else ''}",
                num(base["latency"][field]),
                num(load["latency"][field]) if load else "-",
                num(ratios.get(field), suffix="x"),
                target,
                verdict,
            )
        if load and load.get("fill_latency"):
            for field, name in FILL_FIELDS:
                value = num(fill_latency(load, field))
                table.add_row(f"{FILL_LABEL} {name} @ {rate:,.0f}/s, ms", "-", value, "", "", "")
        for name, hop, trade, times, target, verdict in tick_to_trade_rows(doc, rate):
            style = VERDICT_STYLE[verdict] if verdict else ""
            table.add_row(f"{name} @ {rate:,.0f}/s, ms", hop, trade, times, target, style)
        table.add_section()
    return table


def codec_table(doc: dict[str, Any]) -> Table:
    """Return the codec comparison."""
    table = Table(title="Codec: one ExecutionIntent, encode + decode")
    for header in ("Figure", "Spec dataclass + json", "intentbus codec", "Speed-up", "Target",
                   "Verdict"):  # fmt: skip
        table.add_column(header, justify="left" if header == "Figure" else "right")
    codec = doc.get("codec")
    if not codec:
        table.add_row("codec stage did not run", "", "", "", "", "")
        return table
    row = _verdicts(doc)[TARGETS["codec_ratio"].label]
    for label, key in (("encode (ns)", "encode_ns"), ("decode (ns)", "decode_ns")):
        spec, ours = codec[f"spec_{key}"], codec[f"project_{key}"]
        table.add_row(label, num(spec, 0), num(ours, 0), num(spec / ours, suffix="x"), "", "")
    table.add_row(
        "round trip (ns/msg)",
        num(codec["spec_ns"], 0),
        num(codec["project_ns"], 0),
        num(codec["speedup"], suffix="x"),
        row["target"],
        VERDICT_STYLE[row["verdict"]],
    )
    table.add_row("message size (bytes)", str(codec["spec_bytes"]), str(codec["project_bytes"]),
                  "", "", "")  # fmt: skip
    return table


def footprint_table(doc: dict[str, Any]) -> Table:
    """Return the peak RSS of each service at idle and under 1,000 intents/s."""
    table = Table(title="Footprint: peak RSS (MB); CPU used (% of one core)")
    headers = ("Process", "Idle", "1,000 intents/s", "Target", "Verdict", "CPU 1,000/s", "CPU max")
    for header in headers:
        table.add_column(header, justify="left" if header == "Process" else "right")
    footprint = doc.get("footprint_mb") or {}
    verdicts = _verdicts(doc)
    idle, load = footprint.get("idle", {}), footprint.get("load_1000", {})
    cpu = (doc.get("pipeline") or {}).get("cpu_pct") or {}
    cpu_load, cpu_max = cpu.get("load_1000", {}), cpu.get("max", {})
    others = ("bench", "nats-server")
    for name in sorted(set(idle) | set(load), key=lambda n: (n in others, n)):
        rows = [verdicts.get(f"peak RSS {name}, {w}") for w in ("idle", "1,000/s")]
        found = [r for r in rows if r]
        verdict = "missed" if any(r["verdict"] == "missed" for r in found) else (
            "met" if found and all(r["verdict"] == "met" for r in found) else "n/a"
        )  # fmt: skip
        table.add_row(
            name + ("" if found else " (not a service)"),
            num(idle.get(name), 1),
            num(load.get(name), 1),
            found[0]["target"] if found else "",
            VERDICT_STYLE[verdict] if found else "",
            num(cpu_load.get(name), 0, "%"),
            num(cpu_max.get(name), 0, "%"),
        )
    return table


def realistic_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the realistic stage's figures as (figure, value) rows (none if it did not run)."""
    stage = doc.get("realistic")
    if not stage:
        return []
    rows: list[tuple[str, str]] = []
    for load in stage.get("loads", []):
        rate = f"{load['offered_rate']:,.0f}/s"
        why = overload_note(load)
        rows.append(
            (
                f"achieved at {rate}",
                num(load["achieved_rate"], 0, "/s") + (f" ({why})" if why else ""),
            )
        )
        for field, name in LATENCY_FIELDS:
            rows.append((f"{name} at {rate}, ms", num(load["latency"][field])))
        fill = load.get("fill_latency")
        if fill:
            rows.append((f"{FILL_LABEL} p99 at {rate}, ms", num(fill["p99_ms"])))
        trade = load.get("first_hop")
        if trade:
            for field, name in FILL_FIELDS:
                rows.append((f"tick to trade {name} at {rate}, ms", num(trade[field])))
    top = stage.get("max") or {}
    rows.append((max_label(stage), num(top.get("rate"))))
    if len(top.get("runs") or []) > 1:
        rows.append(("max throughput, each run", max_runs(stage)))
    statuses = stage.get("result_statuses") or {}
    rows.append(("final results", ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items()))))
    if stage.get("error"):
        rows.append(("error", str(stage["error"])))
    return rows


def realistic_table(doc: dict[str, Any]) -> Table:
    """Return the realistic stage: two replicas, 40 positions on 3 symbols, long and short."""
    table = Table(title="Realistic: 2 executor replicas, 40 positions on BTC/ETH/SOL, mixed")
    table.add_column("Figure")
    table.add_column("Value", justify="right")
    for name, value in realistic_rows(doc) or [("realistic stage did not run", "")]:
        table.add_row(name, value)
    return table


def per_intent_table(doc: dict[str, Any]) -> Table:
    """Return each process's CPU and NATS messages per intent (max throughput and 500/s)."""
    table = Table(title="Per intent: CPU (ms) and NATS messages sent / received, by process")
    headers = ("Process", "CPU ms (max)", "Sent (max)", "Received (max)", "Sent (500/s)")
    for header in headers:
        table.add_column(header, justify="left" if header == "Process" else "right")
    pipe = doc.get("pipeline") or {}
    cpu = pipe.get("cpu_ms_per_intent") or {}
    msgs = pipe.get("msgs_per_intent") or {}
    at_max, at_500 = msgs.get("max", {}), msgs.get("load_500", {})
    for name in sorted(set(cpu) | set(at_max), key=lambda n: (n in ("bench", "nats-server"), n)):
        table.add_row(
            name,
            num(cpu.get(name), 3),
            num(at_max.get(name, {}).get("sent"), 2),
            num(at_max.get(name, {}).get("received"), 2),
            num(at_500.get(name, {}).get("sent"), 2),
        )
    return table


def tracing_rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """Return the tracing figures as (figure, off, on, on/off, target, verdict) rows.

    The verdict cells hold the verdict's key (``met``, ``missed``, ``n/a``) or nothing;
    the Rich table and the README each style them their own way.
    """
    tracing = doc.get("tracing")
    if not tracing:
        return []
    verdicts = {row["key"]: row for row in doc["verdicts"]}
    off_row, on_row = verdicts["tracing_off_pct"], verdicts["tracing_on_cost_pct"]
    rate, cpu = tracing["max_rate"], tracing["executor_cpu_ms_per_intent"]
    lat = tracing["latency_500"]
    off_lat, on_lat = lat.get("off") or {}, lat.get("on") or {}
    sustained = lat.get("sustained") or {}
    unsustained = [name for name in ("off", "on") if sustained.get(name) is False]
    note = f" (not sustained: {', '.join(unsustained)})" if unsustained else ""
    ns = tracing["middleware_off_ns"]
    ns_on = tracing.get("middleware_on_ns") or {}
    spans, intents = tracing["spans_received"], tracing["intents_on"]
    per_intent = num(spans / intents, 1) if intents else "-"
    consumed = f"{tracing['intent_consume_spans']:,} of {intents:,}"
    return [
        (
            "max throughput (msg/s)",
            num(rate.get("off")),
            num(rate.get("on")),
            num(tracing["max_ratio"], suffix="x"),
            "",
            "",
        ),
        (
            "tracing on: throughput cost, 1 - on/off",
            "",
            num(tracing["on_cost_pct"], 1, "%"),
            "",
            on_row["target"],
            on_row["verdict"],
        ),
        (
            f"p50 at 500/s (ms){note}",
            num(off_lat.get("p50_ms")),
            num(on_lat.get("p50_ms")),
            num(lat.get("p50_ratio"), suffix="x"),
            "",
            "",
        ),
        (
            "p99 at 500/s (ms)",
            num(off_lat.get("p99_ms")),
            num(on_lat.get("p99_ms")),
            num(lat.get("p99_ratio"), suffix="x"),
            "",
            "",
        ),
        (
            "executor CPU per intent, max throughput (ms)",
            num(cpu.get("off"), 3),
            num(cpu.get("on"), 3),
            num(ratio_of(cpu.get("on"), cpu.get("off")), suffix="x"),
            "",
            "",
        ),
        (
            "middleware per intent, consume + 2 x publish (ns; on: spans dropped, not exported)",
            num(ns.get("per_intent"), 0),
            num(ns_on.get("per_intent"), 0),
            num(ratio_of(ns_on.get("per_intent"), ns.get("per_intent")), suffix="x"),
            "",
            "",
        ),
        (
            f"spans received ({per_intent} per intent; intents with an INTENTS consume "
            f"span: {consumed})",
            "",
            f"{spans:,}",
            "",
            "> 0",
            "met" if spans else "missed",
        ),
        (
            f"telemetry off: middleware per intent, {num(ns.get('per_intent'), 0)} ns "
            f"(consume {num(ns.get('consume'), 0)} + 2 x publish {num(ns.get('publish'), 0)})"
            " / executor CPU per intent",
            num(tracing["off_pct"], 2, "%"),
            "",
            "",
            off_row["target"],
            off_row["verdict"],
        ),
    ]


def ratio_of(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is missing or the divisor is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def tracing_table(doc: dict[str, Any]) -> Table:
    """Return the pipeline with telemetry off against tracing on, and the off path's cost."""
    table = Table(title="Tracing: pipeline with telemetry off vs tracing on (OTLP, every service)")
    for header in ("Figure", "Off", "On", "On / off", "Target", "Verdict"):
        table.add_column(header, justify="left" if header == "Figure" else "right")
    rows = tracing_rows(doc)
    if not rows:
        table.add_row("tracing stage did not run", "", "", "", "", "")
    for *cells, verdict in rows:
        table.add_row(*cells, VERDICT_STYLE[verdict] if verdict else "")
    return table


def targets_table(doc: dict[str, Any]) -> Table:
    """Return every target with its value and verdict."""
    table = Table(title="Targets")
    for header in ("Target", "Value", "Wanted", "Verdict"):
        table.add_column(header, justify="left" if header == "Target" else "right")
    for row in doc["verdicts"]:
        table.add_row(row["label"], num(row["value"]), row["target"], VERDICT_STYLE[row["verdict"]])
    return table


def render(doc: dict[str, Any], console: Console) -> None:
    """Print every table of a run, stage errors and the machine it ran on."""
    machine = doc["machine"]
    console.print(
        f"[bold]intentbus bench[/] {doc['started_at']}  {machine['nproc']} x {machine['cpu_model']}"
        f"  Python {machine['python']}  nats-server {machine['nats_server']}"
        f"  load avg at start {machine['loadavg_at_start']}  took {doc['duration_s']:.0f} s"
    )
    tables = (
        bus_table(doc),
        codec_table(doc),
        footprint_table(doc),
        per_intent_table(doc),
        realistic_table(doc),
        tracing_table(doc),
    )
    for table in (*tables, targets_table(doc)):
        console.print(table)
    statuses = (doc.get("pipeline") or {}).get("result_statuses") or {}
    if statuses:
        counts = ", ".join(f"{name} {count:,}" for name, count in sorted(statuses.items()))
        console.print(f"pipeline final results by status: {counts}")
    tracing = doc.get("tracing") or {}
    if tracing.get("spans_by_service"):
        counts = ", ".join(f"{n} {c:,}" for n, c in sorted(tracing["spans_by_service"].items()))
        console.print(f"tracing: spans received by service: {counts}")
    for stage in ("raw", "pipeline", "tracing"):
        error = (doc.get(stage) or {}).get("error")
        if error:
            console.print(f"[bold red]{stage} stage failed:[/] {error}")


def write_json(doc: dict[str, Any], path: Path) -> None:
    """Write the run as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
