"""Helpers for payments over HTTP."""

from __future__ import annotations

import itertools
import os
from urllib.parse import urlsplit, urlunsplit

import pytest

_keys = itertools.count(1)


def key_headers(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or f"k-{next(_keys)}"}


@pytest.fixture
def add_card(client):
    async def add(headers: dict[str, str], number: str = "4242424242424242") -> str:
        resp = await client.post("/v1/payment_methods", headers=key_headers(headers), json={
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            "billing_details": {"name": "Ana Test"}})
        assert resp.status == 200, await resp.text()
        return (await resp.json())["id"]

    return add


@pytest.fixture
def pay(client):
    async def create(headers: dict[str, str], pm: str, amount: int = 2500, key: str | None = None, **extra):
        return await client.post("/v1/payment_intents", headers=key_headers(headers, key), json={
            "amount": amount, "currency": "EUR", "payment_method": pm, "confirm": True, **extra})

    return create


@pytest.fixture
def manual_resolver(monkeypatch):
    """The app's own resolver loop leaves `processing` intents alone, so a test that drives
    recovery by hand is the only one to resolve them. (Otherwise, on a loaded machine where
    the test outlives the loop's interval, the loop can settle the intent first, and the
    test's own `resolve_processing()` finds nothing left.)"""
    from fooddispatch.components import payments as component

    monkeypatch.setattr(component, "RESOLVE_EVERY_SECONDS", 3600.0)


_db_counter = itertools.count(1)


@pytest.fixture
async def database_url(servers, template_database, test_databases) -> str:
    """As the suite's `database_url` (a fresh copy of the migrated template per test), but
    copied with WAL_LOG: FILE_COPY forces a checkpoint per copy (about 1.3 s against 0.4 s on
    this machine, before every payments test)."""
    import asyncpg

    name = f"fd_pay_e2e_{os.getpid()}_{next(_db_counter)}"
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
