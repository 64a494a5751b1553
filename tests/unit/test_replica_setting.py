"""NATS_REPLICAS sets how many servers keep each stream and KV bucket."""

from __future__ import annotations

import pytest

from intentbus.bus import StreamSpec
from intentbus.bus.streams import bucket_config


def test_one_replica_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NATS_REPLICAS", raising=False)
    assert StreamSpec(name="S", subjects=("s.>",)).config().num_replicas == 1
    assert bucket_config("B").replicas == 1


def test_three_replicas_on_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_REPLICAS", "3")
    assert StreamSpec(name="S", subjects=("s.>",)).config().num_replicas == 3
    assert bucket_config("B", history=64, ttl_s=60.0).replicas == 3


@pytest.mark.parametrize("raw", ["0", "6", "three"])
def test_a_bad_count_is_refused_clearly(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("NATS_REPLICAS", raw)
    with pytest.raises(
        ValueError, match=f"NATS_REPLICAS must be a whole number from 1 to 5, not '{raw}'"
    ):
        StreamSpec(name="S", subjects=("s.>",))
