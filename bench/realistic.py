"""Realistic stage: two executor replicas, 40 positions on 3 symbols, long and short.

Beside the synthetic pipeline stage (one executor, one symbol per position, ADD/TRIM):
the paper venue with BTC, ETH and SOL, 40 positions, one per symbol in each book (a book
is one venue account), long and short alternately, each cycling ADD 2%, RECLAIM 1%,
TRIM 50%, ADD 2%, TRIM 30% (every step trades). Two executors share the venue's intent
partitions. Measured as the pipeline stage measures: 200 intents/s (the rate the
replica tests run at) and the maximum, end point the ledger's commit of each result.
"""

from __future__ import annotations

from pathlib import Path

from bench.config import BenchConfig
from bench.intents import VENUE, IntentSource
from bench.pipeline import TELEMETRY_OFF, PipelineStage, Say
from bench.procs import Child, stop_all
from bench.stats import StageFigures
from intentbus.schemas import ActionType, Direction, OpenPosition

SYMBOLS = {"BTC": 65_000.0, "ETH": 3_200.0, "SOL": 150.0}
POSITIONS = 40
RATE = 200.0
CYCLE = (
    (ActionType.ADD, 0.02),
    (ActionType.RECLAIM, 0.01),
    (ActionType.TRIM, 0.5),
    (ActionType.ADD, 0.02),
    (ActionType.TRIM, 0.3),
)


def positions() -> list[OpenPosition]:
    """Return the 40 positions: one per symbol in each book, long and short alternately."""
    symbols = list(SYMBOLS)
    return [
        OpenPosition(
            position_id=f"real-{n:02d}",
            venue=VENUE,
            book_id=f"r{n // len(symbols):02d}",
            token_contract=symbols[n % len(symbols)],
            direction=Direction.LONG if n % 2 == 0 else Direction.SHORT,
            allocation_usd=100_000.0,
        )
        for n in range(POSITIONS)
    ]


class RealisticStage(PipelineStage):
    """The pipeline stage with two executor replicas and the realistic book."""

    def __init__(self, url: str, workdir: Path, cfg: BenchConfig, say: Say) -> None:
        super().__init__(url, workdir, cfg, say, TELEMETRY_OFF, tag="realistic")
        self.executor_2 = Child("executor-paper-realistic-2", workdir, TELEMETRY_OFF)
        self.loads = (RATE,)

    @property
    def executors(self) -> list[Child]:
        """Return both replicas."""
        return [self.executor, self.executor_2]

    def _prices(self) -> str:
        return ",".join(f"{symbol}:{price:g}" for symbol, price in SYMBOLS.items())

    def _source(self) -> IntentSource:
        return IntentSource(self.topology, positions(), CYCLE)


async def run_realistic(
    url: str, workdir: Path, cfg: BenchConfig, say: Say, extra_pids: dict[str, int]
) -> StageFigures:
    """Run the realistic stage; return its figures."""
    stage = RealisticStage(url, workdir, cfg, say)
    figures = await stage.run(extra_pids)
    await stop_all(stage.children)
    return figures
