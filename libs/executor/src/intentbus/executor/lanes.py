"""The intents in hand in their position lanes, and how a lane waits for an answer.

A lane waits (the ledger down, the venue unreachable) by retrying with backoff, with
the intent's delivery kept alive, never by sending the intent back. A wait ends when
the call answers, at the intent's deadline (:class:`Expired`) or when this replica
gives the intent's partition up (:class:`Abandoned`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from intentbus.bus import LedgerError, LedgerUnavailable
from intentbus.executor.settings import RuntimeSettings, RuntimeStats
from intentbus.schemas import ExecutionIntent

log = logging.getLogger(__name__)
T = TypeVar("T")


class Expired(Exception):
    """The intent's deadline passed while it waited."""


class Abandoned(Exception):
    """This replica gave the intent's partition up while the intent waited."""


def _always() -> bool:
    return True


class Lanes:
    """Know each intent in hand (its stream sequence, its partition still ours) and wait."""

    def __init__(self, settings: RuntimeSettings, stats: RuntimeStats) -> None:
        self._settings = settings
        self._stats = stats
        self._alive: dict[str, Callable[[], bool]] = {}
        self._seq: dict[str, int] = {}  # intents in hand -> their INTENTS stream sequence

    @contextmanager
    def holding(self, intent_id: str, seq: int, alive: Callable[[], bool]) -> Iterator[None]:
        """Hold an intent in hand while the block runs."""
        self._alive[intent_id] = alive
        self._seq[intent_id] = seq
        try:
            yield
        finally:
            self._alive.pop(intent_id, None)
            self._seq.pop(intent_id, None)

    def seq(self, intent_id: str) -> int:
        """Return the INTENTS stream sequence of an intent in hand (0: not in hand)."""
        return self._seq.get(intent_id, 0)

    def alive(self, intent_id: str) -> bool:
        """Say whether this replica still owns the partition of an intent in hand."""
        return self._alive.get(intent_id, _always)()

    async def waiting(
        self, intent: ExecutionIntent, what: str, call: Callable[[], Awaitable[T]]
    ) -> T:
        """Retry ``call`` with backoff until it answers; raise :class:`Expired` at the deadline."""
        delay = self._settings.retry_s
        while True:
            if not self.alive(intent.intent_id):
                raise Abandoned(f"gave up waiting for {what}: the partition was handed over")
            try:
                return await call()
            except (LedgerUnavailable, LedgerError, OSError, TimeoutError) as exc:
                if intent.is_expired():
                    raise Expired(f"{what} did not answer before the deadline: {exc}") from exc
                log.warning("waiting for %s for intent %s: %s", what, intent.intent_id, exc)
                self._stats.waits += 1
            except Exception as exc:
                if intent.is_expired():
                    raise Expired(f"{what} failed until the deadline: {exc!r}") from exc
                log.exception("%s failed for intent %s; retrying", what, intent.intent_id)
                self._stats.waits += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.retry_max_s)
