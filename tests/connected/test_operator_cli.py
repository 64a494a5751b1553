"""``intentbus publish`` and ``tail`` against a real server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from nats.js.errors import NotFoundError
from typer.testing import CliRunner

from intentbus.bus import BusSettings, Topology, connect
from intentbus.command.app import build_app
from intentbus.schemas import Mark, build_intent, decode, encode

runner = CliRunner()


def _line(position: str, **extra: object) -> str:
    intent = build_intent(
        action="add",
        size_frac=0.2,
        position_id=position,
        token_contract="BTC",
        token_chain="paper",
        book_id="main",
    )
    raw = json.loads(encode(intent))
    raw.update(extra)
    return json.dumps(raw)


def _publish_flags(book: str) -> list[str]:
    """Return ``publish`` with the flags of one ADD of 0.3 on position p9."""
    return [
        "publish",
        "--action",
        "add",
        "--size-frac",
        "0.3",
        "--position",
        "p9",
        "--symbol",
        "ETH",
        "--venue",
        "paper",
        "--book",
        book,
    ]


def _stored(url: str, topology: Topology) -> int:
    async def count() -> int:
        nc = await connect(BusSettings.from_env(url))
        try:
            info = await nc.jetstream().stream_info(topology.intents_stream)
            return info.state.messages
        except NotFoundError:  # nothing was ever provisioned: nothing was published
            return 0
        finally:
            await nc.drain()

    return asyncio.run(count())


def test_a_file_with_an_invalid_line_publishes_nothing(
    nats_url: str, topology: Topology, tmp_path: Path
) -> None:
    path = tmp_path / "intents.jsonl"
    path.write_text("\n".join([_line("p1"), _line("p2", size_frac=7), _line("p3")]) + "\n")
    ns = ["--nats-url", nats_url, "--namespace", topology.namespace]
    refused = runner.invoke(build_app(), ["publish", "--file", str(path), *ns])
    assert refused.exit_code == 2
    assert "size_frac" in refused.output
    assert "nothing was published" in refused.output
    assert _stored(nats_url, topology) == 0

    partial = runner.invoke(build_app(), ["publish", "--file", str(path), "--skip-invalid", *ns])
    assert partial.exit_code == 0, partial.output
    assert _stored(nats_url, topology) == 2


def test_flags_publish_one_intent_and_tail_shows_it(nats_url: str, topology: Topology) -> None:
    ns = ["--nats-url", nats_url, "--namespace", topology.namespace]
    published = runner.invoke(
        build_app(),
        [*_publish_flags(book="main"), *ns],
    )
    assert published.exit_code == 0, published.output
    assert f"{topology.namespace}.intents.paper.main" in published.output
    tailed = runner.invoke(build_app(), ["tail", "intents", "--all", "--limit", "1", *ns])
    assert tailed.exit_code == 0, tailed.output
    assert "add" in tailed.output
    assert "0.3" in tailed.output


def test_unsafe_book_is_refused_with_a_clear_error(nats_url: str, topology: Topology) -> None:
    result = runner.invoke(
        build_app(),
        [
            *_publish_flags(book="main.x"),
            "--nats-url",
            nats_url,
            "--namespace",
            topology.namespace,
        ],
    )
    assert result.exit_code == 2
    assert "book_id" in result.output
    assert _stored(nats_url, topology) == 0


def test_mark_is_published_and_a_bad_one_refused(nats_url: str, topology: Topology) -> None:
    ns = ["--nats-url", nats_url, "--namespace", topology.namespace]
    done = runner.invoke(
        build_app(), ["mark", "--venue", "paper", "--symbol", "BTC", "--price", "66000", *ns]
    )
    assert done.exit_code == 0, done.output

    async def last_mark() -> Mark:
        nc = await connect(BusSettings.from_env(nats_url))
        try:
            msg = await nc.jetstream().get_last_msg(
                topology.marks_stream, topology.marks_subject("paper", "BTC")
            )
            return decode(msg.data or b"", Mark)
        finally:
            await nc.drain()

    assert asyncio.run(last_mark()).price == 66000.0
    refused = runner.invoke(
        build_app(), ["mark", "--venue", "paper", "--symbol", "BTC", "--price", "-1", *ns]
    )
    assert refused.exit_code == 2
    assert "price" in refused.output


def test_unreachable_server_gives_one_clear_error(topology: Topology) -> None:
    result = runner.invoke(
        build_app(),
        [
            *_publish_flags(book="main"),
            "--nats-url",
            "nats://127.0.0.1:9",
            "--namespace",
            topology.namespace,
        ],
        env={"INTENTBUS_CONNECT_TIMEOUT_S": "0.5"},
    )
    assert result.exit_code == 1
    assert "cannot reach NATS at nats://127.0.0.1:9" in result.output


def test_json_lines_from_standard_input(nats_url: str, topology: Topology) -> None:
    ns = ["--nats-url", nats_url, "--namespace", topology.namespace]
    lines = "\n".join([_line("p1"), _line("p2")]) + "\n"
    done = runner.invoke(build_app(), ["publish", "--file", "-", *ns], input=lines)
    assert done.exit_code == 0, done.output
    assert _stored(nats_url, topology) == 2
