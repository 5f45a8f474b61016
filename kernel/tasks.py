"""Background work: the one way to run a recurring job or a long-running task.

- `every(name, interval, step)` runs `step` forever, `interval` seconds apart (measured from start to
  start, so a slow step does not drift the schedule). Any `Exception` from a step is logged with the
  task's name (the traceback on the first failure of a streak, then a line for each of the next two
  and one every 30 s), counted, and followed by an exponential back-off (`backoff` doubling up to
  `backoff_cap`, with jitter so many processes do not retry in step) instead of the interval; the
  first success resets it. A step that reports it is `busy` (a full batch) runs again at once.
- `supervise(name, factory)` keeps a long-running coroutine alive: when it raises, the death is logged
  with its traceback, counted as a restart, and a fresh coroutine from `factory()` starts after the same
  back-off. It stops only when cancelled (or when the coroutine returns, which is logged).
- `BackgroundTasks` holds a component's tasks (`every`, `supervise`, or a plain `start`) and stops them.

Counting goes through `TaskMetrics`, a two-method protocol the composition root implements (the kernel
imports nothing of ours). `CancelledError` is never caught: stopping is always possible.

Stopping must be reliable: a component's cleanup awaits its tasks, and one that never ends hangs the
whole shutdown. In Python 3.11 a `cancel()` can be lost when it races with a timeout inside a library
(`asyncio.timeout` turns the pair into a `TimeoutError`, which a retry loop then catches and carries
on), so `stop_tasks` keeps cancelling until every task has ended, and gives up after a grace period.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Protocol

log = logging.getLogger(__name__)

BACKOFF = 0.5  # seconds before the first retry after a failure
BACKOFF_CAP = 15.0  # the longest wait between retries
LOG_AGAIN_AFTER = 30.0  # after three failures in a row, one log line per this many seconds


class TaskMetrics(Protocol):
    def failed(self, task: str) -> None:
        """A step of a recurring job raised."""

    def restarted(self, task: str) -> None:
        """A supervised task died and is being started again."""


class NoMetrics:
    def failed(self, task: str) -> None:
        pass

    def restarted(self, task: str) -> None:
        pass


def backoff_delay(failures: int, first: float = BACKOFF, cap: float = BACKOFF_CAP) -> float:
    """The wait after the `failures`-th failure in a row: first, 2×first, 4×first ... up to cap,
    each within ±20 % so that processes failing together do not retry together."""
    base = min(cap, first * 2 ** max(0, failures - 1))
    return base * random.uniform(0.8, 1.2)


async def every(
    name: str,
    interval: float,
    step: Callable[[], Awaitable[object]],
    *,
    metrics: TaskMetrics | None = None,
    busy: Callable[[Any], bool] | None = None,
    first_delay: float = 0.0,
    backoff: float = BACKOFF,
    backoff_cap: float = BACKOFF_CAP,
) -> None:
    """Run `step` every `interval` seconds until cancelled (see the module docstring)."""
    metrics = metrics or NoMetrics()
    loop = asyncio.get_running_loop()
    failures = 0
    logged_at = -LOG_AGAIN_AFTER
    if first_delay > 0:
        await asyncio.sleep(first_delay)
    while True:
        started = loop.time()
        try:
            result = await step()
        except Exception as exc:
            failures += 1
            metrics.failed(name)
            if failures == 1:
                log.warning("background task %s failed; retrying with back-off", name, exc_info=exc)
                logged_at = started
            elif failures <= 3 or started - logged_at >= LOG_AGAIN_AFTER:
                # A job that fails fast (a relay while Redis is down) must not flood the log.
                log.warning("background task %s failed again (%d in a row): %s: %s",
                            name, failures, type(exc).__name__, exc)
                logged_at = started
            await asyncio.sleep(backoff_delay(failures, backoff, backoff_cap))
            continue
        if failures:
            log.info("background task %s recovered after %d failures", name, failures)
            failures = 0
        if busy is not None and busy(result):
            await asyncio.sleep(0)  # let others run between full batches
            continue
        await asyncio.sleep(max(0.0, interval - (loop.time() - started)))


async def supervise(
    name: str,
    factory: Callable[[], Awaitable[object]],
    *,
    metrics: TaskMetrics | None = None,
    backoff: float = BACKOFF,
    backoff_cap: float = BACKOFF_CAP,
    healthy_after: float = 60.0,
) -> None:
    """Run `factory()` until cancelled, starting it again after back-off whenever it raises. A run
    that lasted `healthy_after` seconds resets the back-off."""
    metrics = metrics or NoMetrics()
    loop = asyncio.get_running_loop()
    deaths = 0
    while True:
        started = loop.time()
        try:
            await factory()
        except Exception as exc:
            deaths = 1 if loop.time() - started >= healthy_after else deaths + 1
            metrics.restarted(name)
            log.error("background task %s died; restarting it (restart %d in a row)", name, deaths, exc_info=exc)
            await asyncio.sleep(backoff_delay(deaths, backoff, backoff_cap))
            continue
        log.warning("background task %s returned; not restarting it", name)
        return


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
    """A component's named tasks: start them with `every`, `supervise` or `start`; `await stop()` in
    cleanup."""

    def __init__(self, metrics: TaskMetrics | None = None) -> None:
        self.metrics: TaskMetrics = metrics or NoMetrics()
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """An unsupervised task (one that cannot fail, or whose owner watches it)."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    def every(self, name: str, interval: float, step: Callable[[], Awaitable[object]],
              **options: Any) -> asyncio.Task[Any]:
        """A recurring job (`kernel.tasks.every`), counted in this holder's metrics."""
        return self.start(every(name, interval, step, metrics=self.metrics, **options), name)

    def supervise(self, name: str, factory: Callable[[], Awaitable[object]], **options: Any) -> asyncio.Task[Any]:
        """A long-running task restarted when it dies (`kernel.tasks.supervise`)."""
        return self.start(supervise(name, factory, metrics=self.metrics, **options), name)

    async def stop(self, *, grace: float = 5.0) -> None:
        tasks, self._tasks = self._tasks, []
        await stop_tasks(tasks, grace=grace)

    def __len__(self) -> int:
        return len(self._tasks)
