"""Read intents from operator input: JSON Lines (contract, spec dict or legacy shape).

Every shape is as strict as the wire decoder (a wrong type is an error naming the line
and the field), HOLD is skipped and counted the same in every shape, unknown keys are
warnings, and ids not given are derived from the line's content, so publishing the same
file again is deduplicated by the stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from intentbus.schemas import ActionType, ExecutionIntent, decode
from intentbus.schemas.legacy import (
    Conversion,
    LegacyConversionError,
    convert_plan_actions_v4,
    convert_spec_dict,
)


@dataclass(frozen=True)
class InputError:
    """A line of input that is not a valid intent."""

    line: int
    error: str


@dataclass(frozen=True)
class InputWarning:
    """Something about a valid line the operator should see (an unknown key, a repeat)."""

    line: int
    warning: str


@dataclass
class ParsedInput:
    """What a file held: intents to publish, errors, warnings and the HOLD lines skipped."""

    intents: list[ExecutionIntent] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    warnings: list[InputWarning] = field(default_factory=list)
    hold_lines: list[int] = field(default_factory=list)

    @property
    def holds(self) -> int:
        """Return how many HOLD lines were skipped."""
        return len(self.hold_lines)


def parse_line(text: str) -> Conversion:
    """Parse one JSON line; ``Conversion.intent`` is ``None`` for a HOLD.

    Accepted shapes: a contract message (has ``"schema"``), the founding spec's
    ``to_dict()`` shape, or a legacy ``plan_actions_v4`` decision merged with its position
    fields (has ``"decision_type"``).
    """
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("each line must be a JSON object")
    if "schema" in raw:
        if raw.get("action") == ActionType.HOLD.value:
            return Conversion(None)
        return Conversion(decode(text, ExecutionIntent))
    if "decision_type" in raw:
        return convert_plan_actions_v4(raw, raw)
    return convert_spec_dict(raw)


def parse_lines(lines: Iterable[str]) -> ParsedInput:
    """Parse every non-blank line (numbered from 1)."""
    parsed = ParsedInput()
    first_line_of: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            converted = parse_line(text)
        except (ValueError, msgspec.MsgspecError, LegacyConversionError) as exc:
            parsed.errors.append(InputError(number, f"line {number}: {exc}"))
            continue
        parsed.warnings.extend(InputWarning(number, w) for w in converted.warnings)
        intent = converted.intent
        if intent is None:
            parsed.hold_lines.append(number)
            continue
        first = first_line_of.setdefault(intent.intent_id, number)
        if first != number:
            parsed.warnings.append(
                InputWarning(
                    number,
                    f"same intent id as line {first} ({intent.intent_id}): "
                    "the stream keeps only the first",
                )
            )
        parsed.intents.append(intent)
    return parsed
