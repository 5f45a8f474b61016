"""Background tasks that start with a component and stop with it.

Stopping must be reliable: a component's cleanup awaits its tasks, and one that
never ends hangs the whole shutdown. In Python 3.11 a `cancel()` can be lost when
it races with a timeout inside a library (`asyncio.timeout` turns the pair into a
`TimeoutError`, which a retry loop then catches and carries on), so `stop_tasks`
keeps cancelling until every task has ended, and gives up after a grace period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

log = logging.getLogger(__name__)


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], *, grace: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    all_tasks = list(tasks)
    pending = {task for task in all_tasks if not task.done()}
    deadline = loop.time() + grace
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.1)
        if pending and loop.time() > deadline:
            log.warning("tasks did not stop within %.1f s: %s", grace, sorted(t.get_name() for t in pending))
            break
    for task in all_tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("background task %s ended with %r", task.get_name(), task.exception())


class BackgroundTasks:
    """A component's named tasks: `start(...)` them, `await stop()` them in cleanup."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    async def stop(self, *, grace: float = 5.0) -> None:
        tasks, self._tasks = self._tasks, []
        await stop_tasks(tasks, grace=grace)

    def __len__(self) -> int:
        return len(self._tasks)
