"""Warm-up: where a PM resumes on the CANDLES stream, and folding what is stored before it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from intentbus.bus import Topology


async def resume_point(js: JetStreamContext, topology: Topology, durable: str) -> int:
    """Return the first candle sequence the PM has not acknowledged.

    An existing durable resumes after its ack floor (or at its start); a PM without one
    resumes after the last stored candle: history warms it up and is never traded on.
    """
    stream = topology.candles_stream
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        return (await js.stream_info(stream)).state.last_seq + 1
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    return max((floor or 0) + 1, info.config.opt_start_seq or 1)


async def fold_stored(
    js: JetStreamContext,
    topology: Topology,
    resume: int,
    filters: Iterable[str],
    fold: Callable[[Msg], bool],
    *,
    idle_s: float = 5.0,
) -> int:
    """Pass every stored candle below ``resume`` matching ``filters`` to ``fold``, in order.

    Return how many ``fold`` accepted.
    """
    if resume <= 1:
        return 0
    wanted = list(filters)
    sub = await js.subscribe(
        topology.candles_filter(),
        stream=topology.candles_stream,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )
    folded = 0
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_s)
            except NatsTimeoutError:
                break  # nothing more stored below ``resume`` (aged out or deleted)
            seq = msg.metadata.sequence.stream
            if seq >= resume:
                break
            if any(subject_matches(f, msg.subject) for f in wanted) and fold(msg):
                folded += 1
            if seq == resume - 1:
                break
    finally:
        await sub.unsubscribe()
    return folded


def subject_matches(pattern: str, subject: str) -> bool:
    """Say whether ``subject`` matches a NATS filter with ``*`` and ``>`` wildcards."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)
