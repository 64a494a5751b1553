"""One venue fill, published as it happens on ``fills.<venue>.<book>``."""

from __future__ import annotations

import msgspec

from intentbus.schemas.enums import Liquidity, OrderState, Side
from intentbus.schemas.fields import (
    Identifier,
    Metadata,
    Positive,
    SubjectToken,
    Symbol,
    Timestamp,
    VenueRef,
    check_ids,
    derived_id,
)

FILL_TAG = "intentbus.fill.v1"


class Fill(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema", tag=FILL_TAG):
    """Report one venue fill of an intent's order.

    ``fill_id`` is derived from the venue and the venue's fill id (:func:`fill_id_for`)
    and is the message's ``Nats-Msg-Id``, so a fill seen twice (live and again after a
    reconnect) is stored and applied once. ``fee`` is in ``fee_currency`` (a rebate is
    negative); ``closed_pnl`` is the venue's own realized PnL of this fill where it reports
    one. ``order_state`` is the order's state right after this fill.
    """

    fill_id: Identifier
    venue_fill_id: VenueRef
    venue: SubjectToken
    book_id: SubjectToken
    account: VenueRef
    intent_id: Identifier
    position_id: Identifier
    client_order_id: VenueRef
    symbol: Symbol
    side: Side
    size: Positive
    price: Positive
    fee: float
    liquidity: Liquidity
    venue_time: Timestamp
    created_at: Timestamp
    fee_currency: Symbol = "USD"
    venue_order_id: VenueRef | None = None
    closed_pnl: float | None = None
    order_state: OrderState | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ids(self, ("fill_id", "intent_id", "position_id", "venue", "book_id"), "symbol")
        if self.fill_id != fill_id_for(self.venue, self.venue_fill_id):
            raise ValueError(
                f"fill_id {self.fill_id!r} is not derived from venue {self.venue!r} and "
                f"venue_fill_id {self.venue_fill_id!r}"
            )


def fill_id_for(venue: str, venue_fill_id: str) -> str:
    """Return the fill's id (and ``Nats-Msg-Id``): at most 128 chars for every input."""
    return derived_id("fill", venue, venue_fill_id)
