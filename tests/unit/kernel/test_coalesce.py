import asyncio

import pytest

from kernel.coalesce import Coalescer


async def test_a_lone_caller_goes_alone_and_gets_its_result() -> None:
    seen: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        seen.append(items)
        return [2 * i for i in items]

    batches = Coalescer(double)
    assert await batches.submit(21) == 42
    assert seen == [[21]]


async def test_callers_arriving_during_a_batch_leave_together_in_the_next() -> None:
    seen: list[list[int]] = []
    gate = asyncio.Event()

    async def slow(items: list[int]) -> list[int]:
        seen.append(items)
        if len(seen) == 1:
            await gate.wait()
        return [i + 100 for i in items]

    batches = Coalescer(slow, max_batch=3)
    first = asyncio.create_task(batches.submit(0))
    await asyncio.sleep(0.01)  # the first batch is on the wire
    rest = [asyncio.create_task(batches.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    gate.set()
    assert await first == 100
    assert [await task for task in rest] == [101, 102, 103, 104, 105]
    assert seen == [[0], [1, 2, 3], [4, 5]]  # max_batch splits the queue


async def test_an_item_error_reaches_only_its_caller_and_a_batch_error_every_caller_of_it() -> None:
    async def picky(items: list[int]) -> list[int | BaseException]:
        if 13 in items:
            raise ConnectionError("server went away")
        return [ValueError(f"odd {i}") if i % 2 else i for i in items]

    batches = Coalescer(picky)
    results = await asyncio.gather(batches.submit(2), batches.submit(3), return_exceptions=True)
    assert results[0] == 2
    assert isinstance(results[1], ValueError)
    together = await asyncio.gather(batches.submit(4), batches.submit(13), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in together)
    assert await batches.submit(6) == 6  # the coalescer is still usable


async def test_a_cancelled_caller_is_left_out_and_others_still_get_answers() -> None:
    seen: list[list[str]] = []
    gate = asyncio.Event()

    async def run(items: list[str]) -> list[str]:
        seen.append(items)
        if items == ["first"]:
            await gate.wait()
        return [s.upper() for s in items]

    batches = Coalescer(run)
    first = asyncio.create_task(batches.submit("first"))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(batches.submit("gone"))
    kept = asyncio.create_task(batches.submit("kept"))
    await asyncio.sleep(0)
    gone.cancel()
    gate.set()
    assert await first == "FIRST"
    assert await kept == "KEPT"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert seen == [["first"], ["kept"]]


async def test_a_wrong_number_of_outcomes_is_an_error_not_a_mismatch() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batches = Coalescer(short)
    results = await asyncio.gather(batches.submit(1), batches.submit(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
