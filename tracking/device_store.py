"""The Postgres adapter of courier device keys (tracker apps speaking the OsmAnd protocol)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = "id, courier_id, name, created_at, last_used_at, revoked_at"


async def insert_key(pool: asyncpg.Pool, key_id: str, courier_id: str, key_hash: str, name: str,
                     created_by: str | None) -> asyncpg.Record:
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            f"INSERT INTO tracking_device_keys (id, courier_id, key_hash, name, created_by) "
            f"VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}", key_id, courier_id, key_hash, name, created_by,
        )


async def keys_of(pool: asyncpg.Pool, courier_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            f"SELECT {_COLUMNS} FROM tracking_device_keys WHERE courier_id = $1 ORDER BY created_at, id", courier_id,
        )


async def revoke_key(pool: asyncpg.Pool, key_id: str, at: datetime) -> bool:
    async with pool.acquire() as conn:
        return bool(await conn.fetchval(
            "UPDATE tracking_device_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING true",
            key_id, at,
        ))


async def courier_for_key(pool: asyncpg.Pool, key_hash: str, at: datetime) -> asyncpg.Record | None:
    """The key's courier and whether it is revoked; marks the key used (at most once a minute)."""
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            "WITH k AS (SELECT id, courier_id, revoked_at FROM tracking_device_keys WHERE key_hash = $1), "
            "used AS (UPDATE tracking_device_keys t SET last_used_at = $2 FROM k WHERE t.id = k.id "
            " AND k.revoked_at IS NULL "
            " AND (t.last_used_at IS NULL OR t.last_used_at < $2::timestamptz - interval '1 minute')) "
            "SELECT id, courier_id, revoked_at FROM k", key_hash, at,
        )
