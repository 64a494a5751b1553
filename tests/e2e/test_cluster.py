"""The paper pipeline on a 3-node JetStream cluster at R3 rides through a node's SIGKILL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client

from intentbus.bus import BusSettings, Topology, connect, core_streams, ensure_stream
from intentbus.bus.streams import DAY
from intentbus.cli.processes import ServiceProcesses
from intentbus.testing.cluster import NatsCluster
from intentbus.testing.system import ProcessSystem
from tests.e2e.paper_load import check, intents, publish_paced, start

pytestmark = pytest.mark.timeout(300)

COUNT, RATE = 10_000, 250.0
# R3 replicates every claim, order and ack: the pipeline runs slower than it is fed here,
# and the last intents wait past the default 60 s deadline (skipped ``expired``).
TTL = timedelta(minutes=10)
KILL_AT, RESTART_AT = 3_000, 5_000  # intents published (the rest still to come)


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NatsCluster]:
    monkeypatch.setenv("NATS_REPLICAS", "3")  # every stream and bucket, here and in services
    with NatsCluster(str(tmp_path / "cluster")) as started:
        yield started


@pytest_asyncio.fixture
async def cluster_nc(cluster: NatsCluster) -> AsyncIterator[Client]:
    await cluster.wait_ready()
    client = await connect(BusSettings.from_env(cluster.url, name="cluster-test"))
    yield client
    await client.close()


async def test_a_node_killed_mid_run_loses_and_doubles_nothing_on_r3(
    cluster: NatsCluster, cluster_nc: Client, tmp_path: Path
) -> None:
    topology = Topology("cluster")
    js = cluster_nc.jetstream()
    with ServiceProcesses(tmp_path) as processes:
        system = ProcessSystem(cluster.url, topology, tmp_path, processes)
        await start(system, cluster_nc)
        info = await js.stream_info(topology.intents_stream)
        assert info.config.num_replicas == 3
        assert info.cluster is not None
        assert info.cluster.leader is not None
        victim = cluster.index_of(info.cluster.leader)  # the intents' leader: a new election

        async def kill() -> None:
            cluster.kill(victim)

        async def restart() -> None:
            cluster.restart(victim)

        batch = intents("cluster", COUNT, TTL)
        await publish_paced(cluster_nc, system, batch, {KILL_AT: kill, RESTART_AT: restart}, RATE)
        await check(cluster_nc, system, batch, timeout_s=180)
        for stream in (topology.results_stream, topology.fills_stream):
            assert (await js.stream_info(stream)).config.num_replicas == 3
        assert processes.failed() == []
    # A process without NATS_REPLICAS that updates a stream never shrinks it.
    results = next(s for s in core_streams(topology) if s.name == topology.results_stream)
    assert await ensure_stream(js, replace(results, replicas=1, max_age_s=DAY))
    assert (await js.stream_info(results.name)).config.num_replicas == 3
