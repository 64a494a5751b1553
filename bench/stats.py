"""Report maths: percentiles, latency summaries, rates, ratios and target verdicts.

Pure functions only, so the unit tests can check every figure the report prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

SUSTAINED_FRACTION = 0.9
Comparison = Literal[">=", "<=", "<"]
Verdict = Literal["met", "missed", "n/a"]


def percentile(values: Sequence[float], pct: float) -> float:
    """Return the nearest-rank percentile (``pct`` in 0..100) of ``values``.

    Nearest rank never invents a value between two samples: p99.9 of 1,000 samples is
    the largest sample. An empty sequence gives NaN.
    """
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile {pct} is outside 0..100")
    if not values:
        return math.nan
    ordered = sorted(values)
    # round first: 99.9 / 100 * 1000 is 999.0000000000001 in floating point
    rank = max(1, math.ceil(round(pct * len(ordered) / 100.0, 9)))
    return float(ordered[rank - 1])


@dataclass(frozen=True)
class LatencySummary:
    """Summarise one latency sample in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float


def summarise_ns(latencies_ns: Sequence[int]) -> LatencySummary:
    """Summarise latencies given in nanoseconds."""
    ms = sorted(value / 1e6 for value in latencies_ns)
    if not ms:
        nan = math.nan
        return LatencySummary(0, nan, nan, nan, nan, nan)
    return LatencySummary(
        count=len(ms),
        p50_ms=percentile(ms, 50.0),
        p99_ms=percentile(ms, 99.0),
        p999_ms=percentile(ms, 99.9),
        max_ms=ms[-1],
        mean_ms=sum(ms) / len(ms),
    )


def after_warmup(pairs: Sequence[tuple[int, int]], warmup_s: float) -> list[tuple[int, int]]:
    """Keep the (sent_ns, done_ns) pairs sent at least ``warmup_s`` after the first send."""
    if not pairs:
        return []
    start = min(sent for sent, _ in pairs)
    cutoff = start + int(warmup_s * 1e9)
    return [(sent, done) for sent, done in pairs if sent >= cutoff]


def fills_after_warmup(
    fills: Sequence[tuple[int, int, int]], first_sent_ns: int, warmup_s: float
) -> list[tuple[int, int]]:
    """Keep the (created_ns, applied_ns) of fills whose intent was sent after warm-up.

    ``fills`` holds (intent sent_ns, fill created_ns, fill applied_ns): a fill belongs to
    the measured window when its intent does, wherever the fill itself falls.
    """
    cutoff = first_sent_ns + int(warmup_s * 1e9)
    return [(created, applied) for sent, created, applied in fills if sent >= cutoff]


