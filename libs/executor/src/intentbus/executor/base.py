"""The contract every venue executor implements.

``prepare`` turns an intent into a venue plan or a :class:`Skip` (the one skip
contract: never raise to skip); ``execute`` sends the plan and reports an
:class:`OrderOutcome`; ``lookup`` finds an order by its client order id after a crash,
so the runtime never sends a second order for one intent. The runtime, not the venue,
builds the :class:`ExecutionResult` from the outcome.

Constructors do no I/O: connect in ``start()``, release in ``stop()``.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Topology
from intentbus.schemas import ExecutionIntent, ExecutionPlan, ExecutionStatus, Position, Skip


class OrderOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """Say what the venue did with one order.

    ``status`` is SUCCESS (fully filled or resting as planned), PARTIAL, ERROR (the venue
    refused it: nothing traded) or UNKNOWN (it may or may not exist: never guessed).
    """

    status: ExecutionStatus
    filled_size: float = 0.0
    avg_price: float | None = None
    fees_usd: float = 0.0
    venue_order_id: str | None = None
    error: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class VenueContext(msgspec.Struct, frozen=True, kw_only=True):
    """Handles a venue may use from ``start()``: the bus connection and its topology."""

    nc: Client
    js: JetStreamContext
    topology: Topology


@runtime_checkable
class BaseExecutor(Protocol):
    """One venue's executor."""

    @property
    def venue(self) -> str:
        """Return the venue namespace this executor serves (the intents' ``token_chain``)."""
        ...

    async def start(self, context: VenueContext) -> None:
        """Connect to the venue and load market metadata."""
        ...

    async def stop(self) -> None:
        """Release every connection."""
        ...

    def can_trade_now(self, symbol: str) -> bool:
        """Say whether the venue accepts orders for ``symbol`` now (prepare checks it too)."""
        ...

    async def prepare(self, intent: ExecutionIntent, position: Position) -> ExecutionPlan | Skip:
        """Apply the venue's constraints to an intent: a plan to send, or a skip with a reason."""
        ...

    async def execute(self, plan: ExecutionPlan, position: Position) -> OrderOutcome:
        """Send the plan's order (with ``plan.client_order_id``) and report the outcome."""
        ...

    async def fence(self, plan: ExecutionPlan) -> OrderOutcome | None:
        """Make ``plan.client_order_id`` unusable from now on; return its outcome if it filled.

        The runtime fences a claimed order it will not send (the intent expired or was
        superseded while a replica that claimed it may still be alive), so a stalled
        replica cannot trade it later. ``None`` means it never was and never will be
        placed. A venue that cannot fence raises ``NotImplementedError``: the runtime then
        reports the intent ``unknown``.
        """
        ...

    async def lookup(self, plan: ExecutionPlan) -> OrderOutcome | None:
        """Return the outcome of the order ``plan.client_order_id``, or None if never placed."""
        ...


def client_order_id(intent_id: str) -> str:
    """Derive the deterministic venue client order id of an intent (``0x`` + 32 hex)."""
    return "0x" + hashlib.sha256(intent_id.encode()).hexdigest()[:32]
