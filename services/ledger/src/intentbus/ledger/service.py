"""The ledger service: apply ``FILLS`` and ``RESULTS`` exactly once, answer position requests.

Two durable consumers, each applied in its stream's order by an
:class:`~intentbus.ledger.ordered.OrderedApplier` (one transaction per fetched batch):
``<durable>-fills`` on ``FILLS`` moves positions; ``<durable>`` on ``RESULTS`` keeps
working orders and stores final results, each waiting (bounded, then redelivery) until
the fills it names are applied. A store failure halts both (fail-stop) and :meth:`run`
raises :class:`LedgerHalted`; nothing is applied out of order or lost.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus import telemetry
from intentbus.bus import BusSettings, ConsumerSpec, Topology, connect, observe, provision
from intentbus.bus.control import HeartbeatLoop
from intentbus.ledger.api import AppliedProgress, PositionApi
from intentbus.ledger.applier import Waiting
from intentbus.ledger.fills import apply_fill_message
from intentbus.ledger.ordered import Halt, OrderedApplier
from intentbus.ledger.rebuild import copy_registrations
from intentbus.ledger.results import apply_results_message
from intentbus.ledger.storage import LedgerConfigError, LedgerInUse
from intentbus.ledger.stores import store_for
from intentbus.ledger.view import PositionView
from intentbus.ledger.writer_claim import WRITER_WAIT_S
from intentbus.schemas import ListPositions, encode

log = logging.getLogger(__name__)

DEFAULT_DURABLE = "ledger"
QUEUE_GROUP = "ledger"
OPERATIONS = ("get", "get_many", "list", "open")
PROBE_VENUE = "ledger-probe"
FILLS_WAIT_S = 5.0

__all__ = [
    "LedgerConfigError",
    "LedgerHalted",
    "LedgerInUse",
    "LedgerService",
    "ledger_consumer_specs",
]


class LedgerHalted(RuntimeError):
    """Raise when the ledger stopped applying messages because its store failed."""


def ledger_consumer_specs(
    topology: Topology, durable: str = DEFAULT_DURABLE
) -> tuple[ConsumerSpec, ConsumerSpec]:
    """Declare the ledger's durables on RESULTS and FILLS: every message, never given up on."""
    return (
        ConsumerSpec(
            stream=topology.results_stream,
            durable=durable,
            filter_subjects=(topology.results_filter(),),
            max_deliver=-1,
        ),
        ConsumerSpec(
            stream=topology.fills_stream,
            durable=f"{durable}-fills",
            filter_subjects=(topology.fills_filter(),),
            max_deliver=-1,
        ),
    )


