"""The test suite's docker backend (INTENTBUS_TEST_NATS=docker) on the local NATS image."""

from __future__ import annotations

from pathlib import Path

import pytest
from testcontainers.core.config import testcontainers_config

from intentbus.bus import BusSettings, Publisher, Topology, connect, provision
from intentbus.schemas import ActionType, build_intent
from intentbus.testing.docker_engine import LOCAL_NATS_IMAGE, docker
from intentbus.testing.servers import NATS_IMAGE_ENV, fresh_namespace, start_endpoint


async def test_the_docker_backend_serves_jetstream_from_the_local_image(
    docker_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.setenv("INTENTBUS_TEST_NATS", "docker")
    monkeypatch.setenv(NATS_IMAGE_ENV, LOCAL_NATS_IMAGE)
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)  # no registry here
    endpoint = start_endpoint()
    try:
        assert endpoint.backend == "docker"
        container_id = endpoint.container.get_wrapped_container().id
        assert docker("inspect", "--format", "{{.Config.Image}}", container_id).strip() == (
            LOCAL_NATS_IMAGE
        )
        nc = await connect(BusSettings.from_env(endpoint.url, name="testcontainers-test"))
        try:
            topology = Topology(fresh_namespace())
            js = nc.jetstream()
            await provision(js, topology)
            intent = build_intent(
                action=ActionType.ADD,
                size_frac=0.1,
                position_id="tc-1",
                token_contract="BTC",
                token_chain="paper",
                book_id="tc",
                intent_id="tc-0001",
            )
            await Publisher(js, topology).intent(intent)
            stored = await js.stream_info(topology.intents_stream)
            assert stored.state.messages == 1
        finally:
            await nc.drain()
    finally:
        endpoint.close()
    assert docker("ps", "-q", "--filter", f"id={container_id}").strip() == ""
