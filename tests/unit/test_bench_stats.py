"""Check the benchmark's report maths: percentiles, rates, ratios and target verdicts."""

from __future__ import annotations

import math

import pytest

from bench.stats import (
    MaxFigures,
    Target,
    after_warmup,
    analyse_load,
    analyse_max,
    completion_rate,
    fills_after_warmup,
    median_max,
    percentile,
    ratio,
    summarise_ns,
)

MS = 1_000_000


def test_percentile_is_nearest_rank() -> None:
    values = list(range(100, 0, -1))  # 1..100, unsorted
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 99.9) == 100
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1


def test_percentile_of_few_samples_never_interpolates() -> None:
    assert percentile([1.0, 2.0, 10.0], 50) == 2.0
    assert percentile([1.0, 2.0, 10.0], 99) == 10.0
    assert percentile([7.0], 99.9) == 7.0


def test_percentile_of_nothing_is_nan_and_range_is_checked() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_summary_converts_ns_to_ms() -> None:
    summary = summarise_ns([n * MS for n in range(1, 1001)])
    assert summary.count == 1000
    assert summary.p50_ms == 500.0
    assert summary.p99_ms == 990.0
    assert summary.p999_ms == 999.0
    assert summary.max_ms == 1000.0
    assert summary.mean_ms == pytest.approx(500.5)


def test_empty_summary_is_nan_not_zero() -> None:
    summary = summarise_ns([])
    assert summary.count == 0
    assert math.isnan(summary.p99_ms)


def test_warmup_drops_messages_sent_in_the_first_seconds() -> None:
    start = 10_000 * MS
    pairs = [(start + n * 100 * MS, start + n * 100 * MS + MS) for n in range(30)]  # 3 s
    kept = after_warmup(pairs, warmup_s=1.0)
    assert len(kept) == 20
    assert kept[0][0] == start + 1_000 * MS
    assert after_warmup([], 1.0) == []


def test_completion_rate_skips_the_ramp() -> None:
    evenly = [n * MS for n in range(1001)]  # one per ms for one second
    assert completion_rate(evenly, skip_frac=0.0) == pytest.approx(1000.0)
    ramp = [0, 500 * MS] + [500 * MS + n * MS for n in range(1, 19)]  # slow first gap
    assert completion_rate(ramp, skip_frac=0.1) == pytest.approx(1000.0)
    assert math.isnan(completion_rate([5]))
    assert math.isnan(completion_rate([5, 5]))


def test_ratio_handles_missing_and_zero() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert math.isnan(ratio(None, 2.0))
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(math.nan, 1.0))


@pytest.mark.parametrize(
    ("comparison", "value", "verdict"),
    [
        (">=", 12.0, "met"),
        (">=", 11.99, "missed"),
        ("<=", 3.0, "met"),
        ("<=", 3.01, "missed"),
        ("<", 150.0, "missed"),
        ("<", 149.9, "met"),
        (">=", math.nan, "n/a"),
        (">=", None, "n/a"),
    ],
)
def test_target_verdicts_at_the_boundary(
    comparison: str, value: float | None, verdict: str
) -> None:
    threshold = {">=": 12.0, "<=": 3.0, "<": 150.0}[comparison]
    target = Target("k", "label", comparison, threshold, "x")  # type: ignore[arg-type]
    assert target.verdict(value) == verdict
    assert target.describe() == f"{comparison} {threshold:g}x"


def test_analyse_load_reports_latency_after_warmup_and_completion() -> None:
    pairs = [(n * MS, n * MS + (50 * MS if n < 1000 else 2 * MS)) for n in range(2000)]
    figures = analyse_load(1000.0, sent=2100, pairs=pairs, warmup_s=1.0)
    assert figures.completed == 2000
    assert not figures.complete
    assert figures.latency.count == 1000
    assert figures.latency.p99_ms == 2.0
    assert figures.achieved_rate == pytest.approx(1000.0)


def test_analyse_max_measures_steady_state_rate() -> None:
    pairs = [(0, n * MS) for n in range(1, 101)]
    figures = analyse_max(100, pairs)
    assert figures.completed == 100
    assert figures.rate == pytest.approx(1000.0)
    assert figures.latency.max_ms == 100.0


