"""Honest health: /readyz names a consumer group that is stuck and is ready again once it moves;
/metrics shows per-group lag and dead letters; an operator lists and replays dead letters."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from fooddispatch import eventing
from fooddispatch.app import create_app
from fooddispatch.health import ReadyChecks
from fooddispatch.keys import METRICS
from kernel.outbox import Event, write_event
from kernel.tasks import BackgroundTasks

Handler = Callable[[asyncpg.Connection, Event], Awaitable[None]]


def with_consumer(app: web.Application, group: str, handler: Handler, **options: Any) -> None:
    """A consumer group of this app's stream, run as a component runs its own."""

    async def component(app: web.Application) -> AsyncIterator[None]:
        tasks = BackgroundTasks(app[METRICS])
        await eventing.start_consumer(app, tasks, group, {"order.placed": handler}, **options)
        yield
        await tasks.stop()

    app.cleanup_ctx.append(component)


async def place(db: asyncpg.Pool, kind: str = "fine") -> Event:
    async with db.acquire() as conn, conn.transaction():
        return await write_event(conn, "order.placed", {"kind": kind}, "ord_1")


async def eventually(probe: Callable[[], Awaitable[bool]], what: str, seconds: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await probe():
        assert loop.time() < deadline, f"gave up waiting: {what}"
        await asyncio.sleep(0.1)


def metric(text: str, name: str, group: str) -> float | None:
    found = re.search(rf'^{name}{{group="{group}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_readyz_says_not_ready_while_a_group_is_stuck_and_ready_once_it_moves(
        aiohttp_client, settings, db) -> None:
    release = asyncio.Event()

    async def blocked(conn: asyncpg.Connection, event: Event) -> None:
        await release.wait()  # a handler that hangs (a lock, a stalled call)

    app = create_app(settings.replace(consumer_stall_seconds=1), components=())
    with_consumer(app, "tablets", blocked)
    client = await aiohttp_client(app)
    first = await client.get("/readyz")
    assert first.status == 200 and (await first.json())["checks"]["consumers"] == "ok"
    await place(db)
    body: dict[str, Any] = {}

    async def not_ready() -> bool:
        nonlocal body
        answer = await client.get("/readyz")
        body = await answer.json()
        return answer.status == 503

    await eventually(not_ready, "readyz reports the stuck group")
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"] == "ok"
    assert body["checks"]["consumers"].startswith("tablets: stuck")

    async def lag_shown() -> bool:
        text = await (await client.get("/metrics")).text()
        return (metric(text, "event_consumer_lag", "tablets") or 0) >= 1

    await eventually(lag_shown, "the group's lag on /metrics")
    release.set()

    async def ready() -> bool:
        answer = await client.get("/readyz")
        return answer.status == 200 and (await answer.json())["checks"]["consumers"] == "ok"

    await eventually(ready, "readyz ready again")

    async def caught_up() -> bool:
        text = await (await client.get("/metrics")).text()
        return metric(text, "event_consumer_lag", "tablets") == 0

    await eventually(caught_up, "lag back to 0")


async def test_readyz_answers_within_its_budget_when_a_check_hangs() -> None:
    hang = asyncio.Event()
    started = 0

    async def stalled() -> str:
        nonlocal started
        started += 1
        await hang.wait()
        return "ok"

    async def fine() -> str:
        return "ok"

    checks = ReadyChecks()
    loop = asyncio.get_running_loop()
    for _ in range(3):
        began = loop.time()
        result = await checks.run({"postgres": stalled, "redis": fine}, 0.2)
        assert loop.time() - began < 1.5
        assert result == {"postgres": "unavailable: no answer within 0.2 s", "redis": "ok"}
    assert started == 1  # later probes wait for the same check instead of piling up more
    hang.set()
    assert await checks.run({"postgres": stalled, "redis": fine}, 0.2) == {"postgres": "ok", "redis": "ok"}
    checks.cancel()


async def test_an_operator_lists_and_replays_a_dead_letter(aiohttp_client, settings, db, make_principal) -> None:
    fixed = asyncio.Event()
    handled: list[str] = []

    async def tablets(conn: asyncpg.Connection, event: Event) -> None:
        if event.data["kind"] == "poison" and not fixed.is_set():
            raise ValueError("the tablet frame has no store")
        handled.append(event.id)

    app = create_app(settings, components=("ops",))
    with_consumer(app, "tablets", tablets, max_attempts=2, retry_backoff=0.05)
    client = await aiohttp_client(app)
    _, operator = await make_principal("operator")
    _, customer = await make_principal("customer")
    poison = await place(db, "poison")
    fine = await place(db)
    items: list[dict[str, Any]] = []

    async def listed() -> bool:
        nonlocal items
        answer = await client.get("/v1/ops/dead_letters", headers=operator)
        assert answer.status == 200
        items = (await answer.json())["items"]
        return bool(items)

    await eventually(listed, "the poison event is parked")
    assert handled == [fine.id]  # the next event went through
    assert [(d["group"], d["event_id"], d["attempts"]) for d in items] == [("tablets", poison.id, 2)]
    assert "ValueError" in items[0]["error"]
    assert (await client.get("/v1/ops/dead_letters", headers=customer)).status == 403
    bad = await client.get("/v1/ops/dead_letters?state=gone", headers=operator)
    assert bad.status == 422 and (await bad.json())["error"]["param"] == "state"

    async def counted(value: float) -> bool:
        text = await (await client.get("/metrics")).text()
        return metric(text, "event_dead_letters", "tablets") == value

    await eventually(lambda: counted(1), "event_dead_letters{group=tablets} 1")
    fixed.set()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    replay = await client.post(f"/v1/ops/dead_letters/{items[0]['id']}/replay", headers={**operator, **key})
    assert replay.status == 202
    assert (await replay.json())["replayed"]["event_id"] == poison.id

    async def replayed() -> bool:
        return poison.id in handled

    await eventually(replayed, "the replayed event is handled")
    assert handled.count(poison.id) == 1
    assert (await (await client.get("/v1/ops/dead_letters", headers=operator)).json())["items"] == []
    again = await client.post(f"/v1/ops/dead_letters/{items[0]['id']}/replay",
                              headers={**operator, "Idempotency-Key": str(uuid.uuid4())})
    assert again.status == 404
    await eventually(lambda: counted(0), "event_dead_letters{group=tablets} 0")
