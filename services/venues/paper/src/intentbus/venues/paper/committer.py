"""Commit the venue's changes: one journal entry per group of requests, in arrival order.

Every change goes through :meth:`Committer.commit`: its ``build`` runs on a
:class:`~intentbus.venues.paper.step.Step`; the step's entry is appended to the journal;
only then is the state changed, the events sent and the caller answered. While one entry
is being written, the requests that arrive meanwhile queue up and are then built on one
step and written as one entry (group commit): a place costs a journal write shared with
its neighbours, not one of its own. Mark updates and expiries are written alone, so the
orders one of them fills are never cut short by a group's size.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from intentbus.venues.paper.constants import MAX_ORDERS_PER_STEP
from intentbus.venues.paper.journal import Journal, JournalConflict
from intentbus.venues.paper.protocol import PaperEvent
from intentbus.venues.paper.records import JournalEntry, VenueState
from intentbus.venues.paper.step import Step

T = TypeVar("T")
log = logging.getLogger(__name__)
MAX_GROUP = 100


class Unavailable(RuntimeError):
    """Raise when the server cannot act now (halted, stopping, or its store failed)."""


@dataclass
class _Pending:
    build: Callable[[Step], Any]
    done: asyncio.Future[Any]
    groups: bool


class Committer:
    """The single writer of one venue's state."""

    def __init__(
        self,
        state: VenueState,
        venue: str,
        journal: Journal,
        publish: Callable[[Sequence[PaperEvent]], Awaitable[None]],
        applied: Callable[[JournalEntry], None],
    ) -> None:
        self._state = state
        self._venue = venue
        self._journal = journal
        self._publish = publish
        self._applied = applied
        self._pending: deque[_Pending] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()  # held while changing the state and sending its events
        self.refusal: str | None = "not started"  # why commits are refused, None: open
        self.conflict: str | None = None  # set when another writer took the journal

    def open(self) -> None:
        """Accept commits."""
        self.refusal = None

    async def close(self, reason: str) -> None:
        """Refuse new commits; fail the queued ones; wait for the write under way."""
        self.refusal = self.refusal or reason
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def commit(self, build: Callable[[Step], T], *, group: bool = False) -> T:
        """Run ``build`` on a step, store it, apply it, send its events; return its result.

        ``group``: it may share a journal entry with other requests. Raise
        :class:`Unavailable` when nothing could be stored (then nothing changed).
        """
        if self.refusal is not None:
            raise Unavailable(self.refusal)
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(build, done, group))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"paper-{self._venue}-commit")
        return await done

    async def _flush(self) -> None:
        async with self.lock:
            while self._pending:
                first = self._pending.popleft()
                batch = [first]
                while (
                    first.groups
                    and len(batch) < MAX_GROUP
                    and self._pending
                    and self._pending[0].groups
                ):
                    batch.append(self._pending.popleft())
                await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        if self.refusal is not None:
            _fail(batch, Unavailable(self.refusal))
            return
        step = Step(self._state, self._venue, datetime.now(UTC))
        built: list[tuple[_Pending, Any]] = []
        for index, pending in enumerate(batch):
            if built and len(step.orders) >= MAX_ORDERS_PER_STEP:
                self._pending.extendleft(reversed(batch[index:]))  # the next entry's
                break
            saved = step.checkpoint()
            try:
                built.append((pending, pending.build(step)))
            except Exception as exc:  # a bug in one request: the others go on
                step.rollback(saved)
                log.exception("paper venue %s: a change failed", self._venue)
                _fail([pending], exc)
        entry, events = step.finish()
        if entry is not None:
            try:
                seq = await self._journal.append(entry, self._state.journal_seq)
            except JournalConflict as exc:
                self.conflict = self.refusal = str(exc)
                _fail([p for p, _ in built], Unavailable(str(exc)))
                return
            except Exception as exc:
                error = Unavailable(f"the venue could not store the change: {exc!r}")
                _fail([p for p, _ in built], error)
                return
            self._state.apply(entry, seq)
            by_account: dict[str, list[PaperEvent]] = {}
            for event in events:
                by_account.setdefault(event.account, []).append(event)
            for account_events in by_account.values():  # one message per account and entry
                await self._publish(account_events)
            self._applied(entry)
        for pending, result in built:
            if not pending.done.done():
                pending.done.set_result(result)


def _fail(batch: list[_Pending], error: BaseException) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(error)
