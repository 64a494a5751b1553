"""Paper venue test support: a started venue and executor, plans, an event recorder."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from intentbus.bus import Publisher, Topology
from intentbus.executor.base import VenueContext, VenueEvent, VenueFill, VenueGap, VenueOrder
from intentbus.schemas import ActionType, ExecutionPlan, Mark, OrderType, Side, TimeInForce
from intentbus.testing import wait_for
from intentbus.venues.paper import PaperConfig, PaperExecutor, PaperExecutorOptions
from intentbus.venues.paper.server import PaperVenueServer


@dataclass
class Recorder:
    """An event sink keeping every venue event."""

    events: list[VenueEvent] = field(default_factory=list)

    async def __call__(self, event: VenueEvent) -> None:
        self.events.append(event)

    def fills(self, cloid: str | None = None) -> list[VenueFill]:
        return [
            e
            for e in self.events
            if isinstance(e, VenueFill) and cloid in (None, e.client_order_id)
        ]

    def orders(self, cloid: str) -> list[VenueOrder]:
        return [e for e in self.events if isinstance(e, VenueOrder) and e.client_order_id == cloid]

    def gaps(self) -> list[VenueGap]:
        return [e for e in self.events if isinstance(e, VenueGap)]


@dataclass
class Paper:
    """A started paper venue server, an executor on it, and the market."""

    nc: Client
    js: JetStreamContext
    topology: Topology
    config: PaperConfig
    server: PaperVenueServer
    executor: PaperExecutor
    seen: Recorder
    started: list[Any]

    async def set_mark(self, symbol: str, price: float) -> None:
        """Publish a mark and wait until the server matched it and the executor sees it."""
        done = self.server.marks_applied.get(symbol, 0)
        mark = Mark(venue=self.config.name, symbol=symbol, price=price, at=datetime.now(UTC))
        await Publisher(self.js, self.topology).mark(mark)

        async def applied() -> tuple[int, float | None]:
            return self.server.marks_applied.get(symbol, 0), self.executor.mark(symbol)

        await wait_for(
            applied, until=lambda got: got[0] > done and got[1] == price, what=f"mark {price}"
        )

    async def new_server(self, **options: Any) -> PaperVenueServer:
        """Build and start another server on the same venue name (and bucket)."""
        server = PaperVenueServer(
            self.nc, self.js, self.topology, PaperConfig(**{**_fields(self.config), **options})
        )
        await server.start()
        self.started.append(server)
        return server

    async def new_executor(self, sink: Recorder | None = None) -> PaperExecutor:
        """Start another executor on the venue."""
        executor = PaperExecutor(PaperExecutorOptions(name=self.config.name, timeout_s=5.0))
        if sink is not None:
            executor.set_event_sink(sink)
        await executor.start(VenueContext(nc=self.nc, js=self.js, topology=self.topology))
        self.started.append(executor)
        return executor

    async def status(self, plan: ExecutionPlan) -> VenueOrder:
        return await self.executor.order_status(plan.account, plan.symbol, plan.client_order_id)

    async def wait_events(self, cloid: str, *, fills: int = 0, orders: int = 0) -> int:
        """Wait until the executor's sink saw that many fills and order updates of ``cloid``."""

        async def seen() -> tuple[int, int]:
            return len(self.seen.fills(cloid)), len(self.seen.orders(cloid))

        got = await wait_for(
            seen, until=lambda n: n[0] >= fills and n[1] >= orders, what="live events"
        )
        return got[0]

    async def wait_order(
        self, plan: ExecutionPlan, until: Callable[[VenueOrder], bool], what: str
    ) -> VenueOrder:
        return await wait_for(lambda: self.status(plan), until=until, what=what)


StartPaper = Callable[..., Awaitable[Paper]]


def _fields(config: PaperConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


_COUNTER = iter(range(1, 1_000_000))


def plan(
    *,
    side: Side = Side.BUY,
    size: float = 1.0,
    price: float | None = 100.0,
    order_type: OrderType = OrderType.LIMIT,
    tif: TimeInForce = TimeInForce.GTC,
    reduce_only: bool = False,
    book: str = "main",
    account: str | None = None,
    symbol: str = "BTC",
    cloid: str | None = None,
    valid_until: datetime | None = None,
    venue: str = "paper",
    position_id: str | None = None,
) -> ExecutionPlan:
    """Return a plan as the runtime would send it (defaults: a GTC buy limit of 1 at 100)."""
    n = next(_COUNTER)
    return ExecutionPlan(
        intent_id=f"intent-{n}",
        position_id=position_id or f"pos-{n}",
        venue=venue,
        book_id=book,
        account=account or book,
        symbol=symbol,
        action=ActionType.TRIM if reduce_only else ActionType.ADD,
        side=side,
        order_type=order_type,
        time_in_force=tif,
        size=size,
        price=price,
        leverage=1.0,
        client_order_id=cloid or f"0x{n:032x}",
        reduce_only=reduce_only,
        valid_until=valid_until or datetime.now(UTC) + timedelta(minutes=5),
    )


def market(side: Side, size: float, protection: float | None, **extra: Any) -> ExecutionPlan:
    """Return a market IOC plan with its protection price."""
    return plan(
        side=side,
        size=size,
        price=protection,
        order_type=OrderType.MARKET,
        tif=TimeInForce.IOC,
        **extra,
    )
