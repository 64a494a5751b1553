"""Send the calls made in one event-loop turn as one request.

At load, many of an executor's position lanes reach the same kind of round trip in
the same turn (their previous round trips were answered by one burst of replies).
:class:`Coalescer` gathers those calls and hands them to one ``send_many`` call, which
answers each of them: a result, or the exception that call raises. A lone call goes
through ``send_one`` when one is given (no batch to pay for), and so does every call
``alone`` picks out: batches are cut around it, and everything goes out in call order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Q = TypeVar("Q")
R = TypeVar("R")

SendMany = Callable[[list[Q]], Awaitable[Sequence[R | Exception]]]


class Coalescer(Generic[Q, R]):
    """Gather the calls of one loop turn; send them together, at most ``max_batch`` each."""

    def __init__(
        self,
        send_many: SendMany[Q, R],
        *,
        max_batch: int,
        send_one: Callable[[Q], Awaitable[R]] | None = None,
        alone: Callable[[Q], bool] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._send_many = send_many
        self._send_one = send_one
        self._alone = alone
        self._max = max_batch
        self._pending: list[tuple[Q, asyncio.Future[R]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self.batches = 0  # requests sent (batches and lone calls)
        self.calls = 0

    async def call(self, query: Q) -> R:
        """Return the answer to ``query``, sent with the other calls of this loop turn."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[R] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((query, answer))
        return await answer

    async def close(self) -> None:
        """Wait for the requests under way."""
        await asyncio.gather(*self._sending, return_exceptions=True)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        batch: list[tuple[Q, asyncio.Future[R]]] = []
        for call in pending:
            if self._alone is not None and self._alone(call[0]):
                self._start(batch)
                self._start([call])
                batch = []
                continue
            batch.append(call)
            if len(batch) == self._max:
                self._start(batch)
                batch = []
        self._start(batch)

    def _start(self, batch: list[tuple[Q, asyncio.Future[R]]]) -> None:
        # each send publishes before its first wait: tasks started in order send in order
        if batch:
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Q, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.calls += len(batch)
        queries = [query for query, _ in batch]
        answers: Sequence[R | Exception]
        try:
            if len(batch) == 1 and self._send_one is not None:
                answers = [await self._send_one(queries[0])]
            else:
                answers = await self._send_many(queries)
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers to {len(batch)} calls")
        except Exception as exc:
            answers = [exc] * len(batch)
        for (_, answer), value in zip(batch, answers, strict=True):
            if answer.done():  # its caller was cancelled
                continue
            if isinstance(value, Exception):
                answer.set_exception(value)
            else:
                answer.set_result(value)
