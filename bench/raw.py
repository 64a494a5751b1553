"""Raw baseline stage: producer -> pass-through service -> sink, plain nats-py processes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from bench.config import BenchConfig
from bench.procs import Child, ChildFailed, stop_all
from bench.stats import StageFigures, analyse_load, analyse_max, median_max

Say = Callable[[str], None]


async def run_raw(url: str, workdir: Path, cfg: BenchConfig, say: Say) -> StageFigures:
    """Run the warm-up, every fixed load and the max-throughput run on the raw chain."""
    ns = "raw" + uuid.uuid4().hex[:8]
    stream_in, stream_out = f"{ns.upper()}_IN", f"{ns.upper()}_OUT"
    nc = await nats.connect(url, name="bench-raw-setup")
    js = nc.jetstream()
    for name, subject, durable in (
        (stream_in, f"{ns}.in", "service"),
        (stream_out, f"{ns}.out", "sink"),
    ):
        await js.add_stream(StreamConfig(name=name, subjects=[subject], storage=StorageType.FILE))
        await js.add_consumer(
            name,
            ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.EXPLICIT, max_ack_pending=1_000
            ),
        )
    await nc.close()
    runs_dir = workdir / "raw-runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    common = ["--url", url, "--max-pending", str(cfg.max_pending)]
    service = Child("raw-service", workdir)
    sink = Child("raw-sink", workdir)
    children = [sink, service]
    figures = StageFigures(loads=[])
    try:
        await sink.start(
            "bench.raw_proc",
            "sink",
            *common,
            "--stream",
            stream_out,
            "--durable",
            "sink",
            "--out",
            str(runs_dir),
            stdout_pipe=True,
        )
        await service.start(
            "bench.raw_proc",
            "service",
            *common,
            "--stream",
            stream_in,
            "--durable",
            "service",
            "--out",
            f"{ns}.out",
            stdout_pipe=True,
        )
        for child in children:
            if await child.read_line(20.0) != "ready":
                raise ChildFailed(f"{child.name} did not say ready")

        async def one_run(run: str, rate: float, count: int) -> RawRun:
            producer = Child(f"raw-producer-{run}", workdir)
            await producer.start(
                "bench.raw_proc",
                "producer",
                *common,
                "--subject",
                f"{ns}.in",
                "--run",
                run,
                "--rate",
                str(rate),
                "--count",
                str(count),
                "--size",
                str(cfg.message_size),
                stdout_pipe=True,
            )
            budget = count / rate + cfg.drain_timeout_s if rate > 0 else cfg.drain_timeout_s * 2
            json.loads(await producer.read_line(budget))
            await producer.wait(10.0)
            return await _wait_run_file(runs_dir / f"run-{run}.json", cfg.drain_timeout_s, children)

        say("raw: warm-up")
        await one_run("warmup", 0.0, 2_000)
        for rate in cfg.loads:
            say(f"raw: {rate:,.0f}/s for {cfg.warmup_s + cfg.measure_s:g} s")
            count = cfg.load_count(rate)
            done = await one_run(f"r{rate:g}", rate, count)
            figures.loads.append(
                analyse_load(rate, count, done.pairs, cfg.warmup_s, first_hops=done.hops)
            )
        runs = []
        for n in range(cfg.max_runs):
            say(f"raw: max throughput, {cfg.raw_max_count:,} messages ({n + 1}/{cfg.max_runs})")
            top = await one_run(f"max{n}", 0.0, cfg.raw_max_count)
            runs.append(analyse_max(cfg.raw_max_count, top.pairs))
        figures.max = median_max(runs)
    except (ChildFailed, TimeoutError) as exc:
        figures.error = str(exc)
    finally:
        await stop_all(children)
    return figures


@dataclass(frozen=True)
class RawRun:
    """One run's times per message: (sent, sink receipt) and (sent, service receipt)."""

    pairs: list[tuple[int, int]]
    hops: list[tuple[int, int]]


async def _wait_run_file(path: Path, timeout_s: float, children: list[Child]) -> RawRun:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(path.exists):
        for child in children:
            if not child.running:
                raise ChildFailed(f"{child.name} exited{child.tail()}")
        if time.monotonic() > deadline:
            raise ChildFailed(f"the sink did not complete {path.stem} within {timeout_s:g}s")
        await asyncio.sleep(0.05)
    data = json.loads(await asyncio.to_thread(path.read_text))
    return RawRun(
        pairs=list(zip(data["sent"], data["done"], strict=True)),
        hops=list(zip(data["sent"], data["hop"], strict=True)),
    )
