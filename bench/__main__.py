"""Run the benchmark suite: ``python -m bench`` (``just bench``); see ``--help``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bench import machine
from bench.codec import CodecFigures, run_codec
from bench.config import BenchConfig
from bench.connz import free_port
from bench.pipeline import run_pipeline
from bench.raw import run_raw
from bench.readme import update_readme
from bench.realistic import run_realistic
from bench.report import render, write_json
from bench.results import assemble, clean, realistic_p99, stage_dict, verdict_row
from bench.stats import TARGETS, StageFigures
from bench.tracing import TracingFigures, run_tracing
from bench.whatif import measure as measure_whatif
from intentbus.bus.embedded import EmbeddedNatsServer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
COMMITTED = HERE / "latest-figures.json"
STAGES = ("codec", "raw", "pipeline", "realistic", "tracing", "whatif")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--measure-s", type=float, help="seconds measured per load")
    parser.add_argument(
        "--positions", type=int, help="positions (one symbol each) of the pipeline stage"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the services under pyinstrument (reports in bench/results/logs); "
        "footprint figures are then not valid",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--commit", action="store_true", help=f"also write {COMMITTED.name} and the README section"
    )
    parser.add_argument(
        "--readme-only",
        action="store_true",
        help=f"rewrite the README section from {COMMITTED.name}",
    )
    return parser.parse_args(argv)


def make_config(args: argparse.Namespace) -> BenchConfig:
    """Return the run's knobs."""
    cfg = BenchConfig()
    if args.quick:
        cfg = dataclasses.replace(
            cfg, warmup_s=0.5, measure_s=1.5, raw_max_count=5_000, pipeline_max_count=1_500,
            idle_s=1.0, drain_timeout_s=20.0, whatif_intents=10_000, max_runs=1,
        )  # fmt: skip
    if args.profile:
        cfg = dataclasses.replace(cfg, profile=True)
    if args.measure_s:
        cfg = dataclasses.replace(cfg, measure_s=args.measure_s)
    if args.positions:
        cfg = dataclasses.replace(cfg, pipeline_positions=args.positions)
    return cfg


@contextmanager
def nats_server(workdir: Path, name: str) -> Iterator[EmbeddedNatsServer]:
    """Run a fresh embedded nats-server (JetStream, file storage) for one stage.

    Its HTTP monitoring port is ``server.monitor_url`` (messages per intent per process).
    """
    port = free_port()
    server = EmbeddedNatsServer(str(workdir / name), extra_args=("-m", str(port)))
    server.monitor_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Run the chosen stages, print the tables and write the JSON."""
    args = parse_args(argv)
    console = Console()
    if args.readme_only:
        update_readme(COMMITTED)
        console.print(f"README section rewritten from {COMMITTED}")
        return 0
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown:
        console.print(f"[red]unknown stage(s): {sorted(unknown)}; choose from {STAGES}[/]")
        return 2
    cfg = make_config(args)
    logs = RESULTS / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    info = machine.describe()
    codec: CodecFigures | None = None
    raw: StageFigures | None = None
    pipe: StageFigures | None = None
    footprint: dict[str, dict[str, float]] = {}
    tracing: TracingFigures | None = None
    whatif: dict[str, float] | None = None
    realistic: StageFigures | None = None
    with (
        console.status("starting") as status,
        tempfile.TemporaryDirectory(prefix="ib-bench-") as tmp,
    ):

        def say(text: str) -> None:
            status.update(f"[{time.monotonic() - started:5.0f} s] {text}")
            console.log(text)

        work = Path(tmp)
        if "codec" in stages:
            say("codec: timing encode + decode")
            codec = run_codec()
        if "raw" in stages:
            with nats_server(work, "nats-raw") as server:
                raw = asyncio.run(run_raw(server.url, logs, cfg, say))
        if "pipeline" in stages:
            with nats_server(work, "nats-pipeline") as server:
                extra = {"nats-server": server.pid} if server.pid else {}
                monitor = getattr(server, "monitor_url", None)
                pipe, footprint = asyncio.run(
                    run_pipeline(server.url, logs, cfg, say, extra, monitor_url=monitor)
                )
        if "realistic" in stages:  # two executor replicas, 40 positions on 3 symbols
            with nats_server(work, "nats-realistic") as server:
                extra = {"nats-server": server.pid} if server.pid else {}
                realistic = asyncio.run(run_realistic(server.url, logs, cfg, say, extra))
        if "tracing" in stages:  # the pipeline's loads again, tracing on; off: see bench.tracing
            with nats_server(work, "nats-tracing") as server:
                extra = {"nats-server": server.pid} if server.pid else {}
                tracing = asyncio.run(run_tracing(server.url, logs, cfg, say, extra))
        if "whatif" in stages:
            with nats_server(work, "nats-whatif") as server:
                say(f"what-if: replaying {cfg.whatif_intents:,} intents")
                rate, before, after = asyncio.run(measure_whatif(server.url, cfg.whatif_intents))
                whatif = {
                    "intents": float(cfg.whatif_intents),
                    "rate": rate,
                    "rss_before_mb": before / 1e6,
                    "rss_after_mb": after / 1e6,
                }
    doc = assemble(
        machine=info,
        config=dataclasses.asdict(cfg),
        raw=raw,
        pipe=pipe,
        codec=codec,
        footprint=footprint,
        started_at=started_at,
        duration_s=time.monotonic() - started,
        tracing=tracing,
    )
    if realistic is not None:
        doc["realistic"] = clean(stage_dict(realistic))
        row = verdict_row(TARGETS["realistic_p99_200"], realistic_p99(realistic))
        doc["verdicts"].append(clean(row))  # not sustained: no figure, missed
    if whatif is not None:
        doc["whatif"] = whatif
        doc["verdicts"].append(verdict_row(TARGETS["whatif_rate"], whatif["rate"]))
    render(doc, console)
    write_json(doc, args.out)
    console.print(f"figures written to {args.out}; service logs in {logs}")
    if args.commit:
        write_json(doc, COMMITTED)
        update_readme(COMMITTED)
        console.print(f"committed copy {COMMITTED} and README section updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
