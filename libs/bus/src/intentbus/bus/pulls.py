"""Pull what a consumer holds now, else wait for the next message: never hold one back.

nats-py's ``PullSubscription.fetch(batch)``, when nothing is pending, leaves a request
for ``batch`` messages with the server and, once the first arrives, waits for the rest
until its timeout. At a low rate the first message then waits for ``batch - 1`` later
ones: seen as about 200 ms on every intent of some positions with two executor replicas
at 200 intents/s (a partition gets an intent every 80 ms). :func:`pull` asks for what is
pending without waiting (``no_wait``); only when that is nothing does it wait, and then
for one message, so a message is handed over as soon as it arrives. What arrives while
it is handled is picked up by the next call.
"""

from __future__ import annotations

import json
import time

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

_STATUS = "Status"
_HEARTBEAT = "100"
_MARGIN_S = 0.25  # wait this much past a lingering request's expiry for its 408


async def pull(sub: JetStreamContext.PullSubscription, batch: int, timeout_s: float) -> list[Msg]:
    """Return up to ``batch`` messages pending now, or the next one within ``timeout_s``.

    An empty list: nothing arrived in time. Server errors that are not about an empty
    consumer (no leader: 503, ...) raise nats-py's ``APIError`` subclasses, as ``fetch``.
    """
    now = await _request(sub, {"batch": batch, "no_wait": True}, batch, timeout_s)
    if now:
        return now
    expires_ns = max(int(timeout_s * 1e9) - 100_000, 1_000_000)
    return await _request(sub, {"batch": 1, "expires": expires_ns}, 1, timeout_s + _MARGIN_S)


async def _request(
    sub: JetStreamContext.PullSubscription,
    request: dict[str, object],
    wanted: int,
    timeout_s: float,
) -> list[Msg]:
    """Send one pull request; collect its messages until it ends (a status) or is met."""
    inbox = sub._sub
    await sub._nc.publish(
        sub._nms,
        json.dumps(request).encode(),
        sub._deliver,
    )
    deadline = time.monotonic() + timeout_s
    msgs: list[Msg] = []
    while len(msgs) < wanted:
        msg = _queued(inbox)
        if msg is None:
            try:
                msg = await inbox.next_msg(timeout=max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                break
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            msgs.append(msg)
        elif status == _HEARTBEAT:
            continue
        # 404 no messages, 408 request expired, 409 (a limit): this request is over;
        # anything else (503 no leader...) raises as nats-py's fetch would.
        elif JetStreamContext._is_processable_msg(status, msg) is False:
            break
    return msgs


def _queued(inbox: Subscription) -> Msg | None:
    """Return a message the inbox holds already, as ``next_msg`` would, or None.

    ``next_msg`` pays a task, a ``wait_for`` and a UUID per message even when one is
    queued; a batch's messages after the first nearly always are (they arrive in one
    read). This takes them as ``next_msg`` does, keeping the inbox's pending count.
    """
    queue = inbox._pending_queue
    if queue.empty():
        return None
    msg: Msg = queue.get_nowait()
    inbox._pending_size -= len(msg.data)
    queue.task_done()
    return msg
