"""The coalescer: calls of one loop turn go out together, and each gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from intentbus.bus import Coalescer


class Doubler:
    """Answer each number with its double; refuse negatives; record every batch sent."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.alone: list[int] = []

    async def many(self, numbers: list[int]) -> Sequence[int | Exception]:
        self.batches.append(numbers)
        return [n * 2 if n >= 0 else ValueError(f"negative {n}") for n in numbers]

    async def one(self, number: int) -> int:
        self.alone.append(number)
        return number * 2


async def test_calls_of_one_turn_share_a_batch_and_later_ones_another() -> None:
    doubler = Doubler()
    coalescer = Coalescer(doubler.many, max_batch=10, send_one=doubler.one)
    first = await asyncio.gather(*(coalescer.call(n) for n in range(4)))
    lone = await coalescer.call(7)
    assert first == [0, 2, 4, 6]
    assert lone == 14
    assert doubler.batches == [[0, 1, 2, 3]]
    assert doubler.alone == [7]
    assert (coalescer.batches, coalescer.calls) == (2, 5)


async def test_a_turn_larger_than_a_batch_is_split_in_order() -> None:
    doubler = Doubler()
    coalescer = Coalescer(doubler.many, max_batch=3)
    answers = await asyncio.gather(*(coalescer.call(n) for n in range(7)))
    assert answers == [n * 2 for n in range(7)]
    assert doubler.batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_one_calls_error_is_its_own_and_a_failed_send_is_everyones() -> None:
    doubler = Doubler()
    coalescer = Coalescer(doubler.many, max_batch=10)
    answers = await asyncio.gather(*(coalescer.call(n) for n in (1, -1, 2)), return_exceptions=True)
    assert answers[0] == 2
    assert isinstance(answers[1], ValueError)
    assert answers[2] == 4

    async def broken(numbers: list[int]) -> Sequence[int | Exception]:
        raise ConnectionError("down")

    failing: Coalescer[int, int] = Coalescer(broken, max_batch=10)
    errors = await asyncio.gather(*(failing.call(n) for n in (1, 2)), return_exceptions=True)
    assert [type(e) for e in errors] == [ConnectionError, ConnectionError]


async def test_a_wrong_number_of_answers_fails_every_call() -> None:
    async def short(numbers: list[int]) -> Sequence[int | Exception]:
        return [1]

    coalescer: Coalescer[int, int] = Coalescer(short, max_batch=10)
    errors = await asyncio.gather(coalescer.call(1), coalescer.call(2), return_exceptions=True)
    assert all(isinstance(e, RuntimeError) and "1 answers to 2 calls" in str(e) for e in errors)


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    sent, release = asyncio.Event(), asyncio.Event()

    async def slow(numbers: list[int]) -> Sequence[int | Exception]:
        sent.set()
        await release.wait()
        return [n + 1 for n in numbers]

    coalescer: Coalescer[int, int] = Coalescer(slow, max_batch=10)
    gone = asyncio.create_task(coalescer.call(1))
    kept = asyncio.create_task(coalescer.call(2))
    await sent.wait()  # both went out in one batch
    gone.cancel()
    release.set()
    assert await kept == 3
    with pytest.raises(asyncio.CancelledError):
        await gone
    await coalescer.close()


def test_a_batch_must_hold_at_least_one_call() -> None:
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        Coalescer(Doubler().many, max_batch=0)


async def test_a_call_picked_to_go_alone_cuts_the_batch_and_order_is_kept() -> None:
    doubler = Doubler()
    coalescer = Coalescer(
        doubler.many, max_batch=10, send_one=doubler.one, alone=lambda n: n >= 100
    )
    answers = await asyncio.gather(*(coalescer.call(n) for n in (1, 2, 100, 3, 4, 5)))
    assert answers == [2, 4, 200, 6, 8, 10]
    assert doubler.batches == [[1, 2], [3, 4, 5]]
    assert doubler.alone == [100]
    assert coalescer.batches == 3
