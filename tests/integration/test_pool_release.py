"""The app's pool hands back connections without leftover transactions."""

from __future__ import annotations

import asyncpg

from fooddispatch.database import release_connection


async def test_a_connection_released_inside_a_transaction_comes_back_clean(database_url) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, reset=release_connection)
    try:
        conn = await pool.acquire()
        tx = conn.transaction()
        await tx.start()
        await conn.execute("CREATE TABLE abandoned (x int)")
        await pool.release(conn)  # a handler that crashed between BEGIN and COMMIT
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT to_regclass('abandoned')") is None
    finally:
        await pool.close()
