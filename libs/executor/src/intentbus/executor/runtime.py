"""The executor runtime: consume one venue's intents, execute each once, publish results.

Per intent: (done claim -> republish the stored result) else take the position lease,
then expired -> SKIPPED; below the position cursor -> SKIPPED superseded; read the
position (read-your-writes on the cursor's ``results_seq``); ``prepare`` -> skip, or
claim -> ``execute``; publish the result; mark the claim done; advance the cursor; and
only then ack the intent. A crash anywhere leaves a state a redelivery resolves without
a second order (see :mod:`intentbus.executor.claims`, :mod:`intentbus.executor.ordering`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from intentbus.bus import (
    Ack,
    ConsumerSpec,
    Disposition,
    LedgerError,
    LedgerUnavailable,
    MessageConsumer,
    Nak,
    PositionClient,
    Publisher,
    Term,
    Topology,
    check_token,
    provision,
)
from intentbus.executor import results
from intentbus.executor.base import BaseExecutor, VenueContext, client_order_id
from intentbus.executor.claims import ClaimState, ClaimStore
from intentbus.executor.kv import ensure_bucket
from intentbus.executor.ordering import Cursor, CursorStore, LeaseStore
from intentbus.executor.settings import (
    CLAIMS_BUCKET,
    CURSORS_BUCKET,
    LEASES_BUCKET,
    RuntimeSettings,
    RuntimeStats,
)
from intentbus.schemas import (
    ExecutionIntent,
    ExecutionPlan,
    ExecutionResult,
    Position,
    Skip,
    SkipReason,
)

log = logging.getLogger(__name__)

__all__ = [
    "CLAIMS_BUCKET",
    "CURSORS_BUCKET",
    "LEASES_BUCKET",
    "ExecutorRuntime",
    "RuntimeSettings",
    "RuntimeStats",
]


@dataclass(frozen=True)
class _Stores:
    claims: ClaimStore
    leases: LeaseStore
    cursors: CursorStore


class _Retry(Exception):
    """Leave the intent for a later delivery."""

    def __init__(self, reason: str, delay_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s


class ExecutorRuntime:
    """Run one venue executor on the shared durable consumer of that venue's intents."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        topology: Topology,
        executor: BaseExecutor,
        *,
        book: str | None = None,
        durable: str | None = None,
        settings: RuntimeSettings | None = None,
        owner: str | None = None,
    ) -> None:
        self.venue = check_token("venue", executor.venue)
        self.book = check_token("book", book) if book is not None else None
        self.durable = check_token("durable", durable or f"executor-{self.venue}")
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.settings = settings or RuntimeSettings()
        self.stats = RuntimeStats()
        self._nc = nc
        self._js = js
        self._topology = topology
        self._executor = executor
        self._publisher = Publisher(js, topology)
        self._positions = PositionClient(nc, topology)
        self._stores: _Stores | None = None
        self._started = False
        self._waiting: dict[str, tuple[int, float]] = {}
        self.spec = ConsumerSpec(
            stream=topology.intents_stream,
            durable=self.durable,
            filter_subjects=(topology.intents_filter(self.venue, self.book),),
            ack_wait_s=self.settings.ack_wait_s,
            max_deliver=self.settings.max_deliver,
            max_ack_pending=self.settings.max_ack_pending,
        )

    async def start(self) -> None:
        """Provision streams and buckets and start the venue."""
        if self._started:
            return
        await provision(self._js, self._topology)
        bucket = self._topology.bucket
        self._stores = _Stores(
            claims=ClaimStore(await ensure_bucket(self._js, bucket(CLAIMS_BUCKET))),
            leases=LeaseStore(
                await ensure_bucket(self._js, bucket(LEASES_BUCKET)),
                ttl_s=self.settings.lease_ttl_s,
            ),
            cursors=CursorStore(await ensure_bucket(self._js, bucket(CURSORS_BUCKET))),
        )
        await self._executor.start(VenueContext(nc=self._nc, js=self._js, topology=self._topology))
        self._started = True

    async def stop(self) -> None:
        """Stop the venue (unacked intents stay in the stream for the next replica)."""
        if self._started:
            self._started = False
            await self._executor.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume intents until ``stop`` is set, then stop the venue."""
        await self.start()
        consumer: MessageConsumer[ExecutionIntent] = MessageConsumer(
            self._js,
            self._topology,
            self.spec,
            ExecutionIntent,
            self.handle,
            key_of=lambda intent: intent.position_id,
            batch=self.settings.batch,
        )
        try:
            await consumer.run(stop)
        finally:
            await self.stop()

    @property
    def _state(self) -> _Stores:
        if self._stores is None:
            raise RuntimeError("ExecutorRuntime.start() was not called")
        return self._stores

    # one intent -----------------------------------------------------------------
    async def handle(self, intent: ExecutionIntent, msg: Msg) -> Disposition:
        """Handle one delivered intent and say how to settle it."""
        seq = msg.metadata.sequence.stream
        expected = self._topology.intents_subject(intent.token_chain, intent.book_id)
        if intent.token_chain != self.venue or msg.subject != expected:
            return Term(
                f"intent for {intent.token_chain}/{intent.book_id} arrived on {msg.subject} "
                f"at the {self.venue!r} executor"
            )
        try:
            self._check_earlier_waiting(intent.position_id, seq)
            disposition = await self._handle_leased(intent, seq, msg.metadata.num_delivered)
        except _Retry as retry:
            return self._retry(intent.position_id, seq, msg, retry)
        self._waiting.pop(intent.position_id, None)
        return disposition

    def _check_earlier_waiting(self, position_id: str, seq: int) -> None:
        # An earlier intent of this position was sent back for a retry: later ones wait too.
        waiting = self._waiting.get(position_id)
        if waiting is not None and waiting[0] < seq and time.monotonic() < waiting[1]:
            raise _Retry(f"earlier intent seq {waiting[0]} is waiting", self.settings.busy_retry_s)

    def _retry(self, position_id: str, seq: int, msg: Msg, retry: _Retry) -> Disposition:
        self.stats.retried += 1
        deliveries = msg.metadata.num_delivered
        if deliveries >= self.settings.max_deliver:
            self._waiting.pop(position_id, None)
            return Term(f"gave up after {deliveries} deliveries: {retry.reason}")
        current = self._waiting.get(position_id)
        if current is None or seq <= current[0]:
            self._waiting[position_id] = (seq, time.monotonic() + self.settings.ack_wait_s)
        return Nak(delay_s=retry.delay_s, reason=retry.reason)

    async def _handle_leased(self, intent: ExecutionIntent, seq: int, deliveries: int) -> Ack:
        leases = self._state.leases
        pid = intent.position_id
        lease = await leases.acquire(pid, self.owner, intent.intent_id, seq)
        if lease is None:
            raise _Retry("position lease held by another replica", self.settings.busy_retry_s)
        try:
            return await self._handle_owned(intent, seq, deliveries)
        finally:
            await leases.release(pid, lease)

    async def _handle_owned(self, intent: ExecutionIntent, seq: int, deliveries: int) -> Ack:
        claim = await self._state.claims.get(intent.intent_id)
        if claim is not None and claim.state is ClaimState.DONE and claim.result is not None:
            return await self._republish(claim.result, seq)
        cursor = await self._state.cursors.get(intent.position_id)
        if claim is not None and claim.plan is not None:
            result = await self._resolve(intent, claim.plan, cursor, seq, deliveries)
        else:
            result = await self._fresh(intent, cursor, seq)
        return await self._finish(intent, seq, result)

    async def _fresh(self, intent: ExecutionIntent, cursor: Cursor, seq: int) -> ExecutionResult:
        if intent.is_expired():
            return self._skip(intent, SkipReason.EXPIRED, f"valid_until {intent.valid_until}")
        if seq < cursor.intent_seq:
            return self._skip(
                intent, SkipReason.SUPERSEDED, f"seq {seq} < position cursor {cursor.intent_seq}"
            )
        position = await self._read_position(intent.position_id, cursor)
        if position is None:
            return self._skip(intent, SkipReason.UNKNOWN_POSITION, "the ledger does not know it")
        prepared = await self._executor.prepare(intent, position)
        if isinstance(prepared, Skip):
            return results.skipped(intent, self.venue, prepared)
        plan = prepared
        if plan.client_order_id != client_order_id(intent.intent_id):
            plan = _with_cloid(plan, client_order_id(intent.intent_id))
        if intent.is_expired():  # the ledger read may have waited
            return self._skip(intent, SkipReason.EXPIRED, f"valid_until {intent.valid_until}")
        if await self._state.claims.claim(intent.intent_id, self.owner, plan) is None:
            raise _Retry("claimed concurrently; resolve on redelivery", self.settings.busy_retry_s)
        try:
            outcome = await self._executor.execute(plan, position)
        except Exception as exc:
            # The order may or may not exist: the claim stays; a redelivery looks it up.
            log.exception("execute failed for intent %s", intent.intent_id)
            raise _Retry(f"execute failed: {exc!r}", self.settings.ledger_retry_s) from exc
        self.stats.executed += 1
        return results.executed(intent, plan, outcome)

    async def _resolve(
        self,
        intent: ExecutionIntent,
        plan: ExecutionPlan,
        cursor: Cursor,
        seq: int,
        deliveries: int,
    ) -> ExecutionResult:
        """Settle an intent claimed earlier (crash mid-way): ask the venue, never guess."""
        try:
            outcome = await self._executor.lookup(plan)
        except NotImplementedError:
            return results.unknown(intent, plan, "order lookup impossible: the venue has none")
        except Exception as exc:
            if deliveries < self.settings.lookup_attempts:
                raise _Retry(f"lookup failed: {exc!r}", self.settings.ledger_retry_s) from exc
            return results.unknown(intent, plan, f"order lookup impossible: {exc!r}")
        if outcome is not None:
            return results.executed(intent, plan, outcome)
        # Never placed: execute it now with the same client order id, unless too late.
        if intent.is_expired():
            return self._skip(intent, SkipReason.EXPIRED, "claimed but never placed")
        if seq < cursor.intent_seq:
            return self._skip(intent, SkipReason.SUPERSEDED, "claimed but never placed")
        position = await self._read_position(intent.position_id, cursor)
        if position is None:
            return self._skip(intent, SkipReason.UNKNOWN_POSITION, "the ledger does not know it")
        try:
            outcome = await self._executor.execute(plan, position)
        except Exception as exc:
            raise _Retry(f"execute failed: {exc!r}", self.settings.ledger_retry_s) from exc
        self.stats.executed += 1
        return results.executed(intent, plan, outcome)

    async def _read_position(self, position_id: str, cursor: Cursor) -> Position | None:
        try:
            return await self._positions.get(position_id, min_results_seq=cursor.results_seq)
        except (LedgerUnavailable, LedgerError) as exc:
            raise _Retry(f"ledger: {exc}", self.settings.ledger_retry_s) from exc

    def _skip(self, intent: ExecutionIntent, reason: SkipReason, detail: str) -> ExecutionResult:
        return results.skipped(intent, self.venue, Skip(reason=reason.value, detail=detail))

    async def _finish(self, intent: ExecutionIntent, seq: int, result: ExecutionResult) -> Ack:
        ack = await self._publisher.result(result)
        await self._state.claims.finish(intent.intent_id, self.owner, result)
        await self._state.cursors.advance(intent.position_id, intent_seq=seq, results_seq=ack.seq)
        if result.plan is None:
            self.stats.skipped += 1
        return Ack()

    async def _republish(self, result: ExecutionResult, seq: int) -> Ack:
        ack = await self._publisher.result(result)
        await self._state.cursors.advance(result.position_id, intent_seq=seq, results_seq=ack.seq)
        self.stats.republished += 1
        return Ack()


def _with_cloid(plan: ExecutionPlan, cloid: str) -> ExecutionPlan:
    return msgspec.structs.replace(plan, client_order_id=cloid)
