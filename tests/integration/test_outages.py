"""Outages of PostgreSQL and Redis, on servers this module starts for itself (so it can kill,
stop and restart them without touching the session's): a dependency that is down answers 503
with a code and `Retry-After`, or degrades where the request does not need it; never a 500; a
stalled PostgreSQL is answered within the bound; and the app heals when the server is back."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import WSMsgType

from fooddispatch.app import create_app
from fooddispatch.config import Settings
from fooddispatch.embedded import start_postgres
from fooddispatch.identity import IdentityService, Tokens
from fooddispatch.migrate import apply_migrations
from fooddispatch.ratelimit import RATE_LIMITER
from tests.conftest import JWT_SECRET
from tests.outage_servers import OwnPostgres, OwnRedis, pg_running

# With the settings' defaults: a statement gives up after 3 + 0.5 s, its connection's release
# after 1 s more. Checked with slack for a loaded machine.
STALL_BOUND_S = 5.0
SLACK_S = 3.0
READY_BOUND_S = 1.5


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    base = Path(tempfile.mkdtemp(prefix="fooddispatch-outage-pg-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = start_postgres(base / "pg")
    pg = OwnPostgres(base / "pg", server.url)

    async def migrate() -> None:
        conn = await asyncpg.connect(server.url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    asyncio.run(migrate())
    yield pg
    with pg_running(pg):
        server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    rd = OwnRedis(tmp_path)
    rd.start()
    yield rd
    rd.kill()


def _settings(base: Settings, **changes: object) -> Settings:
    return base.replace(**changes)


async def _operator_headers(database_url: str) -> dict[str, str]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        identity = IdentityService(pool, Tokens({"k1": JWT_SECRET}, "k1", 3600))
        who = await identity.create_account("operator", name="outage operator")
        return {"Authorization": f"Bearer {identity.tokens.issue(who)}"}
    finally:
        await pool.close()


async def _timed(coro) -> tuple[object, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = await coro
    return result, time.monotonic() - started


async def _until(probe, deadline_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + deadline_s
    while True:
        if await probe():
            return
        assert time.monotonic() < deadline, "did not recover in time"
        await asyncio.sleep(0.25)


@pytest.fixture
async def pg_client(aiohttp_client, own_postgres: OwnPostgres, settings: Settings) -> AsyncIterator:
    with pg_running(own_postgres):
        app = create_app(_settings(settings, database_url=own_postgres.url), background=False)
        client = await aiohttp_client(app)
        op = await _operator_headers(own_postgres.url)
        resp = await client.post("/v1/tenants", json={"name": "Outage Pizza"}, headers=op)
        assert resp.status == 201, await resp.text()
        tenant = (await resp.json())["id"]
        yield client, op, tenant
        # Let the app close its pool on a running server.


async def _assert_unavailable(resp, code: str) -> None:  # type: ignore[no-untyped-def]
    assert resp.status == 503, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code
    assert int(resp.headers["Retry-After"]) >= 1


async def test_killed_postgres_answers_503_database_unavailable_then_heals(pg_client, own_postgres) -> None:
    client, op, tenant = pg_client
    assert (await client.get(f"/v1/tenants/{tenant}", headers=op)).status == 200
    own_postgres.kill()
    for _ in range(3):  # the broken pooled connection, then refused new ones
        resp = await client.get(f"/v1/tenants/{tenant}", headers=op)
        await _assert_unavailable(resp, "database_unavailable")
    resp = await client.post("/v1/tenants", json={"name": "During"}, headers=op)
    await _assert_unavailable(resp, "database_unavailable")
    ready, took = await _timed(client.get("/readyz"))
    assert ready.status == 503 and (await ready.json())["checks"]["postgres"].startswith("unavailable")
    assert took < READY_BOUND_S
    metrics = await (await client.get("/metrics")).text()
    assert 'dependency_unavailable_total{dependency="database"}' in metrics
    own_postgres.start_again()

    async def healed() -> bool:
        return (await client.get(f"/v1/tenants/{tenant}", headers=op)).status == 200

    await _until(healed)
    assert (await client.get("/readyz")).status == 200


async def test_stalled_postgres_answers_within_the_bound_and_heals_after(pg_client, own_postgres) -> None:
    client, op, tenant = pg_client
    assert (await client.get(f"/v1/tenants/{tenant}", headers=op)).status == 200
    own_postgres.signal_all(signal.SIGSTOP)
    try:
        reads = [_timed(client.get(f"/v1/tenants/{tenant}", headers=op)) for _ in range(4)]
        results = await asyncio.gather(_timed(client.get("/readyz")), *reads)
        (ready, ready_took), answers = results[0], results[1:]
        print(f"readyz {ready_took:.2f} s; reads {[round(t, 2) for _, t in answers]} s")
        assert ready.status == 503  # type: ignore[attr-defined]
        assert (await ready.json())["checks"]["postgres"].startswith("unavailable")  # type: ignore[attr-defined]
        assert ready_took < READY_BOUND_S + 0.5
        for resp, took in answers:
            await _assert_unavailable(resp, "database_unavailable")
            assert took < STALL_BOUND_S + SLACK_S
        # The pool is not wedged: the next request is bounded too.
        resp, took = await _timed(client.get(f"/v1/tenants/{tenant}", headers=op))
        await _assert_unavailable(resp, "database_unavailable")
        assert took < STALL_BOUND_S + SLACK_S
    finally:
        own_postgres.signal_all(signal.SIGCONT)

    async def healed() -> bool:
        return (await client.get(f"/v1/tenants/{tenant}", headers=op)).status == 200

    await _until(healed)
    # Every pooled connection works again (none left waiting on the stall).
    statuses = await asyncio.gather(*[client.get(f"/v1/tenants/{tenant}", headers=op) for _ in range(12)])
    assert [r.status for r in statuses] == [200] * 12
    ready, took = await _timed(client.get("/readyz"))
    assert ready.status == 200 and took < READY_BOUND_S  # type: ignore[attr-defined]


@pytest.fixture
async def redis_client(aiohttp_client, own_redis: OwnRedis, settings: Settings) -> AsyncIterator:
    app = create_app(_settings(settings, redis_url=own_redis.url), background=False)
    client = await aiohttp_client(app)
    op = await _operator_headers(settings.database_url or "")
    resp = await client.post("/v1/tenants", json={"name": "Outage Tacos"}, headers=op)
    assert resp.status == 201
    yield client, op, (await resp.json())["id"], app


async def test_killed_redis_degrades_reads_and_writes_and_refuses_only_live_state(redis_client, own_redis,
                                                                                   settings) -> None:
    client, op, tenant, app = redis_client
    surge = f"/v1/dispatch/regions/{settings.region}/surge"
    assert (await client.get(surge, headers=op)).status == 200
    resp = await client.post(f"/v1/tenants/{tenant}/stores", headers=op, json={
        "name": "Outage Tacos Mitte", "lat": 52.52, "lng": 13.40, "timezone": "Europe/Berlin", "currency": "EUR"})
    assert resp.status == 201, await resp.text()
    store = (await resp.json())["id"]  # the tablet feed checks the store's owner before it opens
    staff = await _staff_headers(settings.database_url or "", tenant)
    open_feed = await client.ws_connect(f"/v1/stores/{store}/orders/feed", headers=staff)
    assert json.loads(await open_feed.receive_str(timeout=10))["type"] == "hello"
    own_redis.kill()
    # A feed that was open: its subscription cannot come back, so the tablet is told to reconnect.
    msg = await open_feed.receive(timeout=30)
    assert msg.type == WSMsgType.CLOSE and msg.data == 1013, msg
    assert "redis_unavailable" in (msg.extra or "")
    await open_feed.close()
    # Rate limiting fails open to the process's own limiter: reads and writes go on, still limited.
    me = await client.get("/v1/me", headers=op)
    assert me.status == 200 and "RateLimit-Remaining" in me.headers
    assert (await client.get(f"/v1/tenants/{tenant}", headers=op)).status == 200
    assert (await client.post("/v1/tenants", json={"name": "During"}, headers=op)).status == 201
    assert app[RATE_LIMITER].local_decisions >= 3
    assert "rate_limit_local_decisions" in await (await client.get("/metrics")).text()
    # Live state has nothing to fall back on: 503 with the code.
    await _assert_unavailable(await client.get(surge, headers=op), "redis_unavailable")
    ready, took = await _timed(client.get("/readyz"))
    assert ready.status == 503 and took < READY_BOUND_S  # type: ignore[attr-defined]
    assert (await ready.json())["checks"]["redis"].startswith("unavailable")  # type: ignore[attr-defined]
    # An opened websocket that needs Redis is closed cleanly: 1013, try again later.
    ws = await client.ws_connect(f"/v1/stores/{store}/orders/feed", headers=staff)
    msg = await ws.receive(timeout=30)
    assert msg.type == WSMsgType.CLOSE and msg.data == 1013, msg
    assert "redis_unavailable" in (msg.extra or "")
    await ws.close()

    own_redis.start()  # the same port: the app's clients reconnect on their own

    async def healed() -> bool:
        return (await client.get(surge, headers=op)).status == 200

    await _until(healed)
    before = app[RATE_LIMITER].local_decisions
    await asyncio.sleep(1.1)  # past the limiter's retry pause
    for _ in range(3):
        assert (await client.get("/v1/me", headers=op)).status == 200
    assert app[RATE_LIMITER].local_decisions <= before + 1  # back on the shared limiter


async def _staff_headers(database_url: str, tenant: str) -> dict[str, str]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        identity = IdentityService(pool, Tokens({"k1": JWT_SECRET}, "k1", 3600))
        who = await identity.create_account("staff", name="outage staff", tenant_id=tenant)
        return {"Authorization": f"Bearer {identity.tokens.issue(who)}"}
    finally:
        await pool.close()

