"""The PostgreSQL store: migrations at start, exact NUMERIC amounts, no password in its name."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest

from intentbus.ledger.opening import open_position
from intentbus.ledger.postgres_schema import SCHEMA_VERSION
from intentbus.ledger.postgres_store import PostgresStore
from intentbus.ledger.storage import StoreVersionError
from intentbus.testing.postgres import (
    ENV_URL,
    PostgresEndpoint,
    answers,
    create_database,
    drop_database,
    start_postgres,
)
from tests.ledger_messages import open_request
from tests.ledger_sql import execute


@pytest.fixture
def pg_db(postgres_endpoint: PostgresEndpoint) -> Iterator[str]:
    url = create_database(postgres_endpoint.url)
    yield url
    drop_database(postgres_endpoint.url, url)


async def test_the_schema_is_migrated_once_at_start_and_amounts_stay_exact(pg_db: str) -> None:
    store = PostgresStore(pg_db)
    await store.open()
    try:
        state = await open_position(store, open_request())
        exact = Decimal("12345678901234567890.123456789012345678901")
        async with store.transaction() as tx:
            await tx.save(replace(state, realized_pnl_usd=exact))
    finally:
        await store.close()
    again = PostgresStore(pg_db)
    await again.open()  # nothing left to migrate: the same ledger
    try:
        found = await again.get("p1")
        assert found is not None
        assert found.realized_pnl_usd == exact
        assert str(found.allocation_usd) == "1000.0"
    finally:
        await again.close()
    assert execute(pg_db, "SELECT version FROM schema_versions") == [(SCHEMA_VERSION,)]
    assert execute(pg_db, "SELECT pg_typeof(fees_usd)::text FROM positions") == [("numeric",)]


async def test_a_sql_ascii_database_reads_back_text_not_bytes(
    postgres_endpoint: PostgresEndpoint,
) -> None:
    # A server initialised without a UTF-8 locale (a minimal container) creates its
    # databases as SQL_ASCII; psycopg then returns bytes for every text column unless
    # the connection says its encoding.
    url = create_database(postgres_endpoint.url, encoding="SQL_ASCII")
    try:
        store = PostgresStore(url)
        await store.open()
        try:
            await open_position(store, open_request())
            found = await store.get("p1")
            listed = await store.list()
        finally:
            await store.close()
        assert found is not None
        assert found.direction.value == "long"
        assert [p.position_id for p in listed] == ["p1"]
    finally:
        drop_database(postgres_endpoint.url, url)


async def test_a_database_of_a_newer_ledger_is_refused(pg_db: str) -> None:
    store = PostgresStore(pg_db)
    await store.open()
    await store.close()
    execute(pg_db, f"INSERT INTO schema_versions (version) VALUES ({SCHEMA_VERSION + 1})")
    with pytest.raises(StoreVersionError, match=r"schema 2, newer than this ledger's 1"):
        await PostgresStore(pg_db).open()


def test_the_stores_name_never_shows_a_password() -> None:
    store = PostgresStore("postgresql://ledger:hunter22@db.example:5432/ledger")
    assert "hunter22" not in store.label
    assert store.label.endswith("@db.example:5432/ledger")
    keyword = PostgresStore("postgresql://db.example/ledger?password=swordfish9")
    assert "swordfish9" not in keyword.label


def test_without_a_url_or_a_loopback_server_a_private_server_is_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    endpoint = start_postgres(loopback_url="postgresql://postgres@127.0.0.1:1/postgres")
    try:
        assert endpoint.backend == "pip"
        url = create_database(endpoint.url)
        assert answers(url)
        drop_database(endpoint.url, url)
    finally:
        endpoint.close()
    assert not answers(endpoint.url)
