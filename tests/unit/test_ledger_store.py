"""The SQLite store and the one-transaction apply: duplicates, rejects, opens, rebuild."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intentbus.ledger.applier import (
    Applied,
    Duplicate,
    OpenConflict,
    Rejected,
    apply_message,
    apply_messages,
    open_position,
)
from intentbus.ledger.rebuild import copy_registrations, move_aside
from intentbus.ledger.sqlite_store import SqliteStore
from intentbus.schemas import (
    ActionType,
    Direction,
    ExecutionResult,
    ExecutionStatus,
    OpenPosition,
    Side,
    encode,
)

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "ledger.sqlite3")
    opened.open()
    yield opened
    opened.close()


def _fill(n: int, quantity: float = 1.0, price: float = 100.0, position: str = "p1") -> bytes:
    return encode(
        ExecutionResult(
            result_id=f"res-{n}",
            intent_id=f"int-{n}",
            position_id=position,
            venue="paper",
            book_id="main",
            token_contract="BTC",
            action=ActionType.ADD,
            status=ExecutionStatus.SUCCESS,
            created_at=AT,
            side=Side.BUY,
            tokens_bought=quantity,
            price=price,
            fees_usd=0.1,
        )
    )


def _open(allocation: float = 1_000.0, direction: Direction = Direction.LONG) -> OpenPosition:
    return OpenPosition(
        position_id="p1",
        venue="paper",
        book_id="main",
        token_contract="BTC",
        direction=direction,
        allocation_usd=allocation,
    )


def test_the_same_result_is_applied_once(store: SqliteStore) -> None:
    assert isinstance(apply_message(store, _fill(1), 1), Applied)
    assert apply_message(store, _fill(1), 2) == Duplicate("res-1")
    state = store.get("p1")
    assert state is not None
    assert state.size == 1.0
    assert state.fees_usd == pytest.approx(0.1)
    assert state.results_applied == 1
    assert store.applied_seq() == 2
    audit = store.audit("res-1")
    assert audit is not None
    assert audit.results_seq == 1
    assert audit.notes == ("implicit_open",)
    assert b'"res-1"' in audit.result_json.encode()


def test_the_sequence_never_goes_back(store: SqliteStore) -> None:
    apply_message(store, _fill(1), 7)
    apply_message(store, _fill(2), 3)
    assert store.applied_seq() == 7


def test_a_malformed_message_is_rejected_but_its_sequence_is_handled(store: SqliteStore) -> None:
    outcome = apply_message(store, b'{"schema": "intentbus.result.v1", "result_id": 5}', 4)
    assert isinstance(outcome, Rejected)
    assert "invalid result" in outcome.error
    assert store.applied_seq() == 4
    assert store.list() == []


def test_a_store_failure_rolls_the_whole_transaction_back(store: SqliteStore) -> None:
    class Boom(Exception):
        pass

    def fail_midway() -> None:
        with store.transaction() as tx:
            tx.advance_seq(9)
            raise Boom

    with pytest.raises(Boom):
        fail_midway()
    assert store.applied_seq() == 0


def test_open_is_idempotent_and_conflicts_name_the_difference(store: SqliteStore) -> None:
    first = open_position(store, _open())
    assert open_position(store, _open()) == first
    with pytest.raises(OpenConflict, match=r"allocation_usd is 1000\.0, requested 2000\.0"):
        open_position(store, _open(allocation=2_000.0))
    with pytest.raises(OpenConflict, match="direction"):
        open_position(store, _open(direction=Direction.SHORT))


def test_open_adopts_a_position_a_result_created(store: SqliteStore) -> None:
    apply_message(store, _fill(1, quantity=2.0), 1)
    adopted = open_position(store, _open(allocation=500.0))
    assert adopted.allocation_usd == 500.0
    assert adopted.size == 2.0
    assert open_position(store, _open(allocation=500.0)) == adopted


def test_list_filters_by_venue_and_book(store: SqliteStore) -> None:
    apply_message(store, _fill(1, position="a"), 1)
    apply_message(store, _fill(2, position="b"), 2)
    assert [s.position_id for s in store.list()] == ["a", "b"]
    assert [s.position_id for s in store.list(venue="paper", book_id="main")] == ["a", "b"]
    assert store.list(venue="other") == []
    assert store.list(book_id="other") == []


def test_rebuild_keeps_the_old_file_and_copies_opened_terms(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    old = SqliteStore(path)
    old.open()
    open_position(old, _open(allocation=750.0))
    apply_message(old, _fill(1), 1)
    old.close()
    backup = move_aside(path)
    assert backup is not None
    assert backup.exists()
    assert not path.exists()
    new = SqliteStore(path)
    new.open()
    assert copy_registrations(backup, new) == 1
    state = new.get("p1")
    assert state is not None
    assert (state.allocation_usd, state.size, state.results_applied) == (750.0, 0.0, 0)
    assert new.applied_seq() == 0
    new.close()


def _fail_on(store: SqliteStore, result_id: str) -> None:
    """Make SQLite itself refuse to store ``result_id`` (a real failure mid-transaction)."""
    db = sqlite3.connect(store.path)
    try:
        db.executescript(
            "CREATE TRIGGER refuse BEFORE INSERT ON applied_results "
            f"WHEN NEW.result_id = '{result_id}' BEGIN SELECT RAISE(ABORT, 'disk says no'); END;"
        )
    finally:
        db.close()


def test_a_batch_applies_in_order_with_the_same_outcomes_as_one_by_one(
    store: SqliteStore, tmp_path: Path
) -> None:
    messages = [
        (_fill(1, quantity=2.0), 3),
        (_fill(2, quantity=1.0, price=130.0), 4),
        (_fill(1, quantity=2.0), 5),  # the same result id again, inside the batch
        (b'{"schema": "intentbus.result.v1", "result_id": 5}', 6),
        (_fill(3, quantity=1.0, position="p2"), 7),
    ]
    outcomes = apply_messages(store, messages)
    one_by_one = SqliteStore(tmp_path / "one-by-one.sqlite3")
    one_by_one.open()
    try:
        expected = [apply_message(one_by_one, data, seq) for data, seq in messages]
        assert outcomes == expected
        assert [type(o) for o in outcomes] == [Applied, Applied, Duplicate, Rejected, Applied]
        assert store.list() == one_by_one.list()
        assert store.applied_seq() == one_by_one.applied_seq() == 7
    finally:
        one_by_one.close()
    state = store.get("p1")
    assert state is not None
    assert state.size == 3.0
    assert state.results_applied == 2
    audit = store.audit("res-2")
    assert audit is not None
    assert audit.results_seq == 4


def test_a_store_failure_in_a_batch_applies_nothing_of_it(store: SqliteStore) -> None:
    apply_message(store, _fill(1), 1)
    _fail_on(store, "res-3")
    with pytest.raises(sqlite3.IntegrityError, match="disk says no"):
        apply_messages(store, [(_fill(2), 2), (_fill(3), 3), (_fill(4), 4)])
    assert store.audit("res-2") is None
    assert store.applied_seq() == 1
    state = store.get("p1")
    assert state is not None
    assert state.results_applied == 1
    assert isinstance(apply_message(store, _fill(2), 2), Applied)  # the store still works
