"""Knobs of a benchmark run (``python -m bench --help`` exposes them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchConfig:
    """Say what to run and for how long."""

    loads: tuple[float, ...] = (500.0, 1_000.0, 2_000.0)
    warmup_s: float = 1.0
    measure_s: float = 5.0
    message_size: int = 400
    max_pending: int = 256
    raw_max_count: int = 20_000
    pipeline_max_count: int = 4_000
    max_runs: int = 3  # max-throughput runs per stage; the median is reported
    pipeline_positions: int = 32
    drain_timeout_s: float = 45.0
    idle_s: float = 2.0
    profile: bool = False
    whatif_intents: int = 100_000

    def load_count(self, rate: float) -> int:
        """Return how many messages a paced run at ``rate`` publishes."""
        return int(rate * (self.warmup_s + self.measure_s))
