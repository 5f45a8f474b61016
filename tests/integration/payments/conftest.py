"""Fixtures for payments against real PostgreSQL and Redis."""

from __future__ import annotations

import itertools
import os
from urllib.parse import urlsplit, urlunsplit

import pytest

from kernel.clock import SystemClock
from payments import PaymentsService
from payments.live import FraudScreen
from payments.model import CardInput
from payments.processor import CircuitBreaker, ResilientProcessor, TestModeProcessor
from payments.vault import Vault


@pytest.fixture
def test_processor() -> TestModeProcessor:
    return TestModeProcessor()


@pytest.fixture
def payments(db, redis, settings, test_processor: TestModeProcessor) -> PaymentsService:
    clock = SystemClock()
    processor = ResilientProcessor(test_processor, CircuitBreaker(clock.monotonic, threshold=3, cooldown=0.05),
                                   timeout=1.0, retries=1, backoff=0.001)
    return PaymentsService(db, vault=Vault(settings.vault_key), processor=processor,
                           fraud=FraudScreen(redis, settings.redis_prefix, clock), clock=clock)


@pytest.fixture
def add_card(payments: PaymentsService):
    async def add(customer_id: str, number: str = "4242424242424242") -> str:
        cvc = "1234" if number.startswith(("34", "37")) else "123"
        row = await payments.add_card(customer_id, CardInput(number, 12, 2034, cvc), "Test Holder")
        return str(row["id"])

    return add


_db_counter = itertools.count(1)


@pytest.fixture
async def database_url(servers, template_database, test_databases) -> str:
    """As the suite's `database_url` (a fresh copy of the migrated template per test), but
    copied with WAL_LOG: FILE_COPY forces a checkpoint per copy (about 1.3 s against 0.4 s on
    this machine, before every payments test)."""
    import asyncpg

    name = f"fd_pay_int_{os.getpid()}_{next(_db_counter)}"
    conn = await asyncpg.connect(servers[0])
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}" STRATEGY WAL_LOG')
    finally:
        await conn.close()
    if os.environ.get("DATABASE_URL"):
        # An outside server keeps what it is given: drop it at the end of the run. The embedded
        # one is deleted whole then, and a DROP DATABASE costs a checkpoint (~1 s) for nothing.
        test_databases.append(name)
    parts = urlsplit(servers[0])
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
