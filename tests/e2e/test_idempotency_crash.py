"""A retry after the process that ran the first attempt was killed runs at once; while that
process lives, the retry is 409 `idempotency_in_progress`. The first attempt runs in a real
process of its own (the app served by tests/e2e/idempotency_crash_app.py), killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path

import aiohttp
import pytest
from idempotency_crash_app import PATH, add_tip_route

from fooddispatch.app import create_app

SCRIPT = Path(__file__).with_name("idempotency_crash_app.py")
# The old rule freed a crashed process's claim after 60 s: a retry must get through well before.
RETRY_WITHIN = 30.0


@pytest.fixture
def tips() -> list[int]:
    return []


@pytest.fixture
def app(settings, tips):
    app = create_app(settings, background=False, components=())
    gate = asyncio.Event()
    gate.set()
    add_tip_route(app, gate, tips)
    return app


@contextlib.asynccontextmanager
async def other_process(settings):
    values = {"database_url": settings.database_url, "redis_url": settings.redis_url,
              "jwt_secret": settings.jwt_secret, "redis_prefix": settings.redis_prefix,
              "data_dir": str(settings.data_dir / "other"), "db_pool_min": 1, "db_pool_max": 2}
    proc = await asyncio.create_subprocess_exec(
        # -P: the script's folder (tests/e2e, whose `orders/`, `catalog/`... test folders would shadow the
        # packages as namespace packages) is not put on sys.path.
        sys.executable, "-P", str(SCRIPT), stdout=asyncio.subprocess.PIPE, env={"IDEM_SETTINGS": json.dumps(values),
                                                                          "PATH": "/usr/bin:/bin"})
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(90):  # imports on a loaded machine
            port = int(await proc.stdout.readline())
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def claim_in_progress(db, key: str) -> bool:
    async with db.acquire() as conn:
        return bool(await conn.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE key = $1 AND completed_at IS NULL AND owner IS NOT NULL", key))


async def test_a_killed_processs_claim_is_free_at_once_and_a_live_ones_is_409(
        client, settings, db, make_principal, tips) -> None:
    _, auth = await make_principal("customer")
    headers = {**auth, "Idempotency-Key": "crash-1"}
    async with other_process(settings) as (proc, url), aiohttp.ClientSession() as session:
        first = asyncio.create_task(session.post(f"{url}{PATH}", json={"amount": 5}, headers=headers))
        deadline = asyncio.get_running_loop().time() + 60
        while not await claim_in_progress(db, "crash-1"):
            assert asyncio.get_running_loop().time() < deadline and not first.done()
            await asyncio.sleep(0.02)

        alive = await client.post(PATH, json={"amount": 5}, headers=headers)
        assert alive.status == 409 and (await alive.json())["error"]["code"] == "idempotency_in_progress"

        proc.kill()  # SIGKILL: no cleanup runs in that process; only its sockets close
        await proc.wait()
        with contextlib.suppress(aiohttp.ClientError):
            await first
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        while (retry := await client.post(PATH, json={"amount": 5}, headers=headers)).status == 409:
            assert loop.time() - killed_at < RETRY_WITHIN, "the dead process's claim still blocks the retry"
            await asyncio.sleep(0.05)
        assert retry.status == 201 and tips == [5]
        print(f"retry ran {loop.time() - killed_at:.3f} s after the kill")
        replay = await client.post(PATH, json={"amount": 5}, headers=headers)
        assert replay.headers["Idempotent-Replayed"] == "true" and await replay.read() == await retry.read()
        assert tips == [5]
