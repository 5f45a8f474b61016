"""Health: `/healthz` (the process is alive), `/readyz` (it can do its work), `/metrics` (Prometheus).

`/readyz` answers `{"status": "ready"|"unavailable", "checks": {"postgres": "ok", "redis": "ok",
"consumers": "ok"}}` (200) or the same with a reason in place of each failing "ok" (503). The consumers
check looks at each stream consumer of this process: its loop runs, its group exists in Redis, and a
group with work waiting (entries pending or not yet delivered, events not yet processed) made progress
within `consumer_stall_seconds`; the reason names each group that fails.

Within its budget whatever hangs: every check runs as a task of its own and readyz waits for them
together for at most READY_BUDGET. A check that has not answered by then is reported as such and left
to finish in the background (capped at CHECK_CAP); the next probe waits for that same task rather than
starting another, so a stalled PostgreSQL ties up one connection attempt per check, not one per probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from redis.exceptions import ResponseError

from fooddispatch import probes
from fooddispatch.eventing import EVENT_STATS
from fooddispatch.keys import CONSUMERS, DB, EVENT_STREAM, METRICS, REDIS, SETTINGS
from kernel.http import json_response

READY_BUDGET = 1.0
CHECK_CAP = 10.0
Check = Callable[[], Awaitable[str]]


class ReadyChecks:
    """The checks still running from earlier probes, by name."""

    def __init__(self) -> None:
        self.running: dict[str, asyncio.Task[str]] = {}

    async def run(self, checks: dict[str, Check], budget: float) -> dict[str, str]:
        waiting: dict[str, asyncio.Task[str]] = {}
        for name, check in checks.items():
            task = self.running.get(name)
            if task is None or task.done():
                task = asyncio.create_task(self._capped(check), name=f"readyz-{name}")
                task.add_done_callback(_retrieve)
                self.running[name] = task
            waiting[name] = task
        await asyncio.wait(waiting.values(), timeout=budget)
        return {name: _outcome(task, budget) for name, task in waiting.items()}

    @staticmethod
    async def _capped(check: Check) -> str:
        async with asyncio.timeout(CHECK_CAP):
            return await check()

    def cancel(self) -> None:
        for task in self.running.values():
            task.cancel()


def _retrieve(task: asyncio.Task[str]) -> None:
    if not task.cancelled():
        task.exception()  # read, so a check that failed after its probe answered is not reported as lost


def _outcome(task: asyncio.Task[str], budget: float) -> str:
    if not task.done():
        return f"unavailable: no answer within {budget:.1f} s"
    if task.cancelled():
        return "unavailable: cancelled"
    exc = task.exception()
    if exc is not None:
        return f"unavailable: {type(exc).__name__}"
    return task.result()


READY_CHECKS = web.AppKey("ready_checks", ReadyChecks)


async def check_postgres(app: web.Application) -> str:
    # A probe that gives up terminates its connection rather than return it to the pool stuck.
    return await probes.probe_postgres(app[DB], READY_BUDGET)


async def check_redis(app: web.Application) -> str:
    return await probes.probe_redis(app[REDIS], READY_BUDGET)


async def check_consumers(app: web.Application) -> str:
    consumers = app.get(CONSUMERS) or []
    if not consumers:
        return "ok"
    pipe = app[REDIS].pipeline(transaction=False)
    pipe.xinfo_stream(app[EVENT_STREAM])
    pipe.xinfo_groups(app[EVENT_STREAM])
    try:
        info, listed = await pipe.execute()
        last = info["last-generated-id"]
    except ResponseError:  # the stream is gone, and with it every group
        listed, last = [], None
    groups = {_text(g["name"]): g for g in listed}
    lags = app[EVENT_STATS].lags
    stall = app[SETTINGS].consumer_stall_seconds
    now = time.monotonic()
    problems = []
    for consumer in consumers:
        group = groups.get(consumer.group)
        if not consumer.running:
            problems.append(f"{consumer.group}: consumer not running")
            continue
        if group is None:
            problems.append(f"{consumer.group}: group missing in Redis")
            continue
        undelivered = last is not None and group["last-delivered-id"] != last
        waiting = group["pending"] > 0 or undelivered or lags.get(consumer.group, 0) > 0
        idle = now - consumer.last_progress
        if waiting and idle > stall:
            problems.append(f"{consumer.group}: stuck: {group['pending']} pending, "
                            f"{lags.get(consumer.group, 0):.0f} unprocessed, no progress for {idle:.0f} s"
                            + (f" ({consumer.last_error})" if consumer.last_error else ""))
    return "ok" if not problems else "; ".join(problems)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def healthz(request: web.Request) -> web.Response:
    """Process liveness: answers while the event loop runs."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: PostgreSQL and Redis answer, and every consumer group makes progress."""
    app = request.app
    checks = await app[READY_CHECKS].run({
        "postgres": lambda: check_postgres(app),
        "redis": lambda: check_redis(app),
        "consumers": lambda: check_consumers(app),
    }, READY_BUDGET)
    ready = all(v == "ok" for v in checks.values())
    return json_response({"status": "ready" if ready else "unavailable", "checks": checks},
                         status=200 if ready else 503)


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus metrics."""
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


async def _stop_checks(app: web.Application) -> None:
    app[READY_CHECKS].cancel()


def setup(app: web.Application) -> None:
    app[READY_CHECKS] = ReadyChecks()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    app.on_cleanup.append(_stop_checks)