class LedgerService:
    """Keep positions from ``FILLS`` and ``RESULTS`` and serve them over request/reply."""

    def __init__(
        self,
        settings: BusSettings,
        topology: Topology,
        db: Path | str,
        *,
        durable: str = DEFAULT_DURABLE,
        rebuild: bool = False,
        fills_wait_s: float = FILLS_WAIT_S,
        writer_wait_s: float = WRITER_WAIT_S,
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.rebuild = rebuild
        self.store = store_for(db)  # a SQLite file, or a postgresql:// URL
        # every change goes through the view, so it answers position reads from memory
        self.view = PositionView(self.store)
        self.backup: str | None = None  # where --rebuild set the old ledger aside
        self.halt = Halt()
        self._heartbeat: HeartbeatLoop | None = None
        self.fills_wait_s = fills_wait_s
        self.writer_wait_s = writer_wait_s  # for another ledger to let the store go
        results_spec, fills_spec = ledger_consumer_specs(topology, durable)
        self.results = OrderedApplier(
            spec=results_spec,
            store=self.view,
            apply=apply_results_message,
            halt=self.halt,
            progress=AppliedProgress(),
            ready=self._fills_applied,
        )
        self.fills = OrderedApplier(
            spec=fills_spec,
            store=self.view,
            apply=apply_fill_message,
            halt=self.halt,
            progress=AppliedProgress(),
        )
        self._api = PositionApi(
            self.store, self.results.progress, self.fills.progress, view=self.view
        )
        self._nc: Client | None = None
        self._subs: list[Subscription] = []
        self._requests: set[asyncio.Task[None]] = set()

    async def _fills_applied(self, waiting: Waiting) -> bool:
        return await self.fills.progress.reached(waiting.wanted_fills_seq, self.fills_wait_s)

    async def start(self) -> None:
        """Claim and open the store, connect, provision the streams and answer requests.

        Raise :class:`LedgerInUse` when another ledger writes the store.
        """
        await self.store.claim_writer(self.writer_wait_s)
        if self.rebuild:
            self.backup = await self.store.set_aside()
        await self.store.open()
        await self._bind_to_streams()
        if self.backup is not None:
            copied = await copy_registrations(self.backup, self.store)
            log.warning(
                "rebuild: old db kept at %s; %d opened positions copied", self.backup, copied
            )
        self.results.progress.start_at(await self.store.applied_seq("results"))
        self.fills.progress.start_at(await self.store.applied_seq("fills"))
        self._nc = await connect(self.settings)
        js = self._nc.jetstream()
        await provision(js, self.topology)
        for applier in (self.results, self.fills):
            await self._align_consumer(js, applier)
        for operation in OPERATIONS:
            self._subs.append(
                await self._nc.subscribe(
                    self.topology.ledger_subject(operation), QUEUE_GROUP, cb=self._on_request
                )
            )
        await self._until_answering(self._nc)
        self._heartbeat = HeartbeatLoop(
            js, self.topology, service="ledger", distribution="intentbus-ledger"
        )
        await self._heartbeat.start()

    async def _until_answering(self, nc: Client, timeout_s: float = 5.0) -> None:
        """Return once a request of ours reaches the API, so start() means "answering".

        A flush is not enough: the server may still answer "no responders" to another
        connection for a moment after it acknowledged the subscriptions.
        """
        probe = encode(ListPositions(venue=PROBE_VENUE))
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                await nc.request(self.topology.ledger_subject("list"), probe, timeout=timeout_s)
                return
            except NoRespondersError:
                if asyncio.get_running_loop().time() > deadline:
                    log.warning("ledger subscriptions not visible after %.1fs", timeout_s)
                    return
                await asyncio.sleep(0.01)

    async def _bind_to_streams(self) -> None:
        for key, stream in (
            ("results_stream", self.topology.results_stream),
            ("fills_stream", self.topology.fills_stream),
        ):
            found = await self.store.meta(key)
            if found is None:
                await self.store.set_meta(key, stream)
            elif found != stream:
                raise LedgerConfigError(
                    f"{self.store.label} holds the ledger of stream {found}, not {stream}: "
                    "use another --db or --namespace"
                )

    async def _align_consumer(self, js: JetStreamContext, applier: OrderedApplier) -> None:
        """Recreate a durable from seq 1 when it is ahead of the database (or on rebuild)."""
        spec = applier.spec
        try:
            info = await js.consumer_info(spec.stream, spec.durable)
        except NotFoundError:
            return
        acked = info.ack_floor.stream_seq if info.ack_floor else 0
        applied = applier.progress.seq
        if self.rebuild or acked > applied:
            log.warning(
                "durable %s acked seq %d, db applied %d: re-reading %s from the start",
                spec.durable, acked, applied, spec.stream,
            )  # fmt: skip
            await js.delete_consumer(spec.stream, spec.durable)

    async def run(self, stop: asyncio.Event) -> None:
        """Apply fills and results until ``stop`` is set; raise :class:`LedgerHalted` on failure."""
        if self._nc is None:
            raise RuntimeError("LedgerService.run() before start()")
        js = self._nc.jetstream()
        consumers = [a.consumer(js, self.topology) for a in (self.fills, self.results)]
        relay = asyncio.create_task(self._relay_stop(stop))
        try:
            await asyncio.gather(*(c.run(self.halt.event) for c in consumers))
        except BaseException:
            self.halt.event.set()  # one consumer failed: stop the other too
            if self._heartbeat is not None:
                self._heartbeat.last_error = repr(self.halt.failure or "a consumer failed")
            raise
        finally:
            relay.cancel()
        if self.halt.failure is not None:
            failure = self.halt.failure
            raise LedgerHalted(f"ledger store failed: {failure!r}") from failure

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.halt.event.set()

    async def stop(self) -> None:
        """Stop answering, finish in-flight replies, disconnect and close the store."""
        self.halt.event.set()
        if self._heartbeat is not None:
            await self._heartbeat.stop()
            self._heartbeat = None
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:
                log.debug("unsubscribe failed", exc_info=True)
        self._subs.clear()
        for task in list(self._requests):
            task.cancel()
        await asyncio.gather(*self._requests, return_exceptions=True)
        if self._nc is not None:
            try:
                await self._nc.drain()
            except Exception:
                log.debug("drain failed", exc_info=True)
            self._nc = None
        await self.store.close()

    async def _on_request(self, msg: Msg) -> None:
        task = asyncio.create_task(self._respond(msg))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _respond(self, msg: Msg) -> None:
        operation = msg.subject.rsplit(".", 1)[-1]
        with observe.serving(f"ledger answer {operation}", msg) as span:
            reply = await self._api.answer(operation, msg.data)
            if reply.error:
                telemetry.set_outcome(span, error=reply.error)
            if not msg.reply:
                return
            try:
                await msg.respond(encode(reply))
            except Exception:
                log.warning("could not answer %s", msg.subject, exc_info=True)
