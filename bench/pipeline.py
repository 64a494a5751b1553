"""Pipeline stage: intents -> executor -> paper venue -> fills, results -> ledger committed.

The paper venue, the ledger and the paper executor run as processes through the
``intentbus`` CLI (``python -m intentbus.command.app paper-venue|ledger|executor ...``) in a
fresh namespace; the venue starts first (with a price for every bench symbol) and the
executor only once the venue serves. This process plays the PM: it opens positions
through the ledger's request/reply API and publishes intents (``publish_async``,
``Nats-Msg-Id`` = intent id), stamping each with ``time.time_ns()`` at publish (also its
``created_at``). The end point is the ledger's commit of each intent's final result, read
from its SQLite database read-only (:mod:`bench.ledger_probe`); the same database gives
each fill's created -> committed latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from bench import connz
from bench.config import BenchConfig
from bench.footprint import RssSampler
from bench.intents import IntentSource, prices_option, publish_intents
from bench.ledger_probe import LedgerProbe, ProbeError
from bench.procs import Child, ChildFailed, stop_all
from bench.stats import StageFigures, analyse_load, analyse_max, median_max
from intentbus.bus import LedgerUnavailable, PositionClient, Topology, provision

Say = Callable[[str], None]
STOP_S = 10.0
PROFILE_STOP_S = 120.0
# every service of the pipeline stage runs with telemetry off, whatever this shell says
TELEMETRY_OFF = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}


class PipelineStage:
    """Run the services, the loads and the max-throughput run; keep footprint windows."""

    def __init__(
        self,
        url: str,
        workdir: Path,
        cfg: BenchConfig,
        say: Say,
        env: dict[str, str] | None = None,
        tag: str = "",
    ) -> None:
        """Run the services with ``env`` set on top of ours (default: telemetry off).

        ``tag`` names a second run's logs and database apart (``ledger-TAG.log``...).
        """
        self.url = url
        self.workdir = workdir
        self.cfg = cfg
        self.say = say
        self.topology = Topology("bench" + uuid.uuid4().hex[:8])
        suffix = f"-{tag}" if tag else ""
        self.label = f"pipeline{suffix}"
        env = TELEMETRY_OFF if env is None else env
        self.db = workdir / f"ledger{suffix}.sqlite3"
        self.venue = Child(f"paper-venue{suffix}", workdir, env)
        self.ledger = Child(f"ledger{suffix}", workdir, env)
        self.executor = Child(f"executor-paper{suffix}", workdir, env)
        self.probe = LedgerProbe(self.db)
        self.sent: dict[str, int] = {}
        self.expected = 0
        self.sampler: RssSampler | None = None
        self.probe_error = ""
        self.monitor_url: str | None = None
        self.loads: tuple[float, ...] = cfg.loads

    @property
    def children(self) -> list[Child]:
        """Return the service processes, in start order."""
        return [self.venue, self.ledger, *self.executors]

    async def run(self, extra_pids: dict[str, int]) -> StageFigures:
        """Run everything; on failure return what ran plus the error."""
        figures = StageFigures(loads=[])
        nc = await nats.connect(self.url, name="bench-pm")
        stop = asyncio.Event()
        sampler_task: asyncio.Task[None] | None = None
        try:
            await self._start_services(nc)
            pids = {
                "paper-venue": self.venue.pid,
                "ledger": self.ledger.pid,
                **{
                    "executor" if n == 0 else f"executor-{n + 1}": child.pid
                    for n, child in enumerate(self.executors)
                },
                "bench": os.getpid(),  # the PM stand-in: publisher and ledger probe
                **extra_pids,
            }
            self.sampler = RssSampler(pids, alone=frozenset({"bench"}))
            sampler_task = asyncio.create_task(self.sampler.run(stop))
            await self._measure(nc, figures)
        except (ChildFailed, ProbeError, LedgerUnavailable, TimeoutError) as exc:
            figures.error = f"{type(exc).__name__}: {exc}"
        finally:
            stop.set()
            if sampler_task is not None:
                await sampler_task
            if self.sampler is not None:
                figures.cpu_pct = dict(self.sampler.cpu)
                figures.window_s = dict(self.sampler.wall)
            # under pyinstrument a service writes its report after SIGTERM: give it time
            stop_s = PROFILE_STOP_S if self.cfg.profile else STOP_S
            codes = {child.name: await child.stop(stop_s) for child in reversed(self.children)}
            with contextlib.suppress(ProbeError, sqlite3.Error):
                figures.result_statuses = await asyncio.to_thread(self.probe.statuses)
            self.probe.close()
            await nc.close()
        bad = {name: code for name, code in codes.items() if code not in (0, None, -15)}
        if bad and figures.error is None:
            figures.error = f"services exited with {bad}: see logs in the bench workdir"
        return figures

    async def _start_services(self, nc: Client) -> None:
        common = ["--nats-url", self.url, "--namespace", self.topology.namespace]
        await provision(nc.jetstream(), self.topology)
        self.say(f"{self.label}: starting paper venue")
        prices = f"prices={self._prices()}"
        await self.venue.start(
            *self._command("paper-venue"), "--option", prices, *common, stdout_pipe=True
        )
        await self._wait_venue()
        self.say(f"{self.label}: starting ledger and paper executor")
        await self.ledger.start(*self._command("ledger"), "--db", str(self.db), *common)
        for executor in self.executors:
            await executor.start(*self._command("executor"), "--venue", "paper", *common)
        positions = PositionClient(nc, self.topology, timeout_s=1.0)
        deadline = time.monotonic() + 60.0
        while True:
            self._check_alive()
            try:
                await positions.list()
                break
            except LedgerUnavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self.source = self._source()
        for request in self.source.positions:
            await positions.open(request)

    @property
    def executors(self) -> list[Child]:
        """Return the executor processes (one here; replicas in a subclass)."""
        return [self.executor]

    def _prices(self) -> str:
        return prices_option(self.cfg.pipeline_positions)

    def _source(self) -> IntentSource:
        return IntentSource(self.topology, self.cfg.pipeline_positions)

    async def _wait_venue(self, timeout_s: float = 60.0) -> None:
        """Wait until the paper venue says it serves (its first stdout line)."""
        deadline = time.monotonic() + timeout_s
        while True:
            line = await self.venue.read_line(max(0.1, deadline - time.monotonic()))
            if "serving" in line:
                return

    def _command(self, name: str) -> list[str]:
        """Return module and arguments running ``intentbus NAME``, under pyinstrument if asked."""
        if not self.cfg.profile:
            return ["intentbus.command.app", name]
        out = self.workdir / f"{name}.pyinstrument.txt"
        return ["pyinstrument", "-r", "text", "-o", str(out), "-m", "intentbus.command.app", name]

    async def _measure(self, nc: Client, figures: StageFigures) -> None:
        cfg = self.cfg
        assert self.sampler is not None
        js = nc.jetstream(publish_async_max_pending=cfg.max_pending)
        self.say(f"{self.label}: warm-up (one intent per position, then 500)")
        await self._publish_and_drain(js, len(self.source.positions), 0.0, 60.0)
        self.sampler.start_window("idle")
        await asyncio.sleep(cfg.idle_s)
        self.sampler.end_window()
        await self._publish_and_drain(js, 500, 500.0, cfg.drain_timeout_s)
        for rate in self.loads:
            self.say(f"{self.label}: {rate:,.0f}/s for {cfg.warmup_s + cfg.measure_s:g} s")
            self.sampler.start_window(f"load_{rate:g}")
            count = cfg.load_count(rate)
            before = await connz.snapshot(self.monitor_url)
            ids, done = await self._publish_and_drain(js, count, rate, cfg.drain_timeout_s)
            self.sampler.end_window()
            after = await connz.snapshot(self.monitor_url)
            figures.msgs_per_intent[f"load_{rate:g}"] = connz.per_intent(before, after, count)
            pairs, fills = await self._pairs(ids), await self._fills(ids)
            trades = await self._trades(ids)
            load = analyse_load(rate, count, pairs, cfg.warmup_s, fills, first_hops=trades)
            figures.loads.append(load)
            if not load.sustained:
                self.say(f"{self.label}: {rate:,.0f}/s not sustained ({load.achieved_rate:,.0f}/s)")
            if not done:
                break  # a backlog would spoil every later figure
        with contextlib.suppress(TimeoutError):
            await self._drain(cfg.drain_timeout_s)  # a backlog left by an overload
        count = cfg.pipeline_max_count
        self.sampler.start_window("max")  # every run: CPU and messages per intent over all
        before = await connz.snapshot(self.monitor_url)
        runs = []
        for n in range(cfg.max_runs):
            self.say(f"{self.label}: max throughput, {count:,} intents ({n + 1}/{cfg.max_runs})")
            ids, _ = await self._publish_and_drain(js, count, 0.0, 2 * cfg.drain_timeout_s)
            runs.append(analyse_max(count, await self._pairs(ids)))
        self.sampler.end_window()
        after = await connz.snapshot(self.monitor_url)
        figures.msgs_per_intent["max"] = connz.per_intent(before, after, count * cfg.max_runs)
        figures.max = median_max(runs)

    async def _publish_and_drain(
        self, js: JetStreamContext, count: int, rate: float, timeout_s: float
    ) -> tuple[list[str], bool]:
        ids = await publish_intents(js, self.source, count, rate, self.sent)
        self.expected += count
        try:
            await self._drain(timeout_s)
        except TimeoutError:
            return ids, False
        return ids, True

    async def _drain(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive()
            committed = await self._count()
            if committed >= self.expected:
                return
            if time.monotonic() > deadline:
                why = f" ({self.probe_error})" if self.probe_error else ""
                raise TimeoutError(f"{committed} of {self.expected} results committed{why}")
            await asyncio.sleep(0.1)

    async def _count(self) -> int:
        try:
            return await asyncio.to_thread(self.probe.count)
        except ProbeError as exc:  # the ledger may create its database lazily
            self.probe_error = str(exc)
            return 0

    async def _pairs(self, ids: list[str]) -> list[tuple[int, int]]:
        committed = await asyncio.to_thread(self.probe.committed)
        return [(self.sent[i], committed[i]) for i in ids if i in committed]

    async def _fills(self, ids: list[str]) -> list[tuple[int, int, int]]:
        """Return (intent sent_ns, fill created_ns, fill applied_ns) of these intents' fills."""
        wanted = set(ids)
        fills = await asyncio.to_thread(self.probe.fills)
        return [(self.sent[i], made, applied) for i, made, applied in fills if i in wanted]

    async def _trades(self, ids: list[str]) -> list[tuple[int, int]]:
        """Return (intent sent_ns, the venue's first fill of it) of these intents: tick to trade."""
        trades = await asyncio.to_thread(self.probe.trades)
        return [(self.sent[i], trades[i]) for i in ids if i in trades]

    def _check_alive(self) -> None:
        for child in self.children:
            if not child.running:
                raise ChildFailed(f"{child.name} exited{child.tail()}")


async def run_pipeline(
    url: str,
    workdir: Path,
    cfg: BenchConfig,
    say: Say,
    extra_pids: dict[str, int],
    env: dict[str, str] | None = None,
    tag: str = "",
    monitor_url: str | None = None,
) -> tuple[StageFigures, dict[str, dict[str, float]]]:
    """Run the pipeline stage; return its figures and peak RSS (MB) per window and service.

    ``monitor_url``: the nats-server's monitoring endpoint, to count messages per intent.
    """
    stage = PipelineStage(url, workdir, cfg, say, env, tag)
    stage.monitor_url = monitor_url
    figures = await stage.run(extra_pids)
    footprint = {} if stage.sampler is None else {
        window: stage.sampler.peak_mb(window) for window in stage.sampler.peaks
    }  # fmt: skip
    await stop_all(stage.children)
    return figures, footprint
