"""Issue 8: publishing the same spec-shape or legacy file twice stores each line once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from intentbus.bus import BusSettings, Topology, connect
from intentbus.command.app import build_app

runner = CliRunner()

SPEC_LINE = {
    "action": "add",
    "size_frac": 0.5,
    "urgency": "medium",
    "priority": 50,
    "state": "S1",
    "a_final": 0.4,
    "e_final": 0.1,
    "position_id": "p1",
    "token_contract": "ETH",
    "token_chain": "paper",
    "book_id": "main",
    "timeframe": "1h",
}
LEGACY_LINE = {
    "decision_type": "trim",
    "size_frac": 0.25,
    "id": "p2",
    "token_contract": "SOL",
    "token_chain": "paper",
    "book_id": "main",
    "timeframe": "1h",
}


def _stored(url: str, topology: Topology) -> int:
    async def count() -> int:
        nc = await connect(BusSettings.from_env(url))
        try:
            info = await nc.jetstream().stream_info(topology.intents_stream)
            return info.state.messages
        finally:
            await nc.drain()

    return asyncio.run(count())


def test_rerunning_a_spec_and_legacy_file_is_deduplicated(
    nats_url: str, topology: Topology, tmp_path: Path
) -> None:
    hold = {**LEGACY_LINE, "decision_type": "hold"}
    lines = [SPEC_LINE, LEGACY_LINE, {**SPEC_LINE, "action": "hold"}, hold]
    path = tmp_path / "intents.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    ns = ["--nats-url", nats_url, "--namespace", topology.namespace]
    first = runner.invoke(build_app(), ["publish", "--file", str(path), *ns])
    assert first.exit_code == 0, first.output
    assert "2 hold line(s) skipped (line 3, 4)" in first.output
    assert _stored(nats_url, topology) == 2
    again = runner.invoke(build_app(), ["publish", "--file", str(path), *ns])
    assert again.exit_code == 0, again.output
    assert _stored(nats_url, topology) == 2
    assert again.output.count("yes") == 2
