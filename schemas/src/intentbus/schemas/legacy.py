"""Converters to and from the founding spec's dict shapes (migration phases 1-3)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from intentbus.schemas.codec import validated
from intentbus.schemas.enums import ActionType, Urgency
from intentbus.schemas.intent import DEFAULT_TTL, ExecutionIntent, new_intent_id

SPEC_FIELDS = (
    "action",
    "size_frac",
    "urgency",
    "priority",
    "max_slippage_bps",
    "reduce_only",
    "post_only",
    "reason_codes",
    "state",
    "prev_state",
    "a_final",
    "e_final",
    "position_id",
    "token_contract",
    "token_chain",
    "book_id",
    "timeframe",
    "max_leverage",
    "risk_reason",
)

_DEFAULT_PRIORITY = {
    Urgency.LOW: 25,
    Urgency.MEDIUM: 50,
    Urgency.HIGH: 75,
    Urgency.CRITICAL: 100,
}


class LegacyConversionError(ValueError):
    """Raise when a legacy dict cannot become a valid intent; the message names the field."""


def to_spec_dict(intent: ExecutionIntent) -> dict[str, Any]:
    """Return the founding spec's ``to_dict()`` shape (same keys, enum values as strings)."""
    return {
        "action": intent.action.value,
        "size_frac": intent.size_frac,
        "urgency": intent.urgency.value,
        "priority": intent.priority,
        "max_slippage_bps": intent.max_slippage_bps,
        "reduce_only": intent.reduce_only,
        "post_only": intent.post_only,
        "reason_codes": list(intent.reason_codes),
        "state": intent.state,
        "prev_state": intent.prev_state,
        "a_final": intent.a_final,
        "e_final": intent.e_final,
        "position_id": intent.position_id,
        "token_contract": intent.token_contract,
        "token_chain": intent.token_chain,
        "book_id": intent.book_id,
        "timeframe": intent.timeframe,
        "max_leverage": intent.max_leverage,
        "risk_reason": intent.risk_reason,
    }


def from_spec_dict(
    data: Mapping[str, Any],
    *,
    intent_id: str | None = None,
    created_at: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> ExecutionIntent:
    """Build an intent from the spec's ``to_dict()`` shape, adding id and deadline.

    Required keys are those the spec's ``from_dict`` indexes directly; a missing or
    invalid one raises :class:`LegacyConversionError` naming it.
    """
    required = (
        "action",
        "size_frac",
        "urgency",
        "priority",
        "state",
        "a_final",
        "e_final",
        "position_id",
        "token_contract",
        "token_chain",
        "book_id",
        "timeframe",
    )
    missing = [key for key in required if key not in data]
    if missing:
        raise LegacyConversionError(f"missing required field(s): {', '.join(missing)}")
    now = created_at or datetime.now(UTC)
    try:
        intent = ExecutionIntent(
            intent_id=intent_id or str(data.get("intent_id") or new_intent_id()),
            created_at=now,
            valid_until=now + ttl,
            action=ActionType(data["action"]),
            size_frac=float(data["size_frac"]),
            urgency=Urgency(data["urgency"]),
            priority=int(data["priority"]),
            max_slippage_bps=_opt_int(data.get("max_slippage_bps")),
            reduce_only=bool(data.get("reduce_only", False)),
            post_only=bool(data.get("post_only", False)),
            reason_codes=tuple(str(code) for code in data.get("reason_codes") or ()),
            state=str(data["state"]),
            prev_state=str(data.get("prev_state") or ""),
            a_final=float(data["a_final"]),
            e_final=float(data["e_final"]),
            position_id=str(data["position_id"]),
            token_contract=str(data["token_contract"]),
            token_chain=str(data["token_chain"]),
            book_id=str(data["book_id"]),
            timeframe=str(data["timeframe"]),
            max_leverage=_opt_float(data.get("max_leverage")),
            risk_reason=data.get("risk_reason"),
        )
        return validated(intent)
    except (ValueError, TypeError) as exc:
        raise LegacyConversionError(str(exc)) from exc


def from_plan_actions_v4(
    decision: Mapping[str, Any],
    position: Mapping[str, Any],
    *,
    intent_id: str | None = None,
    created_at: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> ExecutionIntent | None:
    """Convert one legacy ``plan_actions_v4`` decision dict (migration phase 2).

    ``decision`` has ``decision_type`` and ``size_frac`` and may carry any spec field;
    ``position`` supplies ``id``, ``token_contract``, ``token_chain``, ``book_id`` and
    ``timeframe`` where the decision lacks them. A ``hold`` decision returns ``None``:
    HOLD is never published.
    """
    if "decision_type" not in decision:
        raise LegacyConversionError("missing required field: decision_type")
    action = str(decision["decision_type"]).lower()
    if action == ActionType.HOLD.value:
        return None
    try:
        urgency = Urgency(decision.get("urgency", Urgency.MEDIUM.value))
    except ValueError as exc:
        raise LegacyConversionError(str(exc)) from exc
    merged: dict[str, Any] = {
        "action": action,
        "urgency": urgency.value,
        "priority": decision.get("priority", _DEFAULT_PRIORITY[urgency]),
        "state": decision.get("state", position.get("state", "")),
        "prev_state": decision.get("prev_state", position.get("prev_state", "")),
        "a_final": decision.get("a_final", 0.0),
        "e_final": decision.get("e_final", 0.0),
        "reason_codes": decision.get("reason_codes", decision.get("reasons", ())),
        "position_id": decision.get("position_id", position.get("id", position.get("position_id"))),
    }
    for key in ("token_contract", "token_chain", "book_id", "timeframe"):
        merged[key] = decision.get(key, position.get(key))
    for key in SPEC_FIELDS:
        if key not in merged and key in decision:
            merged[key] = decision[key]
    if "size_frac" not in decision:
        raise LegacyConversionError("missing required field: size_frac")
    merged["size_frac"] = decision["size_frac"]
    missing = [
        key
        for key, value in merged.items()
        if value is None
        and key in ("position_id", "token_contract", "token_chain", "book_id", "timeframe")
    ]
    if missing:
        raise LegacyConversionError(f"missing required field(s): {', '.join(missing)}")
    return from_spec_dict(merged, intent_id=intent_id, created_at=created_at, ttl=ttl)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
