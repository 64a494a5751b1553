"""The paper venue's wire protocol: subjects, requests, replies and live events.

Requests go to ``<ns>.venue.paper.<name>.api.<op>`` (NATS request/reply), JSON encoded
with msgspec. Every reply is one of the op's reply structs or an :class:`ErrorReply`
(tagged by ``kind``). Live events go to ``<ns>.venue.paper.<name>.events.<account>`` as
core NATS messages (lossy, like a WebSocket): each :class:`PaperEvent` carries the
account's event sequence number, so a client that sees ``seq`` jump knows it missed
some. The events of one account from one venue step go out as one message (a JSON
array of them when there are several). Heartbeats (no order, no fill) repeat the
current sequence number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from intentbus.bus import Topology, check_token
from intentbus.executor.base import VenueFill, VenueOrder
from intentbus.schemas import ExecutionPlan
from intentbus.venues.paper.constants import PAGE_SIZE


class PaperSubjects:
    """Name the subjects, streams and bucket of one paper venue."""

    def __init__(self, topology: Topology, name: str) -> None:
        self.name = check_token("venue", name)
        prefix = f"{topology.namespace}." if topology.namespace else ""
        self._base = f"{prefix}venue.paper.{name}"
        # ``bucket()`` adds the namespace prefix and checks a token of at most 64 chars,
        # so the name (itself up to 64) is appended after it.
        self.bucket = f"{topology.bucket('PAPER')}_{name}"
        self.journal_stream = f"{self.bucket}_JOURNAL"
        self.journal_subject = f"{self._base}.journal"

    def api(self, op: str) -> str:
        """Return the request subject of ``op``."""
        return f"{self._base}.api.{op}"

    @property
    def api_filter(self) -> str:
        """Return the filter of every request subject."""
        return f"{self._base}.api.*"

    def events(self, account: str) -> str:
        """Return the live event subject of ``account``."""
        return f"{self._base}.events.{account}"

    @property
    def events_filter(self) -> str:
        """Return the filter of every account's live events."""
        return f"{self._base}.events.*"


# requests ------------------------------------------------------------------------------
class MetaRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for the venue's rules, accounts, start prices and event sequence numbers."""


class PlaceRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Place the plan's order (idempotent on its client order id)."""

    plan: ExecutionPlan


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Name one order: for ``cancel``, ``status`` and ``fence``."""

    account: str
    symbol: str
    client_order_id: str


class FillsRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for an account's fills at or after ``since``, from ``start`` (paging)."""

    account: str
    since: datetime
    start: int = 0
    limit: int = PAGE_SIZE

    @property
    def page(self) -> tuple[int, int]:
        """Return (start, limit)."""
        return self.start, self.limit


class NetRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for an account's signed net position in a symbol."""

    account: str
    symbol: str


class ListRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for accounts or orders (operators): the newest ``limit`` orders, oldest first;
    ``live_only`` keeps working orders only."""

    account: str | None = None
    live_only: bool = False
    limit: int = PAGE_SIZE


# the ops a batch may carry, and how many calls at most
BATCH_OPS: Final = frozenset({"place", "cancel", "status", "fence", "net"})
MAX_BATCH_CALLS: Final = 100


class BatchCall(msgspec.Struct, frozen=True, kw_only=True):
    """One call of a batch: an op of :data:`BATCH_OPS` and its request, as sent alone."""

    op: str
    request: msgspec.Raw


class BatchRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Several calls answered in one step, in order, as if each had been sent alone."""

    calls: tuple[BatchCall, ...]

    def __post_init__(self) -> None:
        if not 0 < len(self.calls) <= MAX_BATCH_CALLS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_CALLS} calls, not {len(self.calls)}")


REQUEST_TYPES: Final[dict[str, type[msgspec.Struct]]] = {
    "meta": MetaRequest,
    "place": PlaceRequest,
    "cancel": OrderRequest,
    "status": OrderRequest,
    "fence": OrderRequest,
    "fills": FillsRequest,
    "net": NetRequest,
    "accounts": ListRequest,
    "orders": ListRequest,
    "batch": BatchRequest,
}


# replies -------------------------------------------------------------------------------
class ErrorReply(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="error"):
    """A refused or failed request: ``code`` is ``not_found``, ``bad_request`` or
    ``unavailable`` (the server is halted or its store failed)."""

    code: str
    message: str


class RulesInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The market rules every symbol shares, and per-symbol overrides."""

    lot_size: float
    lot_sizes: dict[str, float]
    min_notional_usd: float
    default_leverage: float
    max_leverage: float
    max_leverages: dict[str, float]
    max_slippage_bps: int
    passive_offset_bps: int


class MetaReply(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="meta"):
    """The venue's rules, book -> account map, start prices and accounts' event seqs."""

    name: str
    rules: RulesInfo
    accounts: dict[str, str]
    prices: dict[str, float]
    follow_marks: bool
    event_seqs: dict[str, int]


class OrderReply(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="order"):
    """One order (``None``: a fenced id that never was and never will be placed)."""

    order: VenueOrder | None


class FillsReply(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="fills"):
    """A page of fills; ``next_start`` is where the next page starts (None: no more)."""

    fills: list[VenueFill]
    next_start: int | None = None


class NetReply(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="net"):
    """The signed net position."""

    net: float


class AccountView(msgspec.Struct, frozen=True, kw_only=True):
    """An account as operators see it."""

    account: str
    book_id: str
    cash_usd: float
    fees_usd: float
    event_seq: int
    positions: dict[str, tuple[float, float, float]]  # size, entry, realized pnl
    live_orders: int


class AccountsReply(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="accounts"):
    """Every account (or one)."""

    accounts: list[AccountView]


class OrdersReply(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="orders"):
    """Orders, oldest first."""

    orders: list[VenueOrder]


class BatchReply(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="batch"):
    """The replies to a batch's calls, in its order, each as its op answers alone."""

    replies: tuple[msgspec.Raw, ...]


Reply = (
    MetaReply
    | OrderReply
    | FillsReply
    | NetReply
    | AccountsReply
    | OrdersReply
    | BatchReply
    | ErrorReply
)

REPLY_TYPES: Final[dict[str, Any]] = {
    "meta": MetaReply | ErrorReply,
    "place": OrderReply | ErrorReply,
    "cancel": OrderReply | ErrorReply,
    "status": OrderReply | ErrorReply,
    "fence": OrderReply | ErrorReply,
    "fills": FillsReply | ErrorReply,
    "net": NetReply | ErrorReply,
    "accounts": AccountsReply | ErrorReply,
    "orders": OrdersReply | ErrorReply,
    "batch": BatchReply | ErrorReply,
}


# live events ---------------------------------------------------------------------------
class PaperEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One live event of an account: an order update, a fill, or a heartbeat (neither)."""

    account: str
    seq: int
    at: datetime
    order: VenueOrder | None = None
    fill: VenueFill | None = None
