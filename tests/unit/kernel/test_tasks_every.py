"""The one way to run background work: a recurring job survives any exception with back-off, a
long-running task that dies is restarted, and both are counted in the metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from fooddispatch.metrics import Metrics
from kernel import tasks as tasks_module
from kernel.tasks import BackgroundTasks, backoff_delay, every, supervise


class Counted:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.restarts: list[str] = []

    def failed(self, task: str) -> None:
        self.failures.append(task)

    def restarted(self, task: str) -> None:
        self.restarts.append(task)


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline
        await asyncio.sleep(0.005)


async def test_a_job_that_raises_anything_keeps_running_with_back_off_and_is_counted(caplog, monkeypatch) -> None:
    metrics = Counted()
    outcomes = [LookupError("catalog's bug"), OSError("down"), ValueError("bad row"), None, KeyError("x"), None]
    calls = 0
    streaks: list[int] = []

    def recorded(failures: int, first: float, cap: float) -> float:
        streaks.append(failures)
        return 0.001

    monkeypatch.setattr(tasks_module, "backoff_delay", recorded)

    async def step() -> None:
        nonlocal calls
        calls += 1
        outcome = outcomes[calls - 1] if calls <= len(outcomes) else None
        if outcome is not None:
            raise outcome  # not only I/O errors: the old catalog loop died on anything else

    task = asyncio.create_task(every("catalog-reopen", 0.001, step, metrics=metrics))
    with caplog.at_level(logging.WARNING, logger="kernel.tasks"):
        await wait_for(lambda: calls >= 8)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert metrics.failures == ["catalog-reopen"] * 4
    assert streaks == [1, 2, 3, 1]  # doubling within a streak, reset by a success
    messages = [r.getMessage() for r in caplog.records]
    assert all("catalog-reopen" in m for m in messages) and len(messages) == 4
    assert caplog.records[0].exc_info is not None  # the first failure of a streak has its traceback
    assert caplog.records[1].exc_info is None


async def test_a_failed_step_waits_its_back_off_before_the_next_try() -> None:
    loop = asyncio.get_running_loop()
    calls: list[float] = []

    async def step() -> None:
        calls.append(loop.time())
        raise RuntimeError("down")

    task = asyncio.create_task(every("relay", 0.0, step, backoff=0.1, backoff_cap=0.2))
    await wait_for(lambda: len(calls) >= 3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert calls[1] - calls[0] >= 0.08 and calls[2] - calls[1] >= 0.16  # 0.1, then 0.2 (±20 %)


async def test_a_busy_job_runs_again_at_once() -> None:
    batches = [500, 500, 3]
    seen: list[int] = []

    async def step() -> int:
        seen.append(batches.pop(0) if batches else 0)
        return seen[-1]

    task = asyncio.create_task(every("relay", 3600.0, step, busy=lambda n: n >= 500))
    await wait_for(lambda: len(seen) == 3)
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert seen == [500, 500, 3]  # the third waits an hour


async def test_a_task_that_dies_is_restarted_logged_and_counted(caplog) -> None:
    metrics = Counted()
    starts = 0

    async def hub() -> None:
        nonlocal starts
        starts += 1
        if starts <= 2:
            raise RuntimeError("listener crashed")
        await asyncio.sleep(3600)

    with caplog.at_level(logging.ERROR, logger="kernel.tasks"):
        task = asyncio.create_task(supervise("tracking-hub", hub, metrics=metrics, backoff=0.01))
        await wait_for(lambda: starts == 3)
    assert metrics.restarts == ["tracking-hub", "tracking-hub"]
    assert any("tracking-hub" in r.getMessage() and r.exc_info for r in caplog.records)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


async def test_restarts_and_failures_show_on_the_app_metrics() -> None:
    metrics = Metrics()
    tasks = BackgroundTasks(metrics)
    deaths = 0

    async def consumer() -> None:
        nonlocal deaths
        deaths += 1
        raise RuntimeError("boom")

    async def step() -> None:
        raise OSError("redis down")

    tasks.supervise("consumer:orders", consumer, backoff=0.01, backoff_cap=0.01)
    tasks.every("outbox-settle", 0.01, step, backoff=0.01, backoff_cap=0.01)
    await wait_for(lambda: deaths >= 3)
    await tasks.stop()
    text = metrics.render().decode()
    restarts = [line for line in text.splitlines()
                if line.startswith('background_task_restarts_total{task="consumer:orders"}')]
    assert restarts and float(restarts[0].split()[-1]) >= 2
    assert 'background_task_failures_total{task="outbox-settle"}' in text


@pytest.mark.parametrize(("failures", "low", "high"), [(1, 0.4, 0.6), (2, 0.8, 1.2), (3, 1.6, 2.4), (20, 12, 18)])
def test_back_off_doubles_up_to_its_cap_with_jitter(failures: int, low: float, high: float) -> None:
    for _ in range(50):
        assert low <= backoff_delay(failures, 0.5, 15.0) <= high
