"""Stopping background tasks survives a swallowed cancellation."""

from __future__ import annotations

import asyncio

from kernel.tasks import BackgroundTasks


async def test_stop_ends_a_loop_that_swallows_its_first_cancellation() -> None:
    swallowed = 0

    async def stubborn_loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                # What a retry loop does when a library turns a cancellation into a timeout.
                if swallowed == 0:
                    swallowed += 1
                    asyncio.current_task().uncancel()
                    continue
                raise

    tasks = BackgroundTasks()
    task = tasks.start(stubborn_loop(), "stubborn")
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.stop(), timeout=2)
    assert task.cancelled()
    assert swallowed == 1
    assert len(tasks) == 0


async def test_stop_gives_up_after_grace_on_a_task_that_never_ends() -> None:
    release = asyncio.Event()

    async def immortal() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                asyncio.current_task().uncancel()

    tasks = BackgroundTasks()
    task = tasks.start(immortal(), "immortal")
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.stop(grace=0.3), timeout=2)
    assert not task.done()
    release.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
