"""Migrations: idempotent, safe when two processes start together, strict about edits."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from fooddispatch.migrate import Migration, MigrationError, apply_migrations, discover
from tests.conftest import with_database


@pytest.fixture
async def empty_database(servers):
    admin = await asyncpg.connect(servers[0])
    name = "fd_mig_" + str(id(object()))
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield with_database(servers[0], name)
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


async def test_every_package_migration_applies_and_rerun_is_a_no_op(empty_database):
    conn = await asyncpg.connect(empty_database)
    try:
        applied = await apply_migrations(conn)
        assert applied == [f"{m.package}/{m.version:04d}_{m.name}" for m in discover()]
        assert await apply_migrations(conn) == []
        count = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(applied)
    finally:
        await conn.close()


async def test_two_processes_migrating_at_once_apply_each_file_once(empty_database):
    conns = [await asyncpg.connect(empty_database) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        applied = [name for result in results for name in result]
        assert sorted(applied) == sorted(f"{m.package}/{m.version:04d}_{m.name}" for m in discover())
    finally:
        for c in conns:
            await c.close()


async def test_editing_an_applied_migration_is_an_error(empty_database):
    conn = await asyncpg.connect(empty_database)
    try:
        first = [Migration("kernel", 1, "t", "CREATE TABLE t (x int);")]
        await apply_migrations(conn, first)
        edited = [Migration("kernel", 1, "t", "CREATE TABLE t (x bigint);")]
        with pytest.raises(MigrationError, match="checksum"):
            await apply_migrations(conn, edited)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(empty_database):
    conn = await asyncpg.connect(empty_database)
    try:
        broken = [Migration("kernel", 1, "bad", "CREATE TABLE half (x int); SELECT 1/0;")]
        with pytest.raises(asyncpg.DivisionByZeroError):
            await apply_migrations(conn, broken)
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()
