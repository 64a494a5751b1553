"""One writing ledger per store: a claim its holder keeps for as long as it lives.

The ledger answers position reads from memory kept after each of its own commits
(:mod:`intentbus.ledger.view`), so a second process writing the same store would leave
those reads stale, and executors would size orders on them; a ``--rebuild`` would set
aside a store another ledger is writing. The claim is a lock the operating system (a
SQLite store's ``<db>.writer`` file) or the database server (PostgreSQL's session
advisory lock) drops when its holder closes it or dies, so a ledger restarted after a
crash takes it over at once.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from intentbus.ledger.storage import LedgerInUse

POLL_S = 0.2
WRITER_WAIT_S = 15.0  # a crashed holder's PostgreSQL session may linger a moment


async def claim(try_once: Callable[[], Awaitable[bool]], wait_s: float, refusal: str) -> None:
    """Call ``try_once`` until it says the claim is ours; after ``wait_s``, raise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while not await try_once():
        if loop.time() >= deadline:
            raise LedgerInUse(refusal)
        await asyncio.sleep(min(POLL_S, max(deadline - loop.time(), 0.0)))


def writer_file(db: Path) -> Path:
    """Return the file whose lock says which ledger writes the SQLite file ``db``."""
    return db.with_name(f"{db.name}.writer")


class FileClaim:
    """Hold an exclusive ``flock`` on a SQLite store's writer file."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = writer_file(db)
        self._fd: int | None = None

    async def take(self, wait_s: float) -> None:
        """Take the lock, waiting up to ``wait_s``; raise :class:`LedgerInUse`."""
        if self._fd is not None:
            return
        if self.path.parent != Path():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

        async def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            await claim(try_once, wait_s, self._refusal(fd))
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for the next refusal
        self._fd = fd

    def release(self) -> None:
        """Let the lock go."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def _refusal(self, fd: int) -> str:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        who = f" (process {holder})" if holder.isdigit() else ""
        return (
            f"another ledger{who} writes {self.db}: it holds {self.path}. "
            "One ledger writes a store; stop it first, or give this one its own --db "
            "(partition by book)"
        )
