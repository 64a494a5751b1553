"""Claims: what an executor did, or is doing, with each intent (KV bucket ``EXECUTIONS``).

A claim ``{state: claimed, owner, client_order_id, plan}`` is created *before* the order
is sent; once the result is final it becomes ``{state: done, result}`` (written while the
result is published: a ``done`` claim is republished until the intent is acked). A result
that sends nothing (a skip) is recorded by *creating* a ``done`` claim before it is
published, so it can never be published over a claim of an order.
A redelivered intent with a ``done`` claim republishes the stored result (same
``result_id``: the stream and the ledger drop the copy); with a ``claimed`` claim the
runtime asks the venue for the order by its client order id instead of guessing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import msgspec
from nats.aio.client import Client
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from intentbus.bus import Replies
from intentbus.schemas import ExecutionPlan, ExecutionResult


class ClaimState(StrEnum):
    """Lifecycle of a claim."""

    CLAIMED = "claimed"
    DONE = "done"


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """Record one intent's execution: claimed before sending, done once the result is stored."""

    intent_id: str
    state: ClaimState
    owner: str
    client_order_id: str = ""
    plan: ExecutionPlan | None = None
    result: ExecutionResult | None = None
    claimed_at: datetime | None = None
    revision: int = 0


class _Stored(msgspec.Struct, frozen=True, kw_only=True):
    intent_id: str
    state: ClaimState
    owner: str
    client_order_id: str = ""
    plan: ExecutionPlan | None = None
    result: ExecutionResult | None = None
    claimed_at: datetime | None = None


_decoder = msgspec.json.Decoder(_Stored)
_TIMEOUT_S = 5.0  # nats-py's KeyValue default
_CREATE_ONLY = {"Nats-Expected-Last-Subject-Sequence": "0"}
_WRONG_LAST_SEQUENCE = 10071  # JetStream's err_code for a failed expected sequence


class ClaimStore:
    """Read and write claims in one KV bucket, keyed by intent id.

    With ``replies`` (and the bucket's name) a claim is created and finished through
    them, the KV protocol's own messages on a lighter path; reads and the rare
    conflict go through nats-py's ``KeyValue``. With ``nc`` too, a finish may be sent
    unconfirmed (see :meth:`finish`).
    """

    def __init__(
        self,
        kv: KeyValue,
        *,
        replies: Replies | None = None,
        bucket: str = "",
        nc: Client | None = None,
    ) -> None:
        self._kv = kv
        self._replies = replies if bucket else None
        self._nc = nc if bucket else None
        self._subject = f"$KV.{bucket}."

    async def _create(self, key: str, value: bytes) -> int:
        """Create ``key``; raise ``KeyWrongLastSequenceError`` when it exists."""
        if self._replies is None:
            return await self._kv.create(key, value)
        try:
            ack = await self._replies.publish(
                self._subject + key, value, timeout_s=_TIMEOUT_S, headers=_CREATE_ONLY
            )
        except APIError as exc:
            if exc.err_code != _WRONG_LAST_SEQUENCE:
                raise
            return await self._kv.create(key, value)  # exists, or deleted: nats-py decides
        return ack.seq

    async def _put(self, key: str, value: bytes) -> None:
        if self._replies is None:
            await self._kv.put(key, value)
            return
        await self._replies.publish(self._subject + key, value, timeout_s=_TIMEOUT_S)

    async def get(self, intent_id: str) -> Claim | None:
        """Return the claim of an intent, or None."""
        try:
            entry = await self._kv.get(intent_id)
        except KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        stored = _decoder.decode(entry.value)
        return Claim(**msgspec.structs.asdict(stored), revision=entry.revision or 0)

    async def claim(self, intent_id: str, owner: str, plan: ExecutionPlan) -> Claim | None:
        """Create a ``claimed`` record before sending; return None if one already exists."""
        stored = _Stored(
            intent_id=intent_id,
            state=ClaimState.CLAIMED,
            owner=owner,
            client_order_id=plan.client_order_id,
            plan=plan,
            claimed_at=datetime.now(UTC),
        )
        try:
            revision = await self._create(intent_id, msgspec.json.encode(stored))
        except KeyWrongLastSequenceError:
            return None
        return Claim(**msgspec.structs.asdict(stored), revision=revision)

    async def record(self, intent_id: str, owner: str, result: ExecutionResult) -> bool:
        """Create a ``done`` record of a result that sent nothing (a skip).

        Return False when the intent already has a claim: it was (or is being) acted on,
        so this result must not be published.
        """
        stored = _done(intent_id, owner, result, datetime.now(UTC))
        try:
            await self._create(intent_id, msgspec.json.encode(stored))
        except KeyWrongLastSequenceError:
            return False
        return True

    async def finish(
        self,
        intent_id: str,
        owner: str,
        result: ExecutionResult,
        *,
        claimed_at: datetime | None = None,
        read_previous: bool = True,
        confirmed: bool = True,
    ) -> None:
        """Mark the intent done with its final result (the result is final: overwrite).

        ``claimed_at`` is kept from the claim: given, or read from it unless
        ``read_previous`` is False. ``confirmed=False`` sends the record without waiting
        for the stream's ack, for a result already published: were the record lost, the
        claim stays ``claimed``, and an intent delivered again asks the venue for the
        order and publishes the same result (same ids: dropped as a copy).
        """
        if claimed_at is None and read_previous:
            previous = await self.get(intent_id)
            claimed_at = previous.claimed_at if previous else None
        value = msgspec.json.encode(_done(intent_id, owner, result, claimed_at))
        if not confirmed and self._nc is not None:
            await self._nc.publish(self._subject + intent_id, value)
            return
        await self._put(intent_id, value)


def _done(
    intent_id: str, owner: str, result: ExecutionResult, claimed_at: datetime | None
) -> _Stored:
    return _Stored(
        intent_id=intent_id,
        state=ClaimState.DONE,
        owner=owner,
        client_order_id=result.client_order_id or "",
        plan=result.plan,
        result=result,
        claimed_at=claimed_at,
    )
