"""Schema versions: an old result-driven file is refused, and ``--rebuild`` carries it over."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from intentbus.ledger.opening import open_position
from intentbus.ledger.postgres_store import is_postgres_url
from intentbus.ledger.rebuild import copy_registrations, move_aside
from intentbus.ledger.sqlite_schema import StoreVersionError
from intentbus.ledger.sqlite_store import SqliteStore
from intentbus.ledger.storage import LedgerConfigError
from intentbus.ledger.stores import store_for
from intentbus.schemas import Direction
from tests.ledger_messages import open_request

V1_SCHEMA = """
CREATE TABLE positions (
    position_id TEXT PRIMARY KEY, venue TEXT NOT NULL, book_id TEXT NOT NULL,
    token_contract TEXT NOT NULL, direction TEXT NOT NULL, allocation_usd REAL NOT NULL,
    size REAL NOT NULL, avg_entry_price REAL NOT NULL, realized_pnl_usd REAL NOT NULL,
    fees_usd REAL NOT NULL, results_applied INTEGER NOT NULL, updated_at TEXT,
    origin TEXT NOT NULL, opened_at TEXT
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('results_seq', '12');
"""


def _v1(path: Path, *rows: tuple[str, str, str, float]) -> None:
    db = sqlite3.connect(path)
    try:
        db.executescript(V1_SCHEMA)
        for position_id, symbol, origin, allocation in rows:
            db.execute(
                "INSERT INTO positions VALUES (?, 'paper', 'main', ?, 'short', ?, 3.0, 10.0, "
                "0.0, 0.0, 4, NULL, ?, '2026-01-02T03:04:05+00:00')",
                (position_id, symbol, allocation, origin),
            )
        db.commit()
    finally:
        db.close()


async def test_an_old_file_is_refused_with_a_message_telling_to_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _v1(path, ("p1", "BTC", "opened", 1500.1))
    with pytest.raises(StoreVersionError, match=r"schema 1 .*`intentbus ledger --rebuild`"):
        await SqliteStore(path).open()
    assert isinstance(StoreVersionError("x"), LedgerConfigError)


async def test_rebuild_carries_an_old_files_opened_positions_over(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _v1(path, ("p1", "BTC", "opened", 1500.1), ("implicit", "ETH", "implicit", 0.0))
    backup = move_aside(path)
    assert backup is not None
    assert not path.exists()
    store = SqliteStore(path)
    await store.open()
    try:
        assert await copy_registrations(str(backup), store) == 1
        [state] = await store.list()
        assert (state.position_id, state.allocation_usd) == ("p1", Decimal("1500.1"))
        assert (state.direction, state.opened_direction) == (Direction.SHORT, Direction.SHORT)
        assert (state.size, state.results_applied, state.closed) == (Decimal(0), 0, False)
        assert await store.applied_seq("results") == await store.applied_seq("fills") == 0
    finally:
        await store.close()


async def test_rebuild_refuses_two_old_positions_open_on_one_symbol(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"
    _v1(old, ("p1", "BTC", "opened", 10.0), ("p2", "BTC", "opened", 10.0))
    store = SqliteStore(tmp_path / "new.sqlite3")
    await store.open()
    try:
        with pytest.raises(LedgerConfigError, match="positions p1 and p2 are both open"):
            await copy_registrations(str(old), store)
        assert await store.list() == []
    finally:
        await store.close()


async def test_rebuild_of_a_current_ledger_keeps_closed_positions_closed(ledger_db: str) -> None:
    old = store_for(ledger_db)
    assert await old.set_aside() is None  # nothing to set aside yet
    await old.open()
    await open_position(old, open_request("p1"))
    async with old.transaction() as tx:
        state = await tx.load("p1")
        assert state is not None
        await tx.save(replace(state, closed=True, closed_fills_seq=7))
    await open_position(old, open_request("p2"))
    await old.close()
    new = store_for(ledger_db)
    aside = await new.set_aside()
    assert aside is not None
    await new.open()
    try:
        assert await new.list() == []
        assert await copy_registrations(aside, new) == 2
        assert [(s.position_id, s.closed, s.closed_fills_seq) for s in await new.list()] == [
            ("p1", True, 7),
            ("p2", False, 0),
        ]
    finally:
        await new.close()


async def test_a_read_only_store_refuses_a_database_without_a_ledger(ledger_db: str) -> None:
    if not is_postgres_url(ledger_db):
        sqlite3.connect(ledger_db).close()
    with pytest.raises(StoreVersionError, match="holds no ledger"):
        await store_for(ledger_db, read_only=True).open()
