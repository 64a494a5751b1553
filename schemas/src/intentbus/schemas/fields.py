"""Constrained field types used across the contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta

SUBJECT_TOKEN_PATTERN = r"^[A-Za-z0-9_=-]{1,64}$"
ID_PATTERN = r"^[A-Za-z0-9_=-]{1,128}$"

SubjectToken = Annotated[
    str,
    Meta(
        pattern=SUBJECT_TOKEN_PATTERN,
        description="Subject-safe token: letters, digits, '_', '-', '='; "
        "no '.', '*', '>' or spaces.",
    ),
]
Identifier = Annotated[
    str,
    Meta(pattern=ID_PATTERN, description="Non-empty, subject- and KV-key-safe identifier."),
]
Symbol = Annotated[str, Meta(pattern=r"^\S{1,128}$", description="Venue symbol or token contract.")]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
Priority = Annotated[int, Meta(ge=0, le=100)]
Bps = Annotated[int, Meta(ge=0, le=10_000)]
NonNegative = Annotated[float, Meta(ge=0.0)]
Positive = Annotated[float, Meta(gt=0.0)]
Timestamp = Annotated[datetime, Meta(tz=True, description="RFC 3339 time with a UTC offset.")]
