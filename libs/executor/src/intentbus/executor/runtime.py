"""The executor runtime: consume one venue's intents, execute each once, publish results.

Per intent: take the position lease, which returns the position cursor (one KV record,
:mod:`intentbus.executor.ordering`); on a redelivery, settle an existing claim first (done
-> republish the stored result; claimed -> ask the venue). Otherwise: expired -> SKIPPED;
below the position cursor -> SKIPPED superseded; read the position (read-your-writes on
the cursor's ``results_seq``); ``prepare`` -> skip, or create the claim -> ``execute``. A
skip is recorded by creating a done claim before it is published, so it never goes out
over an existing claim; an executed result is published while its claim is marked done.
Then the lease is freed and the cursor advanced in one write, and only then is the
intent acked. A crash anywhere leaves a state a redelivery resolves without a second
order (see :mod:`intentbus.executor.claims`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

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
from intentbus.executor.claims import Claim, ClaimState, ClaimStore
from intentbus.executor.kv import ensure_bucket
from intentbus.executor.ordering import Cursor, PositionSlots
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
    slots: PositionSlots


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
            slots=PositionSlots(
                await ensure_bucket(self._js, bucket(CURSORS_BUCKET)),
                ttl_s=self.settings.lease_ttl_s,
            ),
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
        slots = self._state.slots
        pid = intent.position_id
        held = await slots.acquire(pid, self.owner, intent.intent_id, seq)
        if held is None:
            raise _Retry("position lease held by another replica", self.settings.busy_retry_s)
        advance: Cursor | None = None
        try:
            results_seq = await self._handle_owned(intent, seq, deliveries, held.cursor)
            advance = Cursor(intent_seq=seq, results_seq=results_seq)
        finally:
            await slots.release(pid, held, advance)  # frees the lease, advances the cursor
        return Ack()

    async def _handle_owned(
        self, intent: ExecutionIntent, seq: int, deliveries: int, cursor: Cursor
    ) -> int:
        """Handle an intent under its position's lease; return the ``RESULTS`` sequence."""
        if deliveries > 1:  # delivered before: a claim is likely, settle it first
            claim = await self._state.claims.get(intent.intent_id)
            if claim is not None:
                return await self._settle(intent, claim, cursor, seq, deliveries)
        # First delivery: no read; creating the claim (or the skip's done record) is the
        # check, and an existing claim sends the intent back to be settled.
        outcome = await self._fresh(intent, cursor, seq)
        if isinstance(outcome, _Claimed):
            return await self._finish(intent, outcome.result, claimed_at=outcome.claimed_at)
        if not await self._state.claims.record(intent.intent_id, self.owner, outcome):
            raise _Retry("intent claimed already; settle on redelivery", self.settings.busy_retry_s)
        return await self._publish(outcome)

    async def _settle(
        self, intent: ExecutionIntent, claim: Claim, cursor: Cursor, seq: int, deliveries: int
    ) -> int:
        """Settle an existing claim: republish a done one, resolve a claimed one."""
        if claim.state is ClaimState.DONE and claim.result is not None:
            results_seq = await self._publish(claim.result, count=False)
            self.stats.republished += 1
            return results_seq
        if claim.plan is None:  # not written by this runtime: nothing to resolve
            raise _Retry(f"claim of {intent.intent_id} has no plan", self.settings.ledger_retry_s)
        result = await self._resolve(intent, claim.plan, cursor, seq, deliveries)
        return await self._finish(intent, result, claimed_at=claim.claimed_at)

    async def _fresh(
        self, intent: ExecutionIntent, cursor: Cursor, seq: int
    ) -> ExecutionResult | _Claimed:
        """Return a skip (not yet recorded) or the result of an order sent under a new claim."""
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
        cloid = client_order_id(intent.intent_id)
        if plan.client_order_id != cloid:
            plan = _with_cloid(plan, cloid)
        if intent.is_expired():  # the ledger read may have waited
            return self._skip(intent, SkipReason.EXPIRED, f"valid_until {intent.valid_until}")
        claim = await self._state.claims.claim(intent.intent_id, self.owner, plan)
        if claim is None:
            raise _Retry("claimed concurrently; resolve on redelivery", self.settings.busy_retry_s)
        try:
            outcome = await self._executor.execute(plan, position)
        except Exception as exc:
            # The order may or may not exist: the claim stays; a redelivery looks it up.
            log.exception("execute failed for intent %s", intent.intent_id)
            raise _Retry(f"execute failed: {exc!r}", self.settings.ledger_retry_s) from exc
        self.stats.executed += 1
        return _Claimed(results.executed(intent, plan, outcome), claim.claimed_at)

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
            return await self._fenced_skip(intent, plan, SkipReason.EXPIRED)
        if seq < cursor.intent_seq:
            return await self._fenced_skip(intent, plan, SkipReason.SUPERSEDED)
        position = await self._read_position(intent.position_id, cursor)
        if position is None:
            return await self._fenced_skip(intent, plan, SkipReason.UNKNOWN_POSITION)
        try:
            outcome = await self._executor.execute(plan, position)
        except Exception as exc:
            raise _Retry(f"execute failed: {exc!r}", self.settings.ledger_retry_s) from exc
        self.stats.executed += 1
        return results.executed(intent, plan, outcome)

    async def _fenced_skip(
        self, intent: ExecutionIntent, plan: ExecutionPlan, reason: SkipReason
    ) -> ExecutionResult:
        """Skip a claimed, unplaced order only once the venue guarantees it never will be.

        The replica that claimed it may be stalled, not dead: without the fence it could
        still send the order after this skip is published.
        """
        try:
            outcome = await self._executor.fence(plan)
        except NotImplementedError:
            return results.unknown(
                intent, plan, f"{reason.value}, but the claimed order cannot be fenced here"
            )
        if outcome is not None:  # the claimant placed it after all: report what it did
            return results.executed(intent, plan, outcome)
        return self._skip(intent, reason, "claimed but never placed; client order id fenced")

    async def _read_position(self, position_id: str, cursor: Cursor) -> Position | None:
        try:
            return await self._positions.get(position_id, min_results_seq=cursor.results_seq)
        except (LedgerUnavailable, LedgerError) as exc:
            raise _Retry(f"ledger: {exc}", self.settings.ledger_retry_s) from exc

    def _skip(self, intent: ExecutionIntent, reason: SkipReason, detail: str) -> ExecutionResult:
        return results.skipped(intent, self.venue, Skip(reason=reason.value, detail=detail))

    async def _finish(
        self, intent: ExecutionIntent, result: ExecutionResult, *, claimed_at: datetime | None
    ) -> int:
        """Publish the final result of a claimed intent while marking its claim done.

        Both orders are safe: a done claim is republished on redelivery until the intent
        is acked, and the intent is acked only after both writes succeeded.
        """
        published, finished = await asyncio.gather(
            self._publish(result),
            self._state.claims.finish(
                intent.intent_id,
                self.owner,
                result,
                claimed_at=claimed_at,
                read_previous=False,
            ),
            return_exceptions=True,
        )
        if isinstance(finished, BaseException):
            raise finished
        if isinstance(published, BaseException):
            raise published
        return published

    async def _publish(self, result: ExecutionResult, *, count: bool = True) -> int:
        ack = await self._publisher.result(result)
        if count and result.plan is None:
            self.stats.skipped += 1
        return ack.seq


@dataclass(frozen=True)
class _Claimed:
    """The result of an order sent under a claim created by this handler."""

    result: ExecutionResult
    claimed_at: datetime | None


def _with_cloid(plan: ExecutionPlan, cloid: str) -> ExecutionPlan:
    return msgspec.structs.replace(plan, client_order_id=cloid)
