"""The executor's lighter request and publish path against a real nats-server.

It must behave as nats-py's own calls do: the same PubAck, the same errors, so every
caller's handling (retry, conflict, ledger down) is unchanged.
"""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError, NoStreamResponseError

from intentbus.bus import Replies, Topology, provision
from intentbus.bus.publisher import MSG_ID
from intentbus.executor import results
from intentbus.executor.claims import ClaimState, ClaimStore
from intentbus.executor.kv import ensure_bucket
from intentbus.schemas import ExecutionIntent, Skip, SkipReason, build_intent
from intentbus.testing import wait_for


async def test_a_publish_is_acked_like_nats_py_and_deduplicated(
    nc: Client, js: JetStreamContext, topology: Topology
) -> None:
    await provision(js, topology)
    replies = Replies(nc)
    subject = topology.results_subject("paper", "main")
    first = await replies.publish(subject, b"{}", timeout_s=5, headers={MSG_ID: "m1"})
    again = await replies.publish(subject, b"{}", timeout_s=5, headers={MSG_ID: "m1"})
    other = await js.publish(subject, b"{}", headers={MSG_ID: "m2"})
    assert first.stream == topology.results_stream
    assert (first.seq, first.duplicate) == (1, None)
    assert (again.seq, again.duplicate) == (1, True)
    assert other.seq == 2


async def test_a_publish_to_no_stream_raises_nats_py_error(nc: Client, topology: Topology) -> None:
    with pytest.raises(NoStreamResponseError):
        await Replies(nc).publish(f"{topology.namespace}.nowhere", b"x", timeout_s=2)


async def test_a_request_nobody_answers_raises_no_responders(
    nc: Client, topology: Topology
) -> None:
    with pytest.raises(NoRespondersError):
        await Replies(nc).request(f"{topology.namespace}.nobody", b"x", timeout_s=2)


async def test_a_request_answered_too_late_times_out_and_later_replies_are_dropped(
    nc: Client, topology: Topology
) -> None:
    subject = f"{topology.namespace}.slow"
    release = asyncio.Event()
    pending: list[Msg] = []

    async def hold(msg: Msg) -> None:
        pending.append(msg)
        await release.wait()
        await msg.respond(msg.data)

    sub = await nc.subscribe(subject, cb=hold)
    replies = Replies(nc)
    with pytest.raises(NatsTimeoutError):
        await replies.request(subject, b"late", timeout_s=0.2)
    release.set()
    answered = await replies.request(subject, b"next", timeout_s=5)  # not the late reply
    assert answered.data == b"next"
    assert [m.data for m in pending] == [b"late", b"next"]
    await sub.unsubscribe()


async def test_many_requests_in_flight_each_get_their_own_reply(
    nc: Client, topology: Topology
) -> None:
    subject = f"{topology.namespace}.echo"

    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)

    sub = await nc.subscribe(subject, cb=echo)
    replies = Replies(nc)
    answers = await asyncio.gather(
        *(replies.request(subject, str(i).encode(), timeout_s=5) for i in range(500))
    )
    assert [a.data for a in answers] == [str(i).encode() for i in range(500)]
    await sub.unsubscribe()


def _intent() -> ExecutionIntent:
    return build_intent(
        action="add",
        size_frac=0.1,
        position_id="p1",
        token_contract="BTC",
        token_chain="paper",
        book_id="main",
    )


async def test_claims_through_replies_create_once_and_finish(
    nc: Client, js: JetStreamContext, topology: Topology
) -> None:
    name = topology.bucket("claims-replies")
    kv = await ensure_bucket(js, name)
    claims = ClaimStore(kv, replies=Replies(nc), bucket=name)
    intent = _intent()
    skip = Skip(reason=SkipReason.EXPIRED.value, detail="test")
    skipped = results.skipped(intent, "paper", skip)
    assert await claims.record(intent.intent_id, "me", skipped) is True
    assert await claims.record(intent.intent_id, "other", skipped) is False  # exists
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.create(intent.intent_id, b"{}")  # the bucket itself agrees
    await claims.finish(intent.intent_id, "me", skipped, read_previous=False)
    stored = await claims.get(intent.intent_id)
    assert stored is not None
    assert (stored.state, stored.owner, stored.result) == (ClaimState.DONE, "me", skipped)
    assert stored.revision == 2
    await js.delete_key_value(name)


async def test_an_unconfirmed_finish_is_stored_all_the_same(
    nc: Client, js: JetStreamContext, topology: Topology
) -> None:
    name = topology.bucket("claims-unconfirmed")
    kv = await ensure_bucket(js, name)
    claims = ClaimStore(kv, replies=Replies(nc), bucket=name, nc=nc)
    intent = _intent()
    done = results.skipped(intent, "paper", Skip(reason=SkipReason.HOLD.value))
    await claims.finish(intent.intent_id, "me", done, read_previous=False, confirmed=False)
    stored = await wait_for(
        lambda: claims.get(intent.intent_id), until=lambda c: c is not None, what="the claim"
    )
    assert stored is not None
    assert (stored.state, stored.result) == (ClaimState.DONE, done)
    await js.delete_key_value(name)
