"""Reference features: EMAs, the uptrend state of each candle and every transition.

Hand-made candle series with a short EMA stack (2, 3, 4, 5, 6 instead of 20, 60, 144,
250, 333: same rules, series short enough to check by hand); one test runs the default
stack to pin EMA333's warm-up.
"""

from __future__ import annotations

import pytest

from intentbus.pm.indicators import (
    Ema,
    Features,
    FeatureTracker,
    StackParams,
    UptrendState,
    classify,
    scores,
)
from intentbus.pm.series import candles_from_closes

S0, S1, S2, S3, S4 = (UptrendState(f"S{n}") for n in range(5))
SHORT = StackParams(
    periods=(2, 3, 4, 5, 6), volatility_period=4, extension_vol=1.0, reclaim_cooldown_bars=3
)
WARM_UP = [100.0] * 8
DOWN = [99.0, 98.0, 97.0, 96.0, 95.0]
# S0 -> S1 (13) -> S3 (14) -> S4 (21-23) -> S3 (24) -> S2 with reclaim (25) -> S3 (26)
# -> S0 under EMA333 (29).
LIFECYCLE = [*WARM_UP, *DOWN, 99.5, 100.5, 101.5, 102.5, 103.5, 104.5, 105.5, 106.5]
LIFECYCLE += [110.0, 114.0, 118.0, 116.5, 115.5, 116.4, 117.4, 118.4, 114.0, 112.0]
LIFECYCLE_LOWS = {24: 114.0}
# S3 -> S2 (18) drifting down -> S0 with the close still above EMA333 (23).
FADE = [*WARM_UP, *DOWN, 99.5, 100.5, 101.5, 102.5, 103.5, 102.8, 102.6, 102.4, 102.3]
FADE += [102.25, 102.2]


def run(closes: list[float], lows: dict[int, float] | None = None) -> list[Features]:
    tracker = FeatureTracker(SHORT)
    found = []
    for candle in candles_from_closes(closes, lows=lows):
        features = tracker.update(candle)
        assert features is not None
        found.append(features)
    return found


@pytest.mark.parametrize(
    ("close", "emas", "extension", "state"),
    [
        (110.0, (109.0, 108.0, 107.0, 106.0, 105.0), 10.0, S4),
        (110.0, (109.0, 108.0, 107.0, 106.0, 105.0), 9.9, S3),
        (107.5, (108.0, 109.0, 107.0, 106.0, 105.0), 0.0, S2),
        (107.5, (109.0, 108.0, 107.0, 106.0, 105.0), 0.0, S2),
        (106.0, (105.0, 104.0, 104.5, 103.0, 105.5), 0.0, S1),
        (104.0, (105.0, 104.0, 104.5, 103.0, 105.5), 0.0, S0),
        (106.0, (103.0, 104.0, 104.5, 103.0, 105.5), 0.0, S0),
        (100.0, (100.0, 100.0, 100.0, 100.0, 100.0), 0.0, S0),
    ],
)
def test_each_state_from_its_ema_stack(
    close: float, emas: tuple[float, ...], extension: float, state: UptrendState
) -> None:
    assert classify(close, emas, extension, StackParams()) is state


def test_scores_follow_the_documented_formulas() -> None:
    params = StackParams()
    bullish = (109.0, 108.0, 107.0, 106.0, 105.0)
    assert scores(110.0, bullish, 20.0, 0.05, params) == (1.0, 1.0)
    assert scores(110.0, bullish, 5.0, 0.0, params) == (0.6, 0.25)
    bearish = (101.0, 102.0, 103.0, 104.0, 105.0)
    assert scores(100.0, bearish, -3.0, -0.1, params) == (0.0, 1.0)


def test_the_default_stack_is_warm_after_333_closes_and_not_before() -> None:
    tracker = FeatureTracker()
    candles = candles_from_closes([100.0 + (i % 2) for i in range(333)])
    warm = [features.warm for c in candles if (features := tracker.update(c)) is not None]
    assert warm.count(True) == 1
    assert warm[-1] is True
    assert StackParams().periods == (20, 60, 144, 250, 333)


def test_ema_is_seeded_with_the_first_value() -> None:
    ema = Ema(3)
    assert ema.update(10.0) == 10.0
    assert ema.update(20.0) == 15.0
    assert not ema.warm
    assert ema.update(20.0) == 17.5
    assert ema.warm


def test_lifecycle_states_and_transitions() -> None:
    found = run(LIFECYCLE, LIFECYCLE_LOWS)
    states = [f.state for f in found]
    assert states[5:13] == [S0] * 8
    assert not found[4].warm
    assert found[5].warm
    assert (found[13].prev_state, found[13].state) == (S0, S1)
    assert (found[14].prev_state, found[14].state) == (S1, S3)
    assert states[15:21] == [S3] * 6
    assert (found[21].prev_state, found[21].state) == (S3, S4)
    assert states[21:24] == [S4] * 3
    assert [f.bars_in_state for f in found[21:24]] == [1, 2, 3]
    assert (found[24].prev_state, found[24].state) == (S4, S3)
    assert (found[25].prev_state, found[25].state) == (S3, S2)
    assert found[25].reclaim_signal
    assert (found[26].prev_state, found[26].state) == (S2, S3)
    assert (found[29].prev_state, found[29].state) == (S3, S0)
    assert found[29].close < found[29].emas[4]
    assert [f.reclaim_signal for f in found].count(True) == 1


def test_fade_goes_from_s2_to_s0_above_ema333() -> None:
    found = run(FADE)
    assert (found[18].prev_state, found[18].state) == (S3, S2)
    assert [f.state for f in found[18:23]] == [S2] * 5
    assert not any(f.reclaim_signal for f in found)
    assert (found[23].prev_state, found[23].state) == (S2, S0)
    assert found[23].close >= found[23].emas[4]


def test_a_replayed_candle_is_ignored() -> None:
    tracker = FeatureTracker(SHORT)
    candles = candles_from_closes([100.0, 101.0])
    assert tracker.update(candles[0]) is not None
    assert tracker.update(candles[1]) is not None
    assert tracker.update(candles[1]) is None
    assert tracker.update(candles[0]) is None
    assert tracker.count == 2
