"""Mark prices: a start-up table, then the latest mark per symbol from the MARKS stream.

Only a strictly newer mark replaces a symbol's mark (a redelivered one is ignored), and
each new mark is passed to the optional ``on_mark`` callback: the venue server matches
resting orders there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from intentbus.bus import Topology
from intentbus.schemas import Mark, decoder

log = logging.getLogger(__name__)
_EPOCH = datetime.fromtimestamp(0, UTC)
OnMark = Callable[[Mark], Awaitable[None]]


class MarkBook:
    """Keep the latest mark of every symbol of one venue; newer marks win."""

    def __init__(
        self, venue: str, table: Mapping[str, float], on_mark: OnMark | None = None
    ) -> None:
        self._venue = venue
        self._on_mark = on_mark
        self._marks: dict[str, tuple[float, datetime]] = {
            symbol: (price, _EPOCH) for symbol, price in table.items()
        }
        self._decoder = decoder(Mark)
        self._sub: JetStreamContext.PushSubscription | None = None

    def price(self, symbol: str) -> float | None:
        """Return the latest mark of ``symbol``, or None."""
        found = self._marks.get(symbol)
        return found[0] if found else None

    def prices(self) -> dict[str, float]:
        """Return the latest mark of every symbol."""
        return {symbol: price for symbol, (price, _) in self._marks.items()}

    def seed(self, symbol: str, price: float, at: datetime) -> None:
        """Know a mark already matched (before a restart): only newer ones count."""
        current = self._marks.get(symbol)
        if current is None or current[1] < at:
            self._marks[symbol] = (price, at)

    def apply(self, mark: Mark) -> bool:
        """Record ``mark`` unless an equally new or newer one is known; say if it was used."""
        if mark.venue != self._venue:
            return False
        current = self._marks.get(mark.symbol)
        if current is not None and current[1] >= mark.at:
            return False
        self._marks[mark.symbol] = (mark.price, mark.at)
        return True

    async def follow(self, js: JetStreamContext, topology: Topology) -> None:
        """Load the last mark of every symbol, then follow new ones until :meth:`close`."""
        subject = topology.marks_filter(self._venue)
        self._sub = await js.subscribe(
            subject,
            stream=topology.marks_stream,
            cb=self._on_msg,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        )
        # The subscription delivers asynchronously; read the last marks now so a prepare()
        # right after start() already sees them (apply() keeps whichever is newer).
        info = await js.stream_info(topology.marks_stream, subjects_filter=subject)
        for name in info.state.subjects or {}:
            raw = await js.get_last_msg(topology.marks_stream, name)
            if raw.data:
                await self._apply_bytes(raw.data)

    async def close(self) -> None:
        """Stop following marks."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        await self._apply_bytes(msg.data)

    async def _apply_bytes(self, data: bytes) -> None:
        try:
            mark = self._decoder.decode(data)
        except msgspec.MsgspecError:
            log.warning("ignoring an invalid mark: %r", data[:200])
            return
        if self.apply(mark) and self._on_mark is not None:
            await self._on_mark(mark)
