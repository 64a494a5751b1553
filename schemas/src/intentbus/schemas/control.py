"""Control-plane messages: the halt switch and service heartbeats."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from intentbus.schemas.enums import ActionType
from intentbus.schemas.fields import SubjectToken, Timestamp, check_ids

HALT_SWITCH_TAG = "intentbus.halt.v1"
HEARTBEAT_TAG = "intentbus.heartbeat.v1"


class HaltMode(StrEnum):
    """What a halt switch lets through, from least to most restrictive."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    @property
    def allowed(self) -> frozenset[ActionType]:
        """Return the actions this mode lets executors trade."""
        return _ALLOWED[self]

    @property
    def rank(self) -> int:
        """Return how restrictive the mode is (0: active)."""
        return _RANK[self]


_ALLOWED = {
    HaltMode.ACTIVE: frozenset(ActionType) - {ActionType.HOLD},
    HaltMode.REDUCING: frozenset({ActionType.TRIM, ActionType.EXIT, ActionType.EMERGENCY_EXIT}),
    HaltMode.HALTED: frozenset({ActionType.EMERGENCY_EXIT}),
}
_RANK = {HaltMode.ACTIVE: 0, HaltMode.REDUCING: 1, HaltMode.HALTED: 2}


class HaltSwitch(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=HALT_SWITCH_TAG
):
    """One halt switch, kept in the ``HALT`` KV bucket under its scope's key.

    ``venue`` and ``book`` both empty: the global switch; ``venue`` only: that venue's;
    ``book`` only: that book's on every venue; both: that book on that venue. The most
    restrictive switch that covers an intent decides.
    """

    mode: HaltMode
    reason: str
    set_by: str
    set_at: Timestamp
    venue: str = ""
    book: str = ""

    def __post_init__(self) -> None:
        check_ids(self, tuple(name for name in ("venue", "book") if getattr(self, name)))

    @property
    def scope(self) -> str:
        """Return the switch's scope in words (``global``, ``venue paper``, ...)."""
        parts = [f"venue {self.venue}"] if self.venue else []
        parts += [f"book {self.book}"] if self.book else []
        return " ".join(parts) or "global"


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=HEARTBEAT_TAG):
    """Say that one service instance is alive; published every ``interval_s``."""

    service: SubjectToken
    instance: SubjectToken
    version: str
    started_at: Timestamp
    at: Timestamp
    interval_s: float
    venue: str = ""
    book: str = ""
    last_error: str | None = None

    def __post_init__(self) -> None:
        check_ids(self, ("service", "instance"))

    @property
    def uptime_s(self) -> float:
        """Return the seconds since the instance started, as of this beat."""
        return (self.at - self.started_at).total_seconds()
