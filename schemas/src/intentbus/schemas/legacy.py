"""Converters to and from the founding spec's dict shapes (migration phases 1-3).

They are as strict as the wire decoder: a value of the wrong type is an error naming the
field (``"false"`` is not a bool, ``50.9`` is not a priority, ``null`` is not a state,
``"buy_flag"`` is not a list of reason codes). HOLD is treated the same in every shape:
the conversion returns no intent (the caller counts it; HOLD is never published). Keys
the shape does not know are reported as warnings (a typo such as ``reduceOnly`` is never
dropped without a word). An intent id not given is derived from the input's content, so
converting the same input again gives the same id and the stream deduplicates a re-run.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from intentbus.schemas.codec import validated
from intentbus.schemas.enums import ActionType, Urgency
from intentbus.schemas.fields import derived_id
from intentbus.schemas.intent import DEFAULT_TTL, ExecutionIntent

log = logging.getLogger(__name__)

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
SPEC_KEYS = frozenset((*SPEC_FIELDS, "intent_id"))
LEGACY_DECISION_KEYS = frozenset((*SPEC_FIELDS, "intent_id", "decision_type", "reasons"))
LEGACY_POSITION_KEYS = frozenset(
    {"id", "position_id", "token_contract", "token_chain", "book_id", "timeframe", "state"}
    | {"prev_state"}
)

_DEFAULT_PRIORITY = {
    Urgency.LOW: 25,
    Urgency.MEDIUM: 50,
    Urgency.HIGH: 75,
    Urgency.CRITICAL: 100,
}


# The keys the spec's ``from_dict`` indexes directly.
_SPEC_REQUIRED = (
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


class LegacyConversionError(ValueError):
    """Raise when a legacy dict cannot become a valid intent; the message names the field."""


class _SpecShape(msgspec.Struct, kw_only=True):
    """The spec's ``to_dict()`` shape with the types its dataclass declares."""

    action: str
    size_frac: float
    urgency: str
    priority: int
    state: str
    a_final: float
    e_final: float
    position_id: str
    token_contract: str
    token_chain: str
    book_id: str
    timeframe: str
    max_slippage_bps: int | None = None
    reduce_only: bool = False
    post_only: bool = False
    reason_codes: list[str] = msgspec.field(default_factory=list)
    prev_state: str = ""
    max_leverage: float | None = None
    risk_reason: str | None = None
    intent_id: str | None = None


class _LegacyDecision(msgspec.Struct, kw_only=True):
    """A ``plan_actions_v4`` decision: the keys it must have, typed."""

    decision_type: str
    size_frac: float
    urgency: str = Urgency.MEDIUM.value
    priority: int | None = None
    reasons: list[str] | None = None
    reason_codes: list[str] | None = None


class _LegacyPosition(msgspec.Struct, kw_only=True):
    """The position fields a legacy decision borrows, typed."""

    id: str | None = None
    position_id: str | None = None
    token_contract: str | None = None
    token_chain: str | None = None
    book_id: str | None = None
    timeframe: str | None = None
    state: str | None = None
    prev_state: str | None = None


@dataclass(frozen=True)
class Conversion:
    """One converted input: the intent (``None`` for a HOLD) and warnings about the input."""

    intent: ExecutionIntent | None
    warnings: tuple[str, ...] = ()

    @property
    def is_hold(self) -> bool:
        """Say whether the input was a HOLD (nothing to publish)."""
        return self.intent is None


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


def content_id(prefix: str, *parts: Mapping[str, Any]) -> str:
    """Return an intent id derived from the content of ``parts`` (same content, same id)."""
    try:
        canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError) as exc:
        raise LegacyConversionError(f"input is not plain JSON data: {exc}") from exc
    return derived_id(prefix, hashlib.sha256(canonical.encode()).hexdigest()[:40])


def unknown_key_warnings(data: Mapping[str, Any], known: frozenset[str]) -> tuple[str, ...]:
    """Return one warning per key of ``data`` not in ``known``, with a close match if any."""
    found = []
    for key in data:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key).lower(), sorted(known), n=1, cutoff=0.75)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        found.append(f"unknown key `{key}` ignored{hint}")
    return tuple(found)


def _strict(data: Mapping[str, Any], shape: type[Any]) -> Any:
    if not isinstance(data, Mapping):
        raise LegacyConversionError(f"expected an object, got {type(data).__name__}")
    try:
        return msgspec.convert(dict(data), shape, strict=True)
    except msgspec.ValidationError as exc:
        raise LegacyConversionError(str(exc)) from exc


