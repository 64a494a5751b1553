"""Migration converters: the founding spec's dict shape and plan_actions_v4 decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from intentbus.schemas import ActionType, Urgency, build_intent
from intentbus.schemas.legacy import (
    SPEC_FIELDS,
    LegacyConversionError,
    from_plan_actions_v4,
    from_spec_dict,
    to_spec_dict,
)

POSITION = {
    "id": "pos-7",
    "token_contract": "ETH",
    "token_chain": "hyperliquid",
    "book_id": "main",
    "timeframe": "4h",
}


def test_spec_dict_has_exactly_the_spec_keys_and_round_trips() -> None:
    intent = build_intent(
        action=ActionType.RECLAIM,
        size_frac=0.3,
        position_id="pos-7",
        token_contract="ETH",
        token_chain="hyperliquid",
        book_id="main",
        urgency=Urgency.HIGH,
        priority=80,
        reason_codes=("s2_dip",),
        state="S2",
        prev_state="S1",
        a_final=0.6,
        e_final=0.1,
        max_leverage=5.0,
        risk_reason="cap",
    )
    as_dict = to_spec_dict(intent)
    assert tuple(as_dict) == SPEC_FIELDS
    assert as_dict["action"] == "reclaim"
    again = from_spec_dict(as_dict, intent_id=intent.intent_id, created_at=intent.created_at)
    assert again == intent


def test_plan_actions_v4_decision_becomes_an_intent() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    decision = {"decision_type": "add", "size_frac": 0.5, "reasons": ["buy_flag"], "state": "S2"}
    intent = from_plan_actions_v4(decision, POSITION, created_at=now)
    assert intent is not None
    assert intent.action is ActionType.ADD
    assert intent.size_frac == 0.5
    assert intent.position_id == "pos-7"
    assert intent.token_chain == "hyperliquid"
    assert intent.reason_codes == ("buy_flag",)
    assert intent.urgency is Urgency.MEDIUM
    assert intent.created_at == now


def test_plan_actions_v4_hold_is_not_published() -> None:
    assert from_plan_actions_v4({"decision_type": "hold", "size_frac": 0.0}, POSITION) is None


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        ({"size_frac": 0.5}, "decision_type"),
        ({"decision_type": "add"}, "size_frac"),
        ({"decision_type": "add", "size_frac": 1.5}, "size_frac"),
        ({"decision_type": "buy", "size_frac": 0.5}, "buy"),
        ({"decision_type": "add", "size_frac": 0.5, "urgency": "now"}, "now"),
    ],
)
def test_bad_legacy_decisions_name_the_problem(decision: dict[str, object], message: str) -> None:
    with pytest.raises(LegacyConversionError, match=message):
        from_plan_actions_v4(decision, POSITION)


def test_spec_dict_missing_fields_are_named() -> None:
    with pytest.raises(LegacyConversionError, match="position_id"):
        from_spec_dict({"action": "add", "size_frac": 0.1})
