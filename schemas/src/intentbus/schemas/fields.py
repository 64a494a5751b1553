"""Constrained field types used across the contract.

Subject-safety of ids is checked in each Struct's ``__post_init__`` with one regex over
all its ids at once (:func:`check_ids`), not with a ``pattern`` per field: msgspec runs a
field pattern through Python's ``re`` for every field, which made decoding an intent
~3.5x slower. The committed JSON Schema still states each pattern for other producers.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated

from msgspec import Meta

SUBJECT_TOKEN_PATTERN = r"^[A-Za-z0-9_=-]{1,64}$"
ID_PATTERN = r"^[A-Za-z0-9_=-]{1,128}$"
SYMBOL_PATTERN = r"^\S{1,128}$"

_SAFE = r"[A-Za-z0-9_=-]+"
_SAFE_ONE = re.compile(_SAFE)
_SAFE_JOINED = re.compile(rf"{_SAFE}(?:\x1f{_SAFE})*")

SubjectToken = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        extra_json_schema={"pattern": SUBJECT_TOKEN_PATTERN},
        description="Subject-safe token: letters, digits, '_', '-', '='; "
        "no '.', '*', '>' or spaces.",
    ),
]
Identifier = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        extra_json_schema={"pattern": ID_PATTERN},
        description="Non-empty, subject- and KV-key-safe identifier.",
    ),
]
Symbol = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        extra_json_schema={"pattern": SYMBOL_PATTERN},
        description="Venue symbol or token contract (no whitespace).",
    ),
]
VenueRef = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        extra_json_schema={"pattern": SYMBOL_PATTERN},
        description="A venue's own id (order id, fill id, account): printable, no whitespace.",
    ),
]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
Priority = Annotated[int, Meta(ge=0, le=100)]
Bps = Annotated[int, Meta(ge=0, le=10_000)]
NonNegative = Annotated[float, Meta(ge=0.0)]
Positive = Annotated[float, Meta(gt=0.0)]
Timestamp = Annotated[datetime, Meta(tz=True, description="RFC 3339 time with a UTC offset.")]
MetadataValue = str | int | float | bool | None
Metadata = dict[str, MetadataValue]
ID_MAX_LENGTH = 128


def derived_id(prefix: str, *parts: str) -> str:
    """Return ``<prefix>-<parts joined by '-'>`` when it is a safe id of at most 128 chars.

    Otherwise return ``<prefix>=`` and a SHA-256 digest of the parts: the readable form
    has ``-`` right after the prefix and the digest form ``=``, so the two cannot
    collide, and the result is a valid id for every input.
    """
    readable = "-".join((prefix, *parts))
    if len(readable) <= ID_MAX_LENGTH and all(parts) and ids_are_safe(*parts):
        return readable
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"{prefix}={digest}"[:ID_MAX_LENGTH]


def ids_are_safe(*values: str) -> bool:
    """Say whether every value is a subject-safe id (one regex call for all of them)."""
    return _SAFE_JOINED.fullmatch("\x1f".join(values)) is not None


def check_ids(message: object, names: tuple[str, ...], symbol: str | None = None) -> None:
    """Raise ``ValueError`` naming the first id field that is not subject-safe.

    ``None`` values (optional ids) pass. ``symbol`` names a field that must only be free
    of whitespace.
    """
    values = [getattr(message, name) for name in names]
    if not ids_are_safe(*[value for value in values if value is not None]):
        for name, value in zip(names, values, strict=True):
            if value is not None and _SAFE_ONE.fullmatch(value) is None:
                raise ValueError(
                    f"`{name}` {value!r} is not subject-safe: use letters, digits, '_', '-' "
                    "or '=' (no '.', '*', '>' or whitespace)"
                )
    if symbol is not None:
        value = getattr(message, symbol)
        if value is not None and (" " in value or not value.isprintable()):
            raise ValueError(f"`{symbol}` {value!r} must not contain whitespace")
