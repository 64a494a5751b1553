"""Operator input: JSON Lines in the contract, spec-dict and legacy shapes."""

from __future__ import annotations

import json

from intentbus.cli.intents_input import parse_lines
from intentbus.schemas import ActionType, build_intent, encode
from intentbus.schemas.legacy import to_spec_dict


def _intent_line() -> str:
    intent = build_intent(
        action="trim",
        size_frac=0.25,
        position_id="p1",
        token_contract="BTC",
        token_chain="paper",
        book_id="main",
    )
    return encode(intent).decode()


def test_each_shape_is_accepted_and_holds_are_dropped() -> None:
    spec_shape = to_spec_dict(
        build_intent(
            action="add",
            size_frac=0.5,
            position_id="p2",
            token_contract="ETH",
            token_chain="paper",
            book_id="main",
            state="S1",
            a_final=0.2,
            e_final=0.1,
        )
    )
    legacy = {
        "decision_type": "exit",
        "size_frac": 1.0,
        "id": "p3",
        "token_contract": "SOL",
        "token_chain": "paper",
        "book_id": "b",
        "timeframe": "1h",
    }
    hold = {**legacy, "decision_type": "hold"}
    lines = [_intent_line(), json.dumps(spec_shape), "", json.dumps(legacy), json.dumps(hold)]
    parsed = parse_lines(lines)
    intents = parsed.intents
    assert parsed.errors == []
    assert parsed.hold_lines == [5]
    assert [i.action for i in intents] == [ActionType.TRIM, ActionType.ADD, ActionType.EXIT]
    assert intents[2].position_id == "p3"


def test_bad_lines_are_reported_by_number_with_the_reason() -> None:
    bad_range = json.loads(_intent_line())
    bad_range["priority"] = 500
    lines = [_intent_line(), "{oops", json.dumps(bad_range), "[1, 2]"]
    parsed = parse_lines(lines)
    intents, errors = parsed.intents, parsed.errors
    assert len(intents) == 1
    assert [e.line for e in errors] == [2, 3, 4]
    assert "priority" in errors[1].error
    assert "object" in errors[2].error
