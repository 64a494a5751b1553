"""The message contract: validation, golden fixtures, schema evolution, JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import msgspec
import pytest

from intentbus.schemas import (
    ActionType,
    DeadLetter,
    Drift,
    ExecutionIntent,
    ExecutionResult,
    Fill,
    HaltSwitch,
    Heartbeat,
    Mark,
    OrderUpdate,
    Position,
    build_intent,
    decode,
    encode,
    fill_id_for,
    result_id_for,
    validated,
)
from intentbus.schemas.jsonschema import default_dir, render_schemas

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "schemas" / "golden"
GOLDEN_TYPES: dict[str, type[msgspec.Struct]] = {
    "ExecutionIntent.json": ExecutionIntent,
    "ExecutionResult.json": ExecutionResult,
    "ExecutionResult.skipped.json": ExecutionResult,
    "OrderUpdate.json": OrderUpdate,
    "Fill.json": Fill,
    "Position.json": Position,
    "DeadLetter.json": DeadLetter,
    "Mark.json": Mark,
    "HaltSwitch.json": HaltSwitch,
    "Heartbeat.json": Heartbeat,
    "Drift.json": Drift,
}


def _golden_intent() -> dict[str, object]:
    loaded: dict[str, object] = json.loads((GOLDEN / "ExecutionIntent.json").read_text())
    return loaded


@pytest.mark.parametrize("name", sorted(GOLDEN_TYPES))
def test_golden_fixture_round_trips_byte_for_byte(name: str) -> None:
    raw = (GOLDEN / name).read_text().strip().encode()
    message = decode(raw, GOLDEN_TYPES[name])
    assert encode(message) == raw


def test_every_wire_message_has_a_golden_fixture() -> None:
    covered = {cls.__name__ for cls in GOLDEN_TYPES.values()}
    assert covered == {
        "ExecutionIntent",
        "ExecutionResult",
        "OrderUpdate",
        "Fill",
        "Position",
        "DeadLetter",
        "Mark",
        "HaltSwitch",
        "Heartbeat",
        "Drift",
    }


def test_committed_json_schemas_are_current() -> None:
    committed = {p.name: p.read_text() for p in default_dir().glob("*.schema.json")}
    assert committed == render_schemas(), "run `just schemas` and commit the result"


@pytest.mark.parametrize("name", sorted(GOLDEN_TYPES))
def test_golden_fixtures_satisfy_the_committed_json_schema(name: str) -> None:
    schema_name = GOLDEN_TYPES[name].__name__ + ".schema.json"
    schema = json.loads((default_dir() / schema_name).read_text())
    jsonschema.validate(json.loads((GOLDEN / name).read_text()), schema)


def test_json_schema_rejects_what_the_decoder_rejects() -> None:
    schema = json.loads((default_dir() / "ExecutionIntent.schema.json").read_text())
    bad = {**_golden_intent(), "size_frac": 1.5}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_decoder_ignores_unknown_fields_from_a_newer_producer() -> None:
    newer = {**_golden_intent(), "venue_hint": "maker", "new_block": {"x": 1}}
    intent = decode(json.dumps(newer), ExecutionIntent)
    assert intent.intent_id == "golden-intent-1"


def test_missing_optional_fields_take_their_defaults() -> None:
    minimal = {
        key: value
        for key, value in _golden_intent().items()
        if key
        in {
            "schema",
            "intent_id",
            "created_at",
            "valid_until",
            "action",
            "size_frac",
            "urgency",
            "priority",
            "position_id",
            "token_contract",
            "token_chain",
            "book_id",
            "timeframe",
        }
    }
    intent = decode(json.dumps(minimal), ExecutionIntent)
    assert intent.reduce_only is False
    assert intent.reason_codes == ()
    assert intent.max_leverage is None


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("size_frac", 1.5, "size_frac"),
        ("size_frac", -0.1, "size_frac"),
        ("priority", 101, "priority"),
        ("priority", -1, "priority"),
        ("urgency", "asap", "urgency"),
        ("action", "buy", "action"),
        ("max_slippage_bps", -5, "max_slippage_bps"),
        ("book_id", "main.sub", "book_id"),
        ("book_id", "a*", "book_id"),
        ("token_chain", "hyper liquid", "token_chain"),
        ("token_chain", "hl>", "token_chain"),
        ("intent_id", "", "intent_id"),
        ("position_id", "p.1", "position_id"),
        ("token_contract", "BT C", "token_contract"),
        ("token_contract", "BT\tC", "token_contract"),
        ("created_at", "2026-01-02T03:04:05", "created_at"),
        ("schema", "intentbus.intent.v999", "schema"),
    ],
)
def test_invalid_intents_are_rejected_with_the_field_named(
    field: str, value: object, fragment: str
) -> None:
    bad = {**_golden_intent(), field: value}
    with pytest.raises(msgspec.ValidationError) as info:
        decode(json.dumps(bad), ExecutionIntent)
    assert fragment in str(info.value)


def test_hold_is_never_a_valid_intent() -> None:
    with pytest.raises(msgspec.ValidationError, match="HOLD"):
        decode(json.dumps({**_golden_intent(), "action": "hold"}), ExecutionIntent)


def test_deadline_must_follow_creation() -> None:
    bad = {**_golden_intent(), "valid_until": "2026-01-02T03:04:05Z"}
    with pytest.raises(msgspec.ValidationError, match="valid_until"):
        decode(json.dumps(bad), ExecutionIntent)


def test_build_intent_validates_like_the_decoder() -> None:
    with pytest.raises(msgspec.ValidationError, match="size_frac"):
        build_intent(
            action=ActionType.ADD,
            size_frac=2.0,
            position_id="p",
            token_contract="BTC",
            token_chain="paper",
            book_id="main",
        )


def test_build_intent_sets_id_and_deadline() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    intent = build_intent(
        action="trim",
        size_frac=0.5,
        position_id="p",
        token_contract="BTC",
        token_chain="paper",
        book_id="main",
        created_at=now,
        ttl=timedelta(seconds=30),
    )
    assert intent.valid_until == now + timedelta(seconds=30)
    assert intent.intent_id
    assert intent.is_expired(now + timedelta(seconds=31))
    assert not intent.is_expired(now + timedelta(seconds=29))


MAX_ID = "i" * 128
MAX_VENUE = "v" * 64


@pytest.mark.parametrize(
    "intent_id", [MAX_ID, "x", "res-a", "a-b_c=d", "=" * 128, "-" * 124 + "abcd"]
)
def test_result_ids_stay_valid_for_every_valid_intent_id(intent_id: str) -> None:
    result_id = result_id_for(intent_id)
    assert 1 <= len(result_id) <= 128
    golden = decode((GOLDEN / "ExecutionResult.skipped.json").read_bytes().strip(), ExecutionResult)
    checked = validated(msgspec.structs.replace(golden, intent_id=intent_id, result_id=result_id))
    assert checked.result_id == result_id


def test_long_and_short_result_ids_never_collide() -> None:
    short = result_id_for("a")
    long = result_id_for("a" * 128)
    assert short == "res-a"
    assert long.startswith("res=")
    assert len({result_id_for(f"{n}" * 125) for n in range(10)}) == 10


@pytest.mark.parametrize(
    "venue_fill_id", ["118906512037719", "f" * 128, "a b/c", "x" * 61, "x" * 62]
)
def test_fill_ids_stay_valid_for_every_venue_fill_id(venue_fill_id: str) -> None:
    fill_id = fill_id_for(MAX_VENUE, venue_fill_id)
    assert 1 <= len(fill_id) <= 128
    golden = decode((GOLDEN / "Fill.json").read_bytes().strip(), Fill)
    checked = validated(
        msgspec.structs.replace(
            golden, venue=MAX_VENUE, venue_fill_id=venue_fill_id, fill_id=fill_id
        )
    )
    assert checked.fill_id == fill_id


def test_a_fill_whose_id_is_not_derived_is_refused() -> None:
    raw = json.loads((GOLDEN / "Fill.json").read_text())
    with pytest.raises(msgspec.ValidationError, match="fill_id"):
        decode(json.dumps({**raw, "fill_id": "fill-hyperliquid-1"}), Fill)


def test_a_result_whose_id_is_not_derived_is_refused() -> None:
    raw = json.loads((GOLDEN / "ExecutionResult.json").read_text())
    with pytest.raises(msgspec.ValidationError, match="result_id"):
        decode(json.dumps({**raw, "result_id": "res-other"}), ExecutionResult)


@pytest.mark.parametrize("value", ["s", 1, 2.5, True, None])
def test_result_metadata_takes_strings_numbers_booleans_and_null(value: object) -> None:
    raw = json.loads((GOLDEN / "ExecutionResult.json").read_text())
    result = decode(json.dumps({**raw, "metadata": {"k": value}}), ExecutionResult)
    assert result.metadata == {"k": value}


def test_result_metadata_refuses_nested_values() -> None:
    raw = json.loads((GOLDEN / "ExecutionResult.json").read_text())
    with pytest.raises(msgspec.ValidationError, match="metadata"):
        decode(json.dumps({**raw, "metadata": {"k": {"nested": 1}}}), ExecutionResult)


def test_old_result_tags_are_refused_not_misread() -> None:
    raw = json.loads((GOLDEN / "ExecutionResult.json").read_text())
    with pytest.raises(msgspec.ValidationError, match="schema"):
        decode(json.dumps({**raw, "schema": "intentbus.result.v1"}), ExecutionResult)
