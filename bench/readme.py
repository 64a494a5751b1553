"""Rewrite the README's performance section (between the bench markers) from a run's JSON.

Only the text between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` is replaced;
the file is read right before it is written. Hand-written notes on missed targets and
profiling live in ``bench/NOTES.md`` and are included as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import (
    FILL_FIELDS,
    FILL_LABEL,
    LATENCY_FIELDS,
    fill_latency,
    max_label,
    max_runs,
    num,
    overload_note,
    realistic_rows,
    tick_to_trade_rows,
    tracing_rows,
)

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
NOTES = HERE / "NOTES.md"
MARK = {"met": "met", "missed": "**missed**", "n/a": "n/a"}


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def bus_rows(doc: dict[str, Any]) -> list[str]:
    """Return the raw-vs-pipeline table in Markdown."""
    raw, pipe = doc.get("raw") or {}, doc.get("pipeline") or {}
    ratios = doc["ratios"]
    verdicts = {row["key"]: row for row in doc["verdicts"]}
    lines = [
        _row("Figure", "Raw baseline", "Pipeline", "Pipeline / raw", "Target", "Verdict"),
        _row("---", "---:", "---:", "---:", "---:", "---"),
        _row(
            max_label(raw, pipe, unit=" (msg/s)"),
            num((raw.get("max") or {}).get("rate")),
            num((pipe.get("max") or {}).get("rate")),
            num(ratios["pipeline_max_ratio"], suffix="x"),
            verdicts["pipeline_max_ratio"]["target"],
            MARK[verdicts["pipeline_max_ratio"]["verdict"]],
        ),
        _row("max throughput, each run (msg/s)", max_runs(raw), max_runs(pipe), "", "", ""),
    ]
    pipe_loads = {load["offered_rate"]: load for load in pipe.get("loads", [])}
    for base in raw.get("loads", []):
        rate = base["offered_rate"]
        load = pipe_loads.get(rate)
        why = overload_note(load)
        for field, name in LATENCY_FIELDS:
            p99 = rate == 1_000.0 and field == "p99_ms"
            row = verdicts["pipeline_p99_ratio_1000"]
            note = f" (pipeline {why})" if why and field == "p50_ms" else ""
            lines.append(
                _row(
                    f"{name} at {rate:,.0f}/s (ms){note}",
                    num(base["latency"][field]),
                    num(load["latency"][field]) if load else "-",
                    num(ratios["latency"].get(f"{rate:g}", {}).get(field), suffix="x"),
                    row["target"] if p99 else "",
                    MARK[row["verdict"]] if p99 else "",
                )
            )
        if load and load.get("fill_latency"):
            for field, name in FILL_FIELDS:
                lines.append(
                    _row(
                        f"{FILL_LABEL} {name} at {rate:,.0f}/s (ms)",
                        "-",
                        num(fill_latency(load, field)),
                        "",
                        "",
                        "",
                    )
                )
        for name, hop, trade, times, target, verdict in tick_to_trade_rows(doc, rate):
            mark = MARK[verdict] if verdict else ""
            lines.append(_row(f"{name} at {rate:,.0f}/s (ms)", hop, trade, times, target, mark))
    return lines


def other_rows(doc: dict[str, Any]) -> list[str]:
    """Return the codec and footprint figures as one Markdown table."""
    codec = doc.get("codec") or {}
    verdicts = {row["label"]: row for row in doc["verdicts"]}
    lines = [_row("Figure", "Value", "Target", "Verdict"), _row("---", "---:", "---:", "---")]
    if codec:
        row = verdicts[next(r["label"] for r in doc["verdicts"] if r["key"] == "codec_ratio")]
        lines.append(
            _row(
                f"codec round trip: spec {num(codec['spec_ns'], 0)} ns, "
                f"intentbus {num(codec['project_ns'], 0)} ns",
                num(codec["speedup"], suffix="x"),
                row["target"],
                MARK[row["verdict"]],
            )
        )
    for row in doc["verdicts"]:
        if row["key"] == "service_rss_mb":
            lines.append(
                _row(row["label"], num(row["value"], 1, " MB"), row["target"], MARK[row["verdict"]])
            )
    whatif = doc.get("whatif")
    for row in doc["verdicts"]:
        if row["key"] == "whatif_rate" and whatif:
            label = (
                f"what-if replay of {num(whatif['intents'], 0)} intents (RSS "
                f"{num(whatif['rss_before_mb'], 0)} -> {num(whatif['rss_after_mb'], 0)} MB)"
            )
            value = num(row["value"], 0, "/s")
            lines.append(_row(label, value, row["target"], MARK[row["verdict"]]))
    return lines


def tracing_md(doc: dict[str, Any]) -> list[str]:
    """Return the tracing off / on table in Markdown (nothing when the stage did not run)."""
    rows = tracing_rows(doc)
    if not rows:
        return []
    tracing = doc["tracing"]
    spans = tracing.get("spans_by_service") or {}
    counts = ", ".join(f"{name} {count:,}" for name, count in sorted(spans.items()))
    lines = [
        _row("Tracing", "Telemetry off", "Tracing on", "On / off", "Target", "Verdict"),
        _row("---", "---:", "---:", "---:", "---:", "---"),
    ]
    for *cells, verdict in rows:
        lines.append(_row(*cells, MARK[verdict] if verdict else ""))
    if counts:
        lines += ["", f"Spans received by service (tracing on): {counts}."]
    return ["", *lines]


def per_intent_md(doc: dict[str, Any]) -> list[str]:
    """Return each process's CPU and NATS messages per intent in Markdown (if measured)."""
    pipe = doc.get("pipeline") or {}
    cpu = pipe.get("cpu_ms_per_intent") or {}
    msgs = pipe.get("msgs_per_intent") or {}
    at_max, at_500 = msgs.get("max", {}), msgs.get("load_500", {})
    if not cpu and not at_max:
        return []
    lines = [
        _row("Per intent", "CPU ms (max)", "Sent (max)", "Received (max)", "Sent (500/s)"),
        _row("---", "---:", "---:", "---:", "---:"),
    ]
    for name in sorted(set(cpu) | set(at_max), key=lambda n: (n in ("bench", "nats-server"), n)):
        lines.append(
            _row(
                name,
                num(cpu.get(name), 3),
                num(at_max.get(name, {}).get("sent"), 2),
                num(at_max.get(name, {}).get("received"), 2),
                num(at_500.get(name, {}).get("sent"), 2),
            )
        )
    lines += [
        "",
        "NATS messages each process sent and received per intent (nats-server's `/connz`); "
        "a message sent that waits for a reply (a request, a JetStream publish) is a round "
        "trip, an ack is not.",
    ]
    return ["", *lines]


