"""The ledger service: consume ``RESULTS`` exactly once and answer position requests.

Results are handled in stream order (``key_of=None``). The results of one fetched batch
are applied, one after another, in one transaction that also stores each result id and
the stream sequence (one ``COMMIT``, one fsync, per batch); the messages are settled
only after that commit, and the applied sequence that read-your-writes ``get`` waits on
advances only then. A result id already stored is acknowledged and changes nothing. If
the store fails, the ledger halts (fail-stop): it applies nothing of the failed batch or
after it, leaves those messages unacknowledged for redelivery, and :meth:`run` raises
:class:`LedgerHalted`, so results are never applied out of order or lost.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from intentbus.bus import (
    Ack,
    BusSettings,
    ConsumerSpec,
    Disposition,
    MessageConsumer,
    Nak,
    Term,
    Topology,
    connect,
    provision,
)
from intentbus.ledger.api import AppliedProgress, PositionApi
from intentbus.ledger.applier import Duplicate, Outcome, Rejected, apply_message, apply_messages
from intentbus.ledger.rebuild import copy_registrations, move_aside
from intentbus.ledger.sqlite_store import SqliteStore
from intentbus.schemas import ListPositions, decoder, encode

log = logging.getLogger(__name__)

DEFAULT_DURABLE = "ledger"
QUEUE_GROUP = "ledger"
OPERATIONS = ("get", "list", "open")
STREAM_KEY = "results_stream"
PROBE_VENUE = "ledger-probe"
HALTED_REDELIVERY_S = 1.0

_raw_decoder = decoder(msgspec.Raw)


class LedgerHalted(RuntimeError):
    """Raise when the ledger stopped applying results because its store failed."""


class LedgerConfigError(RuntimeError):
    """Raise when the database does not belong to this topology."""


def ledger_consumer_spec(topology: Topology, durable: str = DEFAULT_DURABLE) -> ConsumerSpec:
    """Declare the ledger's durable consumer: every result, never given up on."""
    return ConsumerSpec(
        stream=topology.results_stream,
        durable=durable,
        filter_subjects=(topology.results_filter(),),
        max_deliver=-1,
    )


