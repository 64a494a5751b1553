"""The SQLite store commits inline while the disk is quick, in a worker thread after a slow one."""

from __future__ import annotations

import math
from pathlib import Path

from intentbus.ledger.opening import open_position
from intentbus.ledger.sqlite_store import THREADED_COMMITS, SqliteStore
from tests.ledger_messages import open_request


async def _commit_positions(store: SqliteStore, count: int, first: int = 0) -> None:
    for n in range(first, first + count):
        await open_position(store, open_request(f"p{n}", symbol=f"S{n}"))


async def test_a_quick_disk_commits_inline(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ledger.sqlite3", slow_commit_s=math.inf)
    await store.open()
    try:
        await _commit_positions(store, 5)
        assert store.threaded_commits == 0
        assert len(await store.list()) == 5
    finally:
        await store.close()


async def test_a_slow_commit_sends_the_next_ones_to_a_thread_then_inline_again(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "ledger.sqlite3", slow_commit_s=0.0)  # every one is slow
    await store.open()
    try:
        await _commit_positions(store, 3)
        assert store.threaded_commits == 2  # the first ran inline, and was slow
        store.slow_commit_s = math.inf
        await _commit_positions(store, THREADED_COMMITS, first=3)
        assert store.threaded_commits == THREADED_COMMITS
        await _commit_positions(store, 2, first=3 + THREADED_COMMITS)
        assert store.threaded_commits == THREADED_COMMITS  # inline again, and quick
        reopened = SqliteStore(store.path, read_only=True)
        await reopened.open()
        assert len(await reopened.list()) == 5 + THREADED_COMMITS
        await reopened.close()
    finally:
        await store.close()
