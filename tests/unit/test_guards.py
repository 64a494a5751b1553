"""The halt view's precedence, risk cap parsing and the intent rate window."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from intentbus.bus.control import HaltView, switch_key
from intentbus.executor.guards import Guard, RiskCaps, RiskLimits
from intentbus.schemas import ActionType, HaltMode, HaltSwitch, SkipReason, build_intent


def _switch(mode: HaltMode, venue: str = "", book: str = "") -> HaltSwitch:
    return HaltSwitch(
        mode=mode, reason="r", set_by="t", set_at=datetime.now(UTC), venue=venue, book=book
    )


def _view(*switches: HaltSwitch) -> HaltView:
    view = HaltView()
    for s in switches:
        view.switches[switch_key(s.venue, s.book)] = s
    return view


def test_the_most_restrictive_covering_switch_decides() -> None:
    view = _view(
        _switch(HaltMode.REDUCING),
        _switch(HaltMode.HALTED, venue="paper", book="main"),
        _switch(HaltMode.ACTIVE, venue="paper"),
    )
    assert view.stopping("paper", "main", ActionType.EXIT) is not None  # halted on that book
    assert view.stopping("paper", "main", ActionType.EMERGENCY_EXIT) is None
    assert view.stopping("paper", "other", ActionType.ADD) is not None  # the global reducing
    assert view.stopping("paper", "other", ActionType.TRIM) is None
    assert view.stopping("hl", "main", ActionType.RECLAIM) is not None
    assert _view(_switch(HaltMode.ACTIVE)).stopping("paper", "main", ActionType.ADD) is None


def test_risk_caps_parse_per_venue_and_book_and_fall_back_field_by_field() -> None:
    caps = RiskCaps.parse(
        ["max_intent_notional_usd=500", "main:max_intents_per_minute=3", "max_intents_per_minute=9"]
    )
    assert caps.for_book("main") == RiskLimits(500.0, None, 3)
    assert caps.for_book("other") == RiskLimits(500.0, None, 9)
    with pytest.raises(ValueError, match="KEY one of"):
        RiskCaps.parse(["max_leverage=2"])
    with pytest.raises(ValueError, match="> 0"):
        RiskCaps.parse(["max_intent_notional_usd=0"])


def test_the_intent_rate_counts_a_retried_intent_once_and_forgets_after_a_minute() -> None:
    now = [0.0]
    guard = Guard(caps=RiskCaps(venue=RiskLimits(max_intents_per_minute=2)), clock=lambda: now[0])
    one, two, three = (
        build_intent(action="add", size_frac=0.1, position_id=f"p{n}", token_contract="BTC",
                     token_chain="paper", book_id="main")
        for n in range(3)
    )  # fmt: skip
    assert guard.admit(one) is None
    assert guard.admit(one) is None  # the same intent retried in its lane
    assert guard.admit(two) is None
    refused = guard.admit(three)
    assert refused is not None
    assert refused.reason == SkipReason.RISK_INTENT_RATE
    now[0] = 61.0
    assert guard.admit(three) is None
