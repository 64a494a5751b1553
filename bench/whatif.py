"""The what-if replay rate: ``python -m bench.whatif [--intents N]`` (``just bench-whatif``).

Publishes N small intents on one position into an embedded nats-server, then runs
``replay --mode what-if`` over them (a paper venue server for the rules, the fake
ledger for the position) and prints intents per second and the RSS before and after.
``just bench`` runs it as its ``whatif`` stage (target: at least 20,000 intents/s).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import psutil

from intentbus.bus import BusSettings, Topology, connect, provision
from intentbus.bus.embedded import EmbeddedNatsServer
from intentbus.cli.reader import Selection
from intentbus.cli.replay import run_what_if
from intentbus.schemas import build_intent, encode
from intentbus.testing.fake_ledger import FakeLedger
from intentbus.venues.paper import PaperConfig
from intentbus.venues.paper.server import PaperVenueServer


async def measure(url: str, count: int) -> tuple[float, int, int]:
    """Return (intents per second, RSS before, RSS after) of one what-if run."""
    nc = await connect(BusSettings.from_env(url, name="bench-whatif"))
    js = nc.jetstream()
    topology = Topology("benchwhatif")
    await provision(js, topology)
    server = PaperVenueServer(nc, js, topology, PaperConfig(prices={"BTC": 100.0}))
    ledger = FakeLedger(nc, js, topology)
    await server.start()
    await ledger.start()
    ledger.open("p1", allocation_usd=1_000.0)
    template = build_intent(
        action="add", size_frac=0.5, position_id="p1", token_contract="BTC",
        token_chain="paper", book_id="main",
    )  # fmt: skip
    raw, subject = encode(template), topology.intents_subject("paper", "main", "p1")
    for start in range(0, count, 2_000):
        acks = [
            await js.publish_async(
                subject, raw.replace(template.intent_id.encode(), f"i{n:08d}".encode())
            )
            for n in range(start, min(count, start + 2_000))
        ]
        await asyncio.gather(*acks)
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.monotonic()
    report = await run_what_if(nc, js, topology, Selection(venue="paper"))
    elapsed = time.monotonic() - started
    after = process.memory_info().rss
    assert report.total == count
    await ledger.stop()
    await server.stop()
    await nc.drain()
    return count / elapsed, before, after


def main() -> None:
    """Run the measurement on a fresh embedded server."""
    parser = argparse.ArgumentParser(prog="python -m bench.whatif", description=__doc__)
    parser.add_argument("--intents", type=int, default=100_000)
    args = parser.parse_args()
    with EmbeddedNatsServer() as server:
        rate, before, after = asyncio.run(measure(server.url, args.intents))
    print(
        f"what-if replay: {args.intents:,} intents at {rate:,.0f} intents/s; "
        f"RSS {before / 1e6:.0f} MB before, {after / 1e6:.0f} MB after"
    )


if __name__ == "__main__":
    main()
