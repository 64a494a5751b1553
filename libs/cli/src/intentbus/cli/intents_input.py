"""Read intents from operator input: flags, or JSON Lines (contract or spec dict shape)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from intentbus.schemas import ExecutionIntent, decode
from intentbus.schemas.legacy import LegacyConversionError, from_plan_actions_v4, from_spec_dict


@dataclass(frozen=True)
class InputError:
    """A line of input that is not a valid intent."""

    line: int
    error: str


def parse_line(text: str) -> ExecutionIntent | None:
    """Parse one JSON line into an intent.

    Accepted shapes: a contract message (has ``"schema"``), the founding spec's
    ``to_dict()`` shape, or a legacy ``plan_actions_v4`` decision merged with its position
    fields (has ``"decision_type"``; a hold returns ``None``).
    """
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("each line must be a JSON object")
    if "schema" in raw:
        return decode(text, ExecutionIntent)
    if "decision_type" in raw:
        return from_plan_actions_v4(raw, raw)
    return from_spec_dict(raw)


def parse_lines(lines: Iterable[str]) -> tuple[list[ExecutionIntent], list[InputError], int]:
    """Parse every non-blank line; return intents, errors and the number of holds dropped."""
    intents: list[ExecutionIntent] = []
    errors: list[InputError] = []
    holds = 0
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            intent = parse_line(text)
        except (ValueError, msgspec.MsgspecError, LegacyConversionError) as exc:
            errors.append(InputError(number, str(exc)))
            continue
        if intent is None:
            holds += 1
        else:
            intents.append(intent)
    return intents, errors, holds