def convert_spec_dict(
    data: Mapping[str, Any],
    *,
    intent_id: str | None = None,
    created_at: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
    id_prefix: str = "spec",
) -> Conversion:
    """Convert the spec's ``to_dict()`` shape; a ``hold`` gives ``Conversion(None)``.

    Every value must have the spec's type (a wrong one raises
    :class:`LegacyConversionError` naming the field). Without ``intent_id`` (argument or
    key) the id is derived from the content.
    """
    if isinstance(data, Mapping):
        missing = [key for key in _SPEC_REQUIRED if key not in data]
        if missing:
            raise LegacyConversionError(f"missing required field(s): {', '.join(missing)}")
    shape: _SpecShape = _strict(data, _SpecShape)
    warnings = unknown_key_warnings(data, SPEC_KEYS)
    try:
        action = ActionType(shape.action)
        urgency = Urgency(shape.urgency)
    except ValueError as exc:
        raise LegacyConversionError(str(exc)) from exc
    if action is ActionType.HOLD:
        return Conversion(None, warnings)
    now = created_at or datetime.now(UTC)
    try:
        intent = ExecutionIntent(
            intent_id=intent_id or shape.intent_id or content_id(id_prefix, data),
            created_at=now,
            valid_until=now + ttl,
            action=action,
            size_frac=shape.size_frac,
            urgency=urgency,
            priority=shape.priority,
            max_slippage_bps=shape.max_slippage_bps,
            reduce_only=shape.reduce_only,
            post_only=shape.post_only,
            reason_codes=tuple(shape.reason_codes),
            state=shape.state,
            prev_state=shape.prev_state,
            a_final=shape.a_final,
            e_final=shape.e_final,
            position_id=shape.position_id,
            token_contract=shape.token_contract,
            token_chain=shape.token_chain,
            book_id=shape.book_id,
            timeframe=shape.timeframe,
            max_leverage=shape.max_leverage,
            risk_reason=shape.risk_reason,
        )
        return Conversion(validated(intent), warnings)
    except (ValueError, TypeError) as exc:
        raise LegacyConversionError(str(exc)) from exc


def convert_plan_actions_v4(
    decision: Mapping[str, Any],
    position: Mapping[str, Any],
    *,
    intent_id: str | None = None,
    created_at: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> Conversion:
    """Convert one legacy ``plan_actions_v4`` decision dict (migration phase 2).

    ``decision`` has ``decision_type`` and ``size_frac`` and may carry any spec field;
    ``position`` supplies ``id``, ``token_contract``, ``token_chain``, ``book_id`` and
    ``timeframe`` where the decision lacks them. A ``hold`` gives ``Conversion(None)``.
    Without ``intent_id`` the id is derived from the decision and position content.
    """
    typed: _LegacyDecision = _strict(_pick(decision, _LegacyDecision), _LegacyDecision)
    where: _LegacyPosition = _strict(_pick(position, _LegacyPosition), _LegacyPosition)
    if decision is position:
        warnings = unknown_key_warnings(decision, LEGACY_DECISION_KEYS | LEGACY_POSITION_KEYS)
    else:
        warnings = unknown_key_warnings(decision, LEGACY_DECISION_KEYS)
        warnings += unknown_key_warnings(position, LEGACY_POSITION_KEYS)
    try:
        urgency = Urgency(typed.urgency)
    except ValueError as exc:
        raise LegacyConversionError(str(exc)) from exc
    if typed.decision_type.lower() == ActionType.HOLD.value:
        return Conversion(None, warnings)
    reasons = typed.reason_codes if typed.reason_codes is not None else typed.reasons
    merged: dict[str, Any] = {
        "action": typed.decision_type.lower(),
        "size_frac": typed.size_frac,
        "urgency": urgency.value,
        "priority": typed.priority if typed.priority is not None else _DEFAULT_PRIORITY[urgency],
        "state": decision.get("state", where.state if where.state is not None else ""),
        "prev_state": decision.get(
            "prev_state", where.prev_state if where.prev_state is not None else ""
        ),
        "a_final": decision.get("a_final", 0.0),
        "e_final": decision.get("e_final", 0.0),
        "reason_codes": reasons or [],
        "position_id": decision.get("position_id", where.id or where.position_id),
    }
    for key in ("token_contract", "token_chain", "book_id", "timeframe"):
        merged[key] = decision.get(key, getattr(where, key))
    for key in SPEC_FIELDS:
        if key not in merged and key in decision:
            merged[key] = decision[key]
    missing = [
        key
        for key in ("position_id", "token_contract", "token_chain", "book_id", "timeframe")
        if merged[key] is None
    ]
    if missing:
        raise LegacyConversionError(f"missing required field(s): {', '.join(missing)}")
    given_id = intent_id or decision.get("intent_id")
    if given_id is not None and not isinstance(given_id, str):
        raise LegacyConversionError("Expected `str`, got a non-string - at `$.intent_id`")
    converted = convert_spec_dict(
        merged,
        intent_id=given_id or content_id("legacy", decision, position),
        created_at=created_at,
        ttl=ttl,
    )
    return Conversion(converted.intent, warnings)


def _pick(data: Mapping[str, Any], shape: type[msgspec.Struct]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise LegacyConversionError(f"expected an object, got {type(data).__name__}")
    fields = set(shape.__struct_fields__)
    return {key: value for key, value in data.items() if key in fields}


def from_spec_dict(
    data: Mapping[str, Any],
    *,
    intent_id: str | None = None,
    created_at: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> ExecutionIntent | None:
    """Convert the spec's ``to_dict()`` shape (migration phase 2); ``None`` for a HOLD.

    Unknown keys are logged as warnings; see :func:`convert_spec_dict`.
    """
    converted = convert_spec_dict(data, intent_id=intent_id, created_at=created_at, ttl=ttl)
    for warning in converted.warnings:
        log.warning("spec dict: %s", warning)
    return converted.intent


def from_plan_actions_v4(
    decision: Mapping[str, Any],
    position: Mapping[str, Any],
    *,
    intent_id: str | None = None,
    created_at: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> ExecutionIntent | None:
    """Convert one legacy decision; ``None`` for a HOLD (see :func:`convert_plan_actions_v4`)."""
    converted = convert_plan_actions_v4(
        decision, position, intent_id=intent_id, created_at=created_at, ttl=ttl
    )
    for warning in converted.warnings:
        log.warning("plan_actions_v4 decision: %s", warning)
    return converted.intent