def _run(rate_per_ms: int, count: int = 100) -> MaxFigures:
    """Return a max run completing ``rate_per_ms`` messages per millisecond."""
    return analyse_max(count, [(0, MS + n * MS // rate_per_ms) for n in range(count)])


def test_max_runs_report_the_median_run_and_every_rate() -> None:
    runs = [_run(2), _run(1), _run(4)]  # 2,000, 1,000 and 4,000/s, in the order run
    combined = median_max(runs)
    assert combined.rate == pytest.approx(2_000.0)
    assert combined.latency == runs[0].latency  # the median run's, not a mix
    assert combined.runs == pytest.approx((2_000.0, 1_000.0, 4_000.0))
    assert (combined.sent, combined.completed) == (300, 300)


def test_a_max_run_without_a_rate_counts_as_the_slowest() -> None:
    empty = analyse_max(100, [])
    assert math.isnan(empty.rate)
    combined = median_max([_run(4), empty, _run(2)])
    assert combined.rate == pytest.approx(2_000.0)
    assert (combined.sent, combined.completed) == (300, 200)
    with pytest.raises(ValueError, match="no max-throughput run"):
        median_max([])


def test_fills_count_in_the_window_of_their_intent() -> None:
    start = 10_000 * MS
    fills = [
        (start, start + 5 * MS, start + 7 * MS),  # intent sent in the warm-up
        (start + 1_000 * MS, start + 1_900 * MS, start + 1_903 * MS),  # first measured
        (start + 1_500 * MS, start + 1_600 * MS, start + 1_610 * MS),
    ]
    kept = fills_after_warmup(fills, first_sent_ns=start, warmup_s=1.0)
    assert kept == [
        (start + 1_900 * MS, start + 1_903 * MS),
        (start + 1_600 * MS, start + 1_610 * MS),
    ]


def test_analyse_load_adds_fill_latency_only_when_fills_are_given() -> None:
    pairs = [(n * MS, n * MS + 20 * MS) for n in range(2000)]
    fills = [(n * MS, n * MS + 10 * MS, n * MS + (13 if n % 2 else 11) * MS) for n in range(2000)]
    figures = analyse_load(1000.0, sent=2000, pairs=pairs, warmup_s=1.0, fills=fills)
    assert figures.fill_latency is not None
    assert figures.fill_latency.count == 1000
    assert figures.fill_latency.p50_ms == 1.0
    assert figures.fill_latency.p99_ms == 3.0
    assert figures.latency.p50_ms == 20.0
    assert analyse_load(1000.0, 2000, pairs, 1.0).fill_latency is None


def test_fill_latency_without_completed_intents_uses_the_fills_own_sends() -> None:
    fills = [(n * MS, n * MS + MS, n * MS + 2 * MS) for n in range(2000)]
    figures = analyse_load(1000.0, sent=2000, pairs=[], warmup_s=1.0, fills=fills)
    assert figures.completed == 0
    assert figures.fill_latency is not None
    assert figures.fill_latency.count == 1000


def test_cpu_per_intent_is_cpu_share_times_window_over_intents() -> None:
    from bench.stats import LatencySummary, MaxFigures, StageFigures

    lat = LatencySummary(4, 1.0, 1.0, 1.0, 1.0, 1.0)
    stage = StageFigures(
        loads=[],
        max=MaxFigures(sent=4_000, completed=4_000, rate=800.0, latency=lat),
        cpu_pct={"max": {"executor": 50.0}},
        window_s={"max": 8.0},
    )
    assert stage.cpu_s_per_intent("executor") == pytest.approx(0.001)  # 4 s of CPU / 4,000
    assert math.isnan(stage.cpu_s_per_intent("ledger"))
    short = MaxFigures(sent=4_000, completed=3_999, rate=800.0, latency=lat)
    incomplete = StageFigures(loads=[], max=short, cpu_pct=stage.cpu_pct, window_s=stage.window_s)
    assert math.isnan(incomplete.cpu_s_per_intent("executor"))
    assert math.isnan(StageFigures(loads=[]).cpu_s_per_intent("executor"))


def test_first_hops_count_after_the_warmup_of_the_run() -> None:
    s = 1_000_000_000
    pairs = [(0, 5 * s), (2 * s, 2 * s + 9_000_000), (3 * s, 3 * s + 9_000_000)]
    hops = [(0, s), (2 * s, 2 * s + 2_000_000), (3 * s, 3 * s + 4_000_000)]
    load = analyse_load(500.0, 3, pairs, 1.0, first_hops=hops)
    assert load.first_hop is not None
    assert (load.first_hop.count, load.first_hop.p50_ms, load.first_hop.max_ms) == (2, 2.0, 4.0)
    assert analyse_load(500.0, 3, pairs, 1.0).first_hop is None