def latencies_ns(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """Return done - sent for every pair."""
    return [done - sent for sent, done in pairs]


def completion_rate(done_ns: Sequence[int], skip_frac: float = 0.1) -> float:
    """Return messages per second completed in steady state.

    The first ``skip_frac`` of completions (ramp-up) is left out: the rate is the number
    of completions after it divided by the time they took. Fewer than two completions
    give NaN.
    """
    ordered = sorted(done_ns)
    if len(ordered) < 2:
        return math.nan
    first = min(int(len(ordered) * skip_frac), len(ordered) - 2)
    span_ns = ordered[-1] - ordered[first]
    if span_ns <= 0:
        return math.nan
    return (len(ordered) - 1 - first) / (span_ns / 1e9)


def ratio(numerator: float | None, denominator: float | None) -> float:
    """Return numerator / denominator, or NaN when either is missing or the divisor is 0."""
    if numerator is None or denominator is None:
        return math.nan
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


@dataclass(frozen=True)
class Target:
    """State one performance target: ``value <comparison> threshold``."""

    key: str
    label: str
    comparison: Comparison
    threshold: float
    unit: str = ""

    def describe(self) -> str:
        """Return the target as people read it, e.g. ``>= 12x``."""
        return f"{self.comparison} {self.threshold:g}{self.unit}"

    def verdict(self, value: float | None) -> Verdict:
        """Say whether ``value`` meets the target; a missing or NaN value is ``n/a``."""
        if value is None or math.isnan(value):
            return "n/a"
        if self.comparison == ">=":
            ok = value >= self.threshold
        elif self.comparison == "<=":
            ok = value <= self.threshold
        else:
            ok = value < self.threshold
        return "met" if ok else "missed"


TARGETS: dict[str, Target] = {
    target.key: target
    for target in (
        Target("pipeline_max_ratio", "pipeline max throughput / raw", ">=", 0.5, "x"),
        Target("pipeline_p99_ratio_1000", "pipeline p99 / raw p99 at 1,000/s", "<=", 3.0, "x"),
        Target(
            "tick_to_trade_p50_ratio_500",
            "tick to trade p50 / raw one-hop p50 at 500/s",
            "<=",
            2.0,
            "x",
        ),
        Target(
            "realistic_p99_200",
            "realistic p99 at 200/s (2 replicas, 40 positions)",
            "<",
            20.0,
            " ms",
        ),
        Target("codec_ratio", "codec speed-up vs spec dataclass+json", ">=", 12.0, "x"),
        Target("service_rss_mb", "peak RSS of each service", "<", 150.0, " MB"),
        Target(
            "tracing_off_pct",
            "telemetry off: middleware / executor CPU per intent",
            "<",
            2.0,
            "%",
        ),
        Target("whatif_rate", "what-if replay rate (intents/s)", ">=", 20_000.0),
        Target(
            "tracing_on_cost_pct",
            "tracing on: max throughput cost (1 - on/off)",
            "<",
            15.0,
            "%",
        ),
    )
}


@dataclass(frozen=True)
class LoadFigures:
    """Give the outcome of one fixed offered load."""

    offered_rate: float
    sent: int
    completed: int
    achieved_rate: float
    latency: LatencySummary
    fill_latency: LatencySummary | None = None
    # publish -> the first hop's work: the raw service's receipt of the message, or the
    # venue's acceptance of the intent's order (tick to trade)
    first_hop: LatencySummary | None = None

    @property
    def complete(self) -> bool:
        """Say whether every message sent was completed."""
        return self.completed >= self.sent

    @property
    def sustained(self) -> bool:
        """Say whether every message completed at (nearly) the offered rate."""
        return self.complete and self.achieved_rate >= SUSTAINED_FRACTION * self.offered_rate


@dataclass(frozen=True)
class MaxFigures:
    """Give the outcome of runs published as fast as the publisher allows.

    With several runs: ``rate`` and ``latency`` are the median run's (by rate), ``runs``
    every run's rate in the order run, ``sent`` and ``completed`` the totals.
    """

    sent: int
    completed: int
    rate: float
    latency: LatencySummary
    runs: tuple[float, ...] = ()


def analyse_load(
    offered_rate: float,
    sent: int,
    pairs: Sequence[tuple[int, int]],
    warmup_s: float,
    fills: Sequence[tuple[int, int, int]] | None = None,
    first_hops: Sequence[tuple[int, int]] | None = None,
) -> LoadFigures:
    """Summarise a paced run: latency after warm-up and the completion rate achieved.

    ``fills`` (intent sent_ns, fill created_ns, fill applied_ns), when given, adds the
    fill-to-ledger latency of the fills of the intents measured (sent after warm-up).
    ``first_hops`` (sent_ns, first hop ns) adds the publish -> first hop latency of the
    messages sent after warm-up.
    """
    measured = after_warmup(pairs, warmup_s)
    sends = [sent_ns for sent_ns, _ in pairs] or [sent_ns for sent_ns, *_ in fills or ()]
    first = min(sends, default=0)
    fill_latency = None
    if fills is not None:
        fill_latency = summarise_ns(latencies_ns(fills_after_warmup(fills, first, warmup_s)))
    first_hop = None
    if first_hops is not None:
        cutoff = first + int(warmup_s * 1e9)
        hops = [(sent, hop) for sent, hop in first_hops if sent >= cutoff]
        first_hop = summarise_ns(latencies_ns(hops)) if hops else None
    return LoadFigures(
        offered_rate=offered_rate,
        sent=sent,
        completed=len(pairs),
        achieved_rate=completion_rate([done for _, done in measured], skip_frac=0.0),
        latency=summarise_ns(latencies_ns(measured)),
        fill_latency=fill_latency,
        first_hop=first_hop,
    )


def analyse_max(sent: int, pairs: Sequence[tuple[int, int]]) -> MaxFigures:
    """Summarise an unpaced run: steady-state completion rate and latency."""
    rate = completion_rate([done for _, done in pairs])
    return MaxFigures(
        sent=sent,
        completed=len(pairs),
        rate=rate,
        latency=summarise_ns(latencies_ns(pairs)),
        runs=(rate,),
    )


def median_max(runs: Sequence[MaxFigures]) -> MaxFigures:
    """Combine unpaced runs: the median run's rate and latency, every rate, the totals.

    One run on a shared 2-core machine varies by 20% and more; the median of an odd
    number of runs is a figure a single slow or fast run does not move. A run with no
    rate (NaN) sorts as the slowest.
    """
    if not runs:
        raise ValueError("no max-throughput run to combine")
    by_rate = sorted(runs, key=lambda run: -math.inf if math.isnan(run.rate) else run.rate)
    middle = by_rate[(len(by_rate) - 1) // 2]
    return MaxFigures(
        sent=sum(run.sent for run in runs),
        completed=sum(run.completed for run in runs),
        rate=middle.rate,
        latency=middle.latency,
        runs=tuple(rate for run in runs for rate in run.runs),
    )


@dataclass
class StageFigures:
    """Give a throughput/latency stage's figures, or why it could not run."""

    loads: list[LoadFigures]
    max: MaxFigures | None = None
    error: str | None = None
    result_statuses: dict[str, int] = field(default_factory=dict)
    cpu_pct: dict[str, dict[str, float]] = field(default_factory=dict)  # window -> process
    window_s: dict[str, float] = field(default_factory=dict)  # window -> its length
    # window -> process -> {"sent", "received"}: NATS messages per intent
    msgs_per_intent: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def cpu_s_per_intent(self, process: str) -> float:
        """Return the CPU seconds ``process`` used per intent in the max-throughput run.

        Its CPU share in the ``max`` window (% of one core) times the window's length,
        over the intents sent in it; the window ends once the ledger has committed every
        one of them. NaN when the window, the process or a complete max run is missing.
        """
        pct = self.cpu_pct.get("max", {}).get(process)
        wall = self.window_s.get("max")
        if pct is None or wall is None or self.max is None or self.max.sent <= 0:
            return math.nan
        if self.max.completed < self.max.sent:
            return math.nan
        return pct / 100.0 * wall / self.max.sent

    def at(self, rate: float) -> LoadFigures | None:
        """Return the figures of the load offered at ``rate``, if it ran."""
        return next((load for load in self.loads if load.offered_rate == rate), None)
