"""Keep the intents in hand alive at the server while their lanes work on them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from nats.aio.msg import Msg


class KeepAlive:
    """Tell the server every ``every_s`` that the messages in hand are being worked on.

    One timer for all of them, not a task per message: most intents are done long
    before their first beat is due.
    """

    def __init__(self, every_s: float) -> None:
        self._every_s = every_s
        self._in_hand: dict[int, tuple[float, Msg]] = {}
        self._beats: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def holding(self, msg: Msg) -> Iterator[None]:
        """Keep ``msg`` alive while inside."""
        key = id(msg)
        self._in_hand[key] = (time.monotonic(), msg)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._every_s, self._beat)
        try:
            yield
        finally:
            del self._in_hand[key]

    def _beat(self) -> None:
        self._timer = None
        due = time.monotonic() - self._every_s
        for key, (since, msg) in list(self._in_hand.items()):
            if since <= due:
                self._in_hand[key] = (time.monotonic(), msg)
                self._beats.add(beat := asyncio.ensure_future(_in_progress(msg)))
                beat.add_done_callback(self._beats.discard)
        if self._in_hand:
            self._timer = asyncio.get_running_loop().call_later(self._every_s / 2, self._beat)


async def _in_progress(msg: Msg) -> None:
    with contextlib.suppress(Exception):  # the next beat tries again
        await msg.in_progress()
