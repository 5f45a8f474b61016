"""`Idempotency-Key` for every write route that declares `idempotent=True`.

The first request claims (principal, key) with its fingerprint (method, path,
body hash). When it finishes, its status and body are stored; a replay with the
same fingerprint gets those bytes back (`Idempotent-Replayed: true`). The same
key with another body is 400 `idempotency_key_reused`; a replay while the first
is still running is 409 `idempotency_in_progress`. A 5xx or a crash frees the
key, so the client's retry runs again (services key their own rows on the
idempotency key too, so a retry after a crash finds what the first run wrote).
Stored responses are kept 24 h.
"""

from __future__ import annotations

import hashlib

import asyncpg
from aiohttp import web

from kernel.errors import Conflict, DomainError, ValidationFailed
from kernel.http import IDEMPOTENCY_KEY, Handler, endpoint_spec, principal

RETENTION = "24 hours"
# An in-progress claim older than this belongs to a dead process and may be taken over.
STALE_CLAIM = "60 seconds"


class IdempotencyKeyReused(DomainError):
    status = 400
    code = "idempotency_key_reused"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"


IDEMPOTENCY_DB = web.AppKey("idempotency_db", asyncpg.Pool)


def _fingerprint(request: web.Request, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.rel_url.path_qs.encode())
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    spec = endpoint_spec(request.match_info.handler)
    if spec is None or not spec.idempotent:
        return await handler(request)
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise ValidationFailed("this write requires an Idempotency-Key header", param="Idempotency-Key",
                               code="idempotency_key_missing", status=400)
    if len(key) > 255:
        raise ValidationFailed("Idempotency-Key is longer than 255 characters", param="Idempotency-Key")
    who = principal(request)
    scope = f"{who.via}:{who.account_id}"
    body = await request.read()
    fingerprint = _fingerprint(request, body)
    pool = request.app[IDEMPOTENCY_DB]
    async with pool.acquire() as conn:
        claimed = await conn.fetchval(
            f"""INSERT INTO idempotency_keys (principal, key, fingerprint) VALUES ($1, $2, $3)
                ON CONFLICT (principal, key) DO UPDATE
                   SET fingerprint = EXCLUDED.fingerprint, created_at = now()
                 WHERE idempotency_keys.created_at < now() - interval '{RETENTION}'
                    OR (idempotency_keys.completed_at IS NULL
                        AND idempotency_keys.created_at < now() - interval '{STALE_CLAIM}')
                RETURNING true""",
            scope, key, fingerprint,
        )
        if not claimed:
            row = await conn.fetchrow(
                "SELECT fingerprint, status, content_type, body, completed_at FROM idempotency_keys "
                "WHERE principal = $1 AND key = $2",
                scope, key,
            )
            if row is not None:
                if row["fingerprint"] != fingerprint:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was used with a different request", param="Idempotency-Key"
                    )
                if row["completed_at"] is None:
                    raise IdempotencyInProgress("a request with this Idempotency-Key is still being processed")
                return web.Response(
                    body=bytes(row["body"]), status=row["status"], content_type=row["content_type"],
                    headers={"Idempotent-Replayed": "true"},
                )
            # The row vanished between the two statements (a failed first run released it); claim again.
            return await idempotency_middleware(request, handler)
    request[IDEMPOTENCY_KEY] = key
    try:
        response = await handler(request)
    except DomainError as exc:
        # Domain outcomes (a decline, a conflict) are results, and are replayed as such,
        # except rate limiting, which says nothing about the request itself.
        if exc.status == 429:
            await _release(pool, scope, key)
            raise
        from kernel.http import encode

        await _complete(pool, scope, key, exc.status, "application/json", encode(exc.body()))
        raise
    except BaseException:
        await _release(pool, scope, key)
        raise
    if response.status >= 500 or not isinstance(response, web.Response) or response.body is None:
        await _release(pool, scope, key)
        return response
    await _complete(pool, scope, key, response.status, response.content_type, bytes(response.body))
    return response


async def _complete(pool: asyncpg.Pool, scope: str, key: str, status: int, content_type: str, body: bytes) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5, completed_at = now() "
            "WHERE principal = $1 AND key = $2",
            scope, key, status, content_type, body,
        )


async def _release(pool: asyncpg.Pool, scope: str, key: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND completed_at IS NULL", scope, key
        )


async def purge_expired(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        result = await conn.execute(f"DELETE FROM idempotency_keys WHERE created_at < now() - interval '{RETENTION}'")
    return int(result.split()[-1])
