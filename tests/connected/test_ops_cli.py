"""Operator commands: the halt switch, status, tail filters and dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from nats.js import JetStreamContext
from typer.testing import CliRunner

from intentbus.bus import BusSettings, HaltStore, Publisher, Topology, connect, provision
from intentbus.command.app import build_app
from intentbus.schemas import DeadLetter, ExecutionIntent, HaltMode, build_intent, decode, encode

runner = CliRunner()
T = TypeVar("T")


def _with_js(url: str, topology: Topology, work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    async def go() -> T:
        nc = await connect(BusSettings.from_env(url))
        try:
            js = nc.jetstream()
            await provision(js, topology)
            return await work(js)
        finally:
            await nc.drain()

    return asyncio.run(go())


def _cli(url: str, topology: Topology, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        build_app(), [*args, "--nats-url", url, "--namespace", topology.namespace]
    )
    return result.exit_code, result.output


def _intent(intent_id: str, book: str = "main", action: str = "add") -> ExecutionIntent:
    return build_intent(
        action=action,
        size_frac=0.5,
        position_id=f"pos-{intent_id}",
        token_contract="BTC",
        token_chain="paper",
        book_id=book,
        intent_id=intent_id,
    )


def test_halt_reduce_only_and_resume_set_the_switch_and_status_shows_it(
    nats_url: str, topology: Topology
) -> None:
    code, out = _cli(nats_url, topology, "halt", "--venue", "paper")
    assert code == 2
    assert "--reason is required" in out
    code, out = _cli(
        nats_url, topology, "reduce-only", "--venue", "paper", "--reason", "vol", "--by", "alice"
    )
    assert code == 0, out
    code, out = _cli(nats_url, topology, "halt", "--book", "risky", "--reason", "limit breach")
    assert code == 0, out

    async def switches(js: JetStreamContext) -> dict[str, HaltMode]:
        store = await HaltStore.open(js, topology)
        return {s.scope: s.mode for s in await store.load()}

    assert _with_js(nats_url, topology, switches) == {
        "venue paper": HaltMode.REDUCING,
        "book risky": HaltMode.HALTED,
    }
    code, out = _cli(nats_url, topology, "status")
    assert code == 0, out
    assert "venue paper" in out
    assert "reducing" in out
    assert "alice" in out
    assert "dead letters: 0" in out
    assert topology.intents_stream in out
    code, out = _cli(nats_url, topology, "resume", "--venue", "paper", "--reason", "calm")
    assert code == 0, out
    assert _with_js(nats_url, topology, switches)["venue paper"] is HaltMode.ACTIVE


def test_tail_filters_by_book_action_and_start_sequence(nats_url: str, topology: Topology) -> None:
    sent = [
        _intent("ia-first-add", "main"),
        _intent("ib-other-add", "other"),
        _intent("ic-main-trim", "main", "trim"),
        _intent("id-main-add2", "main"),
    ]

    async def publish(js: JetStreamContext) -> None:
        for one in sent:
            await Publisher(js, topology).intent(one)

    _with_js(nats_url, topology, publish)
    tail = ("tail", "intents", "--all", "--idle-exit", "1")
    code, out = _cli(nats_url, topology, *tail, "--venue", "paper", "--book", "main")
    assert code == 0, out
    assert ["ia-" in out, "ib-" in out, "ic-" in out, "id-" in out] == [True, False, True, True]
    code, out = _cli(nats_url, topology, *tail, "--action", "trim")
    assert ["ia-" in out, "ib-" in out, "ic-" in out, "id-" in out] == [False, False, True, False]
    code, out = _cli(nats_url, topology, *tail, "--from-seq", "3")
    assert ["ia-" in out, "ib-" in out, "ic-" in out, "id-" in out] == [False, False, True, True]
    code, out = _cli(nats_url, topology, *tail, "--position", "pos-ib-other-add")
    assert ["ia-" in out, "ib-" in out, "ic-" in out, "id-" in out] == [False, True, False, False]


def test_deadletter_list_show_and_redrive_a_corrected_intent(
    nats_url: str, topology: Topology, tmp_path: Path
) -> None:
    bad = json.loads(encode(_intent("bad-1")))
    bad["size_frac"] = 7.0
    letter = DeadLetter(
        subject=f"{topology.namespace}.intents.paper.main.3.pos-bad-1",
        stream=topology.intents_stream,
        stream_seq=1,
        consumer="exec-paper-p3",
        error="invalid message: Expected `float` <= 1.0 - at `$.size_frac`",
        received_at=datetime.now(UTC),
        payload=json.dumps(bad),
    )

    async def dead_letter(js: JetStreamContext) -> None:
        await js.publish(topology.dead_letter_subject("INTENTS", "exec-paper-p3"), encode(letter))

    _with_js(nats_url, topology, dead_letter)
    code, out = _cli(nats_url, topology, "deadletter", "list")
    assert code == 0, out
    assert "exec-paper-p3" in out
    assert "size_frac" in out
    code, out = _cli(nats_url, topology, "deadletter", "show", "1")
    assert code == 0, out
    assert '"size_frac": 7.0' in out
    code, out = _cli(nats_url, topology, "deadletter", "redrive", "1", "--execute")
    assert code == 2
    assert "still invalid" in out
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**bad, "size_frac": 0.7}))
    code, out = _cli(nats_url, topology, "deadletter", "redrive", "1", "--file", str(fixed))
    assert code == 2
    assert "nothing was published" in out

    async def intents(js: JetStreamContext) -> list[ExecutionIntent]:
        info = await js.stream_info(topology.intents_stream)
        return [
            decode((await js.get_msg(topology.intents_stream, seq)).data or b"", ExecutionIntent)
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
            if info.state.messages
        ]

    assert _with_js(nats_url, topology, intents) == []
    args = ("deadletter", "redrive", "1", "--file", str(fixed), "--execute")
    code, out = _cli(nats_url, topology, *args)
    assert code == 0, out
    (redriven,) = _with_js(nats_url, topology, intents)
    assert redriven.intent_id != "bad-1"
    assert redriven.size_frac == 0.7
    assert "redrive_of=bad-1" in redriven.reason_codes
    assert redriven.valid_until > datetime.now(UTC)
