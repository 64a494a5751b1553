"""Issue 8: the converters behind ``intentbus publish --file`` are as strict as the wire.

One test per broken case found: wrong types are errors naming the line and field, HOLD
is skipped and counted in every shape, unknown keys are warnings, ids come from the
line's content (a re-run is deduplicated), and ``publish`` needs ``--size-frac``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from intentbus.cli.intents_input import parse_lines
from intentbus.command.app import build_app
from intentbus.schemas import build_intent, encode
from intentbus.schemas.legacy import (
    LegacyConversionError,
    convert_plan_actions_v4,
    convert_spec_dict,
    to_spec_dict,
)

runner = CliRunner()


def _spec(**changes: Any) -> dict[str, Any]:
    intent = build_intent(
        action="add",
        size_frac=0.5,
        position_id="p1",
        token_contract="ETH",
        token_chain="paper",
        book_id="main",
        state="S1",
        reason_codes=("buy_flag",),
    )
    return {**to_spec_dict(intent), **changes}


def _legacy(**changes: Any) -> dict[str, Any]:
    line = {
        "decision_type": "add",
        "size_frac": 0.5,
        "id": "p3",
        "token_contract": "SOL",
        "token_chain": "paper",
        "book_id": "b",
        "timeframe": "1h",
        "state": "S1",
    }
    return {**line, **changes}


SHAPES = [pytest.param(_spec, id="spec"), pytest.param(_legacy, id="legacy")]
WRONG_TYPES = [
    ("reduce_only", "false", "`bool`"),
    ("reason_codes", "buy_flag", "`array"),
    ("state", None, "`str`"),
    ("size_frac", True, "`float`"),
    ("priority", 50.9, "`int"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("key", "value", "expected"), WRONG_TYPES)
def test_a_wrong_type_is_an_error_naming_the_line_and_field(
    shape: Any, key: str, value: object, expected: str
) -> None:
    good = json.dumps(shape())
    bad = json.dumps(shape(**{key: value}))
    parsed = parse_lines([good, bad])
    assert len(parsed.intents) == 1
    assert len(parsed.errors) == 1
    error = parsed.errors[0]
    assert error.line == 2
    assert "line 2" in error.error
    assert f"$.{key}" in error.error
    assert expected in error.error


def test_converters_never_coerce() -> None:
    with pytest.raises(LegacyConversionError, match=r"\$\.reduce_only"):
        convert_spec_dict(_spec(reduce_only="false"))
    with pytest.raises(LegacyConversionError, match=r"\$\.reasons"):
        convert_plan_actions_v4(_legacy(reasons="buy_flag"), {})
    with pytest.raises(LegacyConversionError, match=r"\$\.priority"):
        convert_plan_actions_v4(_legacy(priority=50.9), _legacy())
    with pytest.raises(LegacyConversionError, match=r"\$\.size_frac"):
        convert_plan_actions_v4(_legacy(size_frac=True), _legacy())


@pytest.mark.parametrize("shape", SHAPES)
def test_an_unknown_key_is_a_warning_with_a_suggestion(shape: Any) -> None:
    parsed = parse_lines([json.dumps(shape(reduceOnly=True))])
    assert parsed.errors == []
    assert len(parsed.intents) == 1
    assert parsed.intents[0].reduce_only is False
    [warning] = parsed.warnings
    assert warning.line == 1
    assert "`reduceOnly`" in warning.warning
    assert "reduce_only" in warning.warning


def test_hold_is_skipped_and_counted_in_every_shape() -> None:
    contract_hold = json.loads(encode(build_intent(**_flags())))
    contract_hold["action"] = "hold"
    lines = [
        json.dumps(_spec(action="hold")),
        json.dumps(_legacy(decision_type="hold")),
        json.dumps(contract_hold),
        json.dumps(_spec()),
    ]
    parsed = parse_lines(lines)
    assert parsed.errors == []
    assert parsed.hold_lines == [1, 2, 3]
    assert len(parsed.intents) == 1
    assert convert_spec_dict(_spec(action="hold")).is_hold
    assert convert_plan_actions_v4(_legacy(decision_type="HOLD"), {}).is_hold


def test_a_spec_hold_does_not_block_the_file() -> None:
    parsed = parse_lines([json.dumps(_spec(action="hold")), json.dumps(_legacy())])
    assert parsed.errors == []
    assert parsed.holds == 1
    assert [i.position_id for i in parsed.intents] == ["p3"]


@pytest.mark.parametrize("shape", SHAPES)
def test_ids_are_derived_from_the_line_content(shape: Any) -> None:
    lines = [json.dumps(shape()), json.dumps(shape(size_frac=0.25))]
    first = parse_lines(lines)
    again = parse_lines(lines)
    ids = [i.intent_id for i in first.intents]
    assert ids == [i.intent_id for i in again.intents]
    assert len(set(ids)) == 2
    assert first.intents[0].created_at <= again.intents[0].created_at


def test_an_id_given_in_the_line_is_kept() -> None:
    parsed = parse_lines([json.dumps(_spec(intent_id="mine-1"))])
    assert parsed.intents[0].intent_id == "mine-1"


def test_a_repeated_line_is_warned_about() -> None:
    line = json.dumps(_spec())
    parsed = parse_lines([line, line])
    assert len(parsed.intents) == 2
    assert parsed.intents[0].intent_id == parsed.intents[1].intent_id
    assert [w.line for w in parsed.warnings] == [2]
    assert "line 1" in parsed.warnings[0].warning


def _flags() -> dict[str, Any]:
    return {
        "action": "add",
        "size_frac": 0.5,
        "position_id": "p9",
        "token_contract": "ETH",
        "token_chain": "paper",
        "book_id": "main",
    }


BASE = ["publish", "--position", "p9", "--symbol", "ETH", "--venue", "paper", "--book", "m"]


@pytest.mark.parametrize("action", ["add", "reclaim", "trim"])
def test_publish_without_size_frac_is_refused_before_connecting(action: str) -> None:
    # No server at this URL: the command must fail on the flags, not on the connection.
    url = ["--nats-url", "nats://127.0.0.1:1"]
    result = runner.invoke(build_app(), [*BASE, "--action", action, *url])
    assert result.exit_code == 2
    assert "--size-frac is required" in result.output
    zero = runner.invoke(build_app(), [*BASE, "--action", action, "--size-frac", "0", *url])
    assert zero.exit_code == 2
    assert "greater than 0" in zero.output