class LedgerService:
    """Keep positions from ``RESULTS`` and serve them over request/reply."""

    def __init__(
        self,
        settings: BusSettings,
        topology: Topology,
        db_path: Path | str,
        *,
        durable: str = DEFAULT_DURABLE,
        rebuild: bool = False,
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.db_path = Path(db_path)
        self.spec = ledger_consumer_spec(topology, durable)
        self.rebuild = rebuild
        self.store = SqliteStore(self.db_path)
        self.progress = AppliedProgress()
        self.backup_path: Path | None = None
        self.applied = 0
        self.duplicates = 0
        self.rejected = 0
        self._api = PositionApi(self.store, self.progress)
        self._nc: Client | None = None
        self._subs: list[Subscription] = []
        self._requests: set[asyncio.Task[None]] = set()
        self._halt = asyncio.Event()
        self._failure: BaseException | None = None
        self._committed: dict[int, Outcome] = {}  # this batch: stream seq -> its outcome
        self.batches = 0

    async def start(self) -> None:
        """Open the store, connect, provision the streams and answer requests."""
        if self.rebuild:
            self.backup_path = move_aside(self.db_path)
        self.store.open()
        self._bind_to_stream()
        if self.backup_path is not None:
            copied = copy_registrations(self.backup_path, self.store)
            log.warning(
                "rebuild: old db kept at %s; %d opened positions copied", self.backup_path, copied
            )
        self.progress = AppliedProgress(self.store.applied_seq())
        self._api = PositionApi(self.store, self.progress)
        self._nc = await connect(self.settings)
        js = self._nc.jetstream()
        await provision(js, self.topology)
        await self._align_consumer(js)
        for operation in OPERATIONS:
            self._subs.append(
                await self._nc.subscribe(
                    self.topology.ledger_subject(operation), QUEUE_GROUP, cb=self._on_request
                )
            )
        await self._until_answering(self._nc)

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

    def _bind_to_stream(self) -> None:
        stream = self.store.meta(STREAM_KEY)
        if stream is None:
            self.store.set_meta(STREAM_KEY, self.topology.results_stream)
        elif stream != self.topology.results_stream:
            raise LedgerConfigError(
                f"{self.db_path} holds the ledger of stream {stream}, "
                f"not {self.topology.results_stream}: use another --db or --namespace"
            )

    async def _align_consumer(self, js: JetStreamContext) -> None:
        """Recreate the durable from seq 1 when it is ahead of the database."""
        try:
            info = await js.consumer_info(self.spec.stream, self.spec.durable)
        except NotFoundError:
            return
        acked = info.ack_floor.stream_seq if info.ack_floor else 0
        applied = self.store.applied_seq()
        if self.rebuild or acked > applied:
            log.warning(
                "durable %s acked seq %d, db applied %d: re-reading %s from the start",
                self.spec.durable,
                acked,
                applied,
                self.spec.stream,
            )
            await js.delete_consumer(self.spec.stream, self.spec.durable)

    async def run(self, stop: asyncio.Event) -> None:
        """Apply results until ``stop`` is set; raise :class:`LedgerHalted` on store failure."""
        if self._nc is None:
            raise RuntimeError("LedgerService.run() before start()")
        consumer = MessageConsumer(
            self._nc.jetstream(),
            self.topology,
            self.spec,
            msgspec.Raw,
            self._on_result,
            before_batch=self._apply_batch,
        )
        relay = asyncio.create_task(self._relay_stop(stop))
        try:
            await consumer.run(self._halt)
        finally:
            relay.cancel()
        if self._failure is not None:
            raise LedgerHalted(f"ledger store failed: {self._failure!r}") from self._failure

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._halt.set()

    async def stop(self) -> None:
        """Stop answering, finish in-flight replies, disconnect and close the store."""
        self._halt.set()
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
        self.store.close()

    def _apply_batch(self, msgs: list[Msg]) -> None:
        """Apply a fetched batch's results in one transaction, before any is settled.

        Messages that are not JSON are left out: the consumer dead-letters them without
        calling :meth:`_on_result`, as before. If the store fails, nothing of the batch
        is applied, the ledger halts and :meth:`_on_result` naks every message.
        """
        self._committed.clear()
        if self._failure is not None:
            return
        batch: list[tuple[bytes, int]] = []
        next_seq = self.progress.seq + 1
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq > next_seq:
                break  # earlier results were lost in flight: _on_result fills the gap first
            try:
                _raw_decoder.decode(msg.data)
            except msgspec.MsgspecError:
                continue
            batch.append((msg.data, seq))
            next_seq = max(next_seq, seq + 1)
        if not batch:
            return
        try:
            outcomes = apply_messages(self.store, batch)
        except Exception as exc:
            log.exception("could not apply a batch of %d results; halting", len(batch))
            self._failure = exc
            self._halt.set()
            return
        self.batches += 1
        self._committed = {seq: outcome for (_, seq), outcome in zip(batch, outcomes, strict=True)}

    async def _on_result(self, _raw: msgspec.Raw, msg: Msg) -> Disposition:
        if self._failure is not None:
            return Nak(delay_s=HALTED_REDELIVERY_S, reason="ledger halted")
        seq = msg.metadata.sequence.stream
        outcome = self._committed.pop(seq, None)  # committed with its batch
        if outcome is None:
            try:
                missing = await self._read_gap(seq)
            except Exception as exc:  # the stream cannot be read now: try again later
                return Nak(delay_s=HALTED_REDELIVERY_S, reason=f"cannot fill a gap: {exc!r}")
            try:
                for gap_seq, data in missing:
                    self._count(apply_message(self.store, data, gap_seq))
                    await self.progress.advance(gap_seq)
                outcome = apply_message(self.store, msg.data, seq)
            except Exception as exc:
                log.exception("could not apply %s seq %d; halting", msg.subject, seq)
                self._failure = exc
                self._halt.set()
                return Nak(delay_s=HALTED_REDELIVERY_S, reason="ledger halted")
        await self.progress.advance(seq)
        if isinstance(outcome, Rejected):
            self.rejected += 1
            log.warning("rejected %s seq %d: %s", msg.subject, seq, outcome.error)
            return Term(outcome.error)
        if isinstance(outcome, Duplicate):
            self.duplicates += 1
        else:
            self.applied += 1
        return Ack()

    async def _read_gap(self, seq: int) -> list[tuple[int, bytes]]:
        """Read the results before ``seq`` not applied yet (lost in flight) from the stream.

        The ledger consumes every result of the stream, so its sequences have no holes: a
        result beyond the next one means deliveries were lost (a dropped connection) and
        come back only after the ack wait. Applying them now, in order, keeps positions
        and read-your-writes exact; their redeliveries are then duplicates. A result no
        longer in the stream counts as applied with nothing to apply.
        """
        missing: list[tuple[int, bytes]] = []
        if self._nc is None or seq <= self.progress.seq + 1:
            return missing
        js = self._nc.jetstream()
        first = (await js.stream_info(self.topology.results_stream)).state.first_seq
        start = self.progress.seq + 1
        if first - 1 >= start:  # aged out of the stream: nothing left to apply, skip at once
            missing.append((min(first - 1, seq - 1), b""))
            start = first
        for gap_seq in range(start, seq):
            try:
                raw = await js.get_msg(self.topology.results_stream, gap_seq)
            except NotFoundError:
                missing.append((gap_seq, b""))
                continue
            missing.append((gap_seq, raw.data or b""))
        if missing:
            log.warning("filled results %d-%d lost in flight", missing[0][0], missing[-1][0])
        return missing

    def _count(self, outcome: Outcome) -> None:
        # A rejected one is counted (and dead-lettered) when the consumer redelivers it.
        if isinstance(outcome, Duplicate):
            self.duplicates += 1
        elif not isinstance(outcome, Rejected):
            self.applied += 1

    async def _on_request(self, msg: Msg) -> None:
        task = asyncio.create_task(self._respond(msg))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _respond(self, msg: Msg) -> None:
        operation = msg.subject.rsplit(".", 1)[-1]
        reply = await self._api.answer(operation, msg.data)
        if not msg.reply:
            return
        try:
            await msg.respond(encode(reply))
        except Exception:
            log.warning("could not answer %s", msg.subject, exc_info=True)
