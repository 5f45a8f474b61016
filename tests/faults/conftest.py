"""Fixtures of the fault-injection suite: one PostgreSQL and one Redis of its own for the whole
run (killed, stopped, frozen and restarted by the scenarios), a migrated template database,
and per scenario a fresh database, a fresh app process and a seeded city.

Each scenario's verdict (pass/fail, recovery times, counts, and for a failure the app's own warnings)
is printed at the end of the run. The scenarios carry the `faults` marker and run in the default
`pytest` (CI); `pytest -m faults` runs only them, `pytest -m "not faults"` skips them locally."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from faults_checks import Verdict
from faults_city import FaultCity, app_env
from faults_servers import App, Postgres, Redis, scratch_folder

from fooddispatch.migrate import apply_migrations

TEMPLATE = "fd_faults_template"
_numbers = itertools.count(1)
VERDICTS: list[Verdict] = []


class FaultServers:
    def __init__(self, folder: Path, pg: Postgres, redis: Redis) -> None:
        self.folder, self.pg, self.redis = folder, pg, redis

    def heal(self) -> None:
        """Whatever the last scenario left: both servers running and responsive."""
        if self.pg.frozen:
            self.pg.thaw()
        if not self.pg.running():
            self.pg.start()
        if self.redis.process is None or self.redis.process.poll() is not None:
            self.redis.start()


@pytest.fixture(scope="session")
def fault_servers() -> Iterator[FaultServers]:
    folder = scratch_folder("fd-faults-")
    pg = Postgres(folder / "pg")
    redis = Redis(folder / "redis")
    try:
        pg.folder.mkdir()
        pg.init()
        pg.start()
        redis.start()

        async def template() -> None:
            conn = await asyncpg.connect(pg.url())
            try:
                await conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
            finally:
                await conn.close()
            conn = await asyncpg.connect(pg.url(TEMPLATE))
            try:
                await apply_migrations(conn)
            finally:
                await conn.close()

        asyncio.run(template())
        yield FaultServers(folder, pg, redis)
    finally:
        redis.close()
        pg.close()
        shutil.rmtree(folder, ignore_errors=True)


CityFactory = Callable[..., Awaitable[FaultCity]]


@pytest.fixture
async def fault_city(fault_servers: FaultServers, request: pytest.FixtureRequest) -> AsyncIterator[CityFactory]:
    """fault_city(**start options) -> a running, seeded city on a fresh database and app."""
    cities: list[FaultCity] = []

    async def build(**options: object) -> FaultCity:
        fault_servers.heal()
        name = f"fd_faults_{next(_numbers)}"
        conn = await asyncpg.connect(fault_servers.pg.url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        finally:
            await conn.close()
        client = aioredis.Redis.from_url(fault_servers.redis.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()
        folder = fault_servers.folder / name
        folder.mkdir()
        app = App(folder, app_env(fault_servers.pg, fault_servers.redis, name, folder))
        city = FaultCity(request.node.name, fault_servers.pg, fault_servers.redis, app, name)
        cities.append(city)
        await city.start(**options)  # type: ignore[arg-type]
        return city

    yield build
    for city in cities:
        await city.close()
    fault_servers.heal()


@pytest.fixture
def record_verdict() -> Callable[[Verdict], None]:
    def record(verdict: Verdict) -> None:
        VERDICTS.append(verdict)
        print(verdict.render())

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if VERDICTS:
        terminalreporter.section("fault scenarios: verdicts and recovery times")
        for verdict in VERDICTS:
            terminalreporter.write_line(verdict.render())