def realistic_md(doc: dict[str, Any]) -> list[str]:
    """Return the realistic stage's figures in Markdown (nothing when it did not run)."""
    rows = realistic_rows(doc)
    if not rows:
        return []
    lines = [
        _row("Realistic: 2 executor replicas, 40 positions on 3 symbols", "Value"),
        _row("---", "---:"),
    ]
    lines += [_row(name, value) for name, value in rows]
    return ["", *lines]


def render_section(doc: dict[str, Any], notes: str) -> str:
    """Return the whole section, markers included."""
    m = doc["machine"]
    machine = (
        f"{m['nproc']} CPUs ({m['cpu_model']}), {m['os']}, Python {m['python']}, "
        f"nats-server {m['nats_server']}, nats-py {m['nats_py']}, msgspec {m['msgspec']}; "
        f"load average at start {m['loadavg_at_start']}"
    )
    parts = [
        BEGIN,  # the README's own "## Performance" heading sits just above the marker
        "`just bench` runs every stage on embedded nats-servers (JetStream, file storage), "
        "prints the tables below and writes `bench/results/latest.json`; "
        "`just bench --commit` also refreshes `bench/latest-figures.json` and this section. "
        "Benchmarks report; tests never time anything.",
        "",
        "Targets: pipeline max throughput >= 50% of the raw baseline; pipeline p99 at "
        "1,000/s <= 3x the raw p99; codec >= 12x the founding spec's dataclass + json; "
        "each service under 150 MB RSS, idle and at 1,000 intents/s; telemetry off costs "
        "under 2% of the executor's CPU per intent, tracing on under 15% of the pipeline's "
        "max throughput.",
        "",
        f"Latest figures ({doc['started_at']}, {doc['duration_s']:.0f} s): {machine}. "
        "The machine was shared with other work, so expect 15-25% run-to-run noise; "
        "compare ratios rather than absolute figures.",
        "",
        *bus_rows(doc),
        "",
        *other_rows(doc),
        *per_intent_md(doc),
        *realistic_md(doc),
        *tracing_md(doc),
        "",
        notes.strip(),
        END,
    ]
    return "\n".join(parts)


def replace_section(text: str, section: str) -> str:
    """Return ``text`` with the marked section replaced (appended when markers are absent)."""
    start, end = text.find(BEGIN), text.find(END)
    if start == -1 or end == -1 or end < start:
        return text.rstrip("\n") + "\n\n" + section + "\n"
    return text[:start] + section + text[end + len(END) :]


def update_readme(figures: Path, readme: Path = README) -> None:
    """Rewrite the README section from the JSON of a run."""
    doc = json.loads(figures.read_text())
    notes = NOTES.read_text() if NOTES.exists() else ""
    section = render_section(doc, notes)
    current = readme.read_text()
    readme.write_text(replace_section(current, section))
