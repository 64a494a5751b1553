"""The raw baseline's three processes, plain nats-py on JetStream file storage.

Run as ``python -m bench.raw_proc ROLE ...``:

- ``producer``: publishes ``--count`` messages of ``--size`` bytes at ``--rate``/s
  (0: as fast as ``publish_async`` with ``--max-pending`` allows); each carries its
  run id, sequence, count and ``time.time_ns()`` at publish.
- ``service``: pull-fetches batches of up to 100, republishes each to the next stream
  with ``time.time_ns()`` at receipt appended (the one-hop time), waits for those
  PubAcks, then acks the batch (what an executor does, minus the work).
- ``sink``: pull-fetches, records ``time.time_ns()`` on receipt, acks, and writes
  ``run-<id>.json`` (sent, service receipt and sink receipt ns per message) once a run
  is complete.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path

import nats

from bench.pacing import wait_turn

BATCH = 100


def make_payload(run: str, seq: int, count: int, size: int) -> bytes:
    """Return a message of ``size`` bytes carrying run, sequence, count and send time."""
    head = f"{run}|{seq}|{count}|{time.time_ns()}|".encode()
    return head + b"x" * max(0, size - len(head))


def parse_payload(data: bytes) -> tuple[str, int, int, int]:
    """Return (run, seq, count, sent_ns) from a payload made by :func:`make_payload`."""
    run, seq, count, sent, _ = data.split(b"|", 4)
    return run.decode(), int(seq), int(count), int(sent)


def stamp_hop(data: bytes, received_ns: int) -> bytes:
    """Append the service's receipt time to a payload."""
    return data + b"|" + str(received_ns).encode()


def hop_of(data: bytes) -> int:
    """Return the receipt time :func:`stamp_hop` appended."""
    return int(data.rsplit(b"|", 1)[1])


async def producer(args: argparse.Namespace) -> None:
    """Publish the run and print a one-line JSON summary."""
    nc = await nats.connect(args.url, name="bench-raw-producer")
    js = nc.jetstream(publish_async_max_pending=args.max_pending)
    start = time.monotonic() + 0.05
    first_ns = time.time_ns()
    for seq in range(args.count):
        await wait_turn(start, seq, args.rate)
        await js.publish_async(args.subject, make_payload(args.run, seq, args.count, args.size))
    await asyncio.wait_for(js.publish_async_completed(), timeout=60)
    elapsed = (time.time_ns() - first_ns) / 1e9
    print(json.dumps({"published": args.count, "elapsed_s": elapsed}), flush=True)
    await nc.drain()


async def _stoppable(role_loop: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, role_loop.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await role_loop


async def service(args: argparse.Namespace) -> None:
    """Republish every message of ``--durable`` to ``--out``, acking after the PubAcks."""
    nc = await nats.connect(args.url, name="bench-raw-service")
    js = nc.jetstream(publish_async_max_pending=args.max_pending)
    sub = await js.pull_subscribe_bind(durable=args.durable, stream=args.stream)

    async def loop() -> None:
        print("ready", flush=True)
        while True:
            try:
                msgs = await sub.fetch(BATCH, timeout=0.5)
            except TimeoutError:  # nats-py raises asyncio's (= builtin) or its own subclass
                continue
            received = time.time_ns()
            acks = [await js.publish_async(args.out, stamp_hop(msg.data, received)) for msg in msgs]
            await asyncio.gather(*acks)
            for msg in msgs:
                await msg.ack()

    await _stoppable(asyncio.create_task(loop()))
    await nc.close()


async def sink(args: argparse.Namespace) -> None:
    """Record receive times per run and write each run's file once it is complete."""
    nc = await nats.connect(args.url, name="bench-raw-sink")
    js = nc.jetstream()
    sub = await js.pull_subscribe_bind(durable=args.durable, stream=args.stream)
    out_dir = Path(args.out)
    runs: dict[str, dict[int, tuple[int, int, int]]] = {}

    async def loop() -> None:
        print("ready", flush=True)
        while True:
            try:
                msgs = await sub.fetch(BATCH, timeout=0.5)
            except TimeoutError:  # nats-py raises asyncio's (= builtin) or its own subclass
                continue
            received = time.time_ns()
            for msg in msgs:
                run, seq, count, sent = parse_payload(msg.data)
                seen = runs.setdefault(run, {})
                seen.setdefault(seq, (sent, hop_of(msg.data), received))
                await msg.ack()
                if len(seen) == count:
                    _write_run(out_dir, run, runs.pop(run))

    await _stoppable(asyncio.create_task(loop()))
    await nc.close()


def _write_run(out_dir: Path, run: str, seen: dict[int, tuple[int, int, int]]) -> None:
    rows = [seen[seq] for seq in sorted(seen)]
    sent, hop, done = ([row[i] for row in rows] for i in range(3))
    tmp = out_dir / f"run-{run}.json.tmp"
    tmp.write_text(json.dumps({"sent": sent, "hop": hop, "done": done}))
    tmp.rename(out_dir / f"run-{run}.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the role and its options."""
    parser = argparse.ArgumentParser(prog="python -m bench.raw_proc")
    parser.add_argument("role", choices=("producer", "service", "sink"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--subject", default="")
    parser.add_argument("--stream", default="")
    parser.add_argument("--durable", default="")
    parser.add_argument("--out", default="", help="service: subject; sink: folder")
    parser.add_argument("--run", default="0")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--max-pending", type=int, default=256)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run one role until it is done (producer) or terminated (service, sink)."""
    args = parse_args(argv)
    role = {"producer": producer, "service": service, "sink": sink}[args.role]
    asyncio.run(role(args))


if __name__ == "__main__":
    main()
