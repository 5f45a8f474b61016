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

import asyncio
import hashlib
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from kernel.coalesce import Coalescer
from kernel.errors import Conflict, DomainError, ValidationFailed
from kernel.http import IDEMPOTENCY_KEY, Handler, encode, endpoint_spec, principal

RETENTION = "24 hours"
# An in-progress claim older than this belongs to a dead process and may be taken over.
STALE_CLAIM = "60 seconds"


class IdempotencyKeyReused(DomainError):
    status = 400
    code = "idempotency_key_reused"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"


@dataclass(frozen=True, slots=True)
class _Claim:
    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class _Outcome:
    scope: str
    key: str
    status: int
    content_type: str
    body: bytes


# Claims the keys that are free (new, expired, or held by a dead process) and, for the others,
# reads the row as it was before this statement: one round trip for a whole batch. Sorted input
# keeps row-lock order the same in every batch, so concurrent batches cannot deadlock.
_CLAIM = f"""
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS u(principal, key, fingerprint)
), claimed AS (
    INSERT INTO idempotency_keys AS k (principal, key, fingerprint)
    SELECT principal, key, fingerprint FROM input ORDER BY principal, key
    ON CONFLICT (principal, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, created_at = now()
     WHERE k.created_at < now() - interval '{RETENTION}'
        OR (k.completed_at IS NULL AND k.created_at < now() - interval '{STALE_CLAIM}')
    RETURNING k.principal, k.key
)
SELECT i.principal, i.key, c.key IS NOT NULL AS claimed,
       k.fingerprint, k.status, k.content_type, k.body, k.completed_at
  FROM input i
  LEFT JOIN claimed c ON c.principal = i.principal AND c.key = i.key
  LEFT JOIN idempotency_keys k ON c.key IS NULL AND k.principal = i.principal AND k.key = i.key
"""

_COMPLETE = """
UPDATE idempotency_keys k
   SET status = u.status, content_type = u.content_type, body = u.body, completed_at = now()
  FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bytea[])
       AS u(principal, key, status, content_type, body)
 WHERE k.principal = u.principal AND k.key = u.key
"""

_RELEASE = """
DELETE FROM idempotency_keys k
 USING unnest($1::text[], $2::text[]) AS u(principal, key)
 WHERE k.principal = u.principal AND k.key = u.key AND k.completed_at IS NULL
"""


class IdempotencyStore:
    """The key table, with concurrent requests' claims, completions and releases each sent
    as one statement per batch (see kernel.coalesce): two round trips per write request
    become two per batch of them, with the same guarantees per key."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._claims: Coalescer[_Claim, asyncpg.Record | None] = Coalescer(self._claim_batch, max_in_flight=4)
        self._completions: Coalescer[_Outcome, None] = Coalescer(self._complete_batch, max_in_flight=4)
        self._releases: Coalescer[tuple[str, str], None] = Coalescer(self._release_batch, max_in_flight=2)

    async def claim(self, scope: str, key: str, fingerprint: str) -> asyncpg.Record | None:
        """None when this request now holds the key; else the key's row (None-valued if it vanished)."""
        return await self._claims.submit(_Claim(scope, key, fingerprint))

    async def complete(self, scope: str, key: str, status: int, content_type: str, body: bytes) -> None:
        await self._completions.submit(_Outcome(scope, key, status, content_type, body))

    async def release(self, scope: str, key: str) -> None:
        await self._releases.submit((scope, key))

    async def _claim_batch(self, claims: list[_Claim]) -> list[asyncpg.Record | BaseException | None]:
        first: dict[tuple[str, str], _Claim] = {}
        for claim in claims:
            first.setdefault((claim.scope, claim.key), claim)
        ordered = sorted(first.values(), key=lambda c: (c.scope, c.key))
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, [c.scope for c in ordered], [c.key for c in ordered],
                                    [c.fingerprint for c in ordered])
        by_key = {(row["principal"], row["key"]): row for row in rows}
        outcomes: list[asyncpg.Record | BaseException | None] = []
        for claim in claims:
            row = by_key[(claim.scope, claim.key)]
            if not row["claimed"]:
                outcomes.append(row)
            elif first[(claim.scope, claim.key)] is claim:
                outcomes.append(None)
            else:  # the same key twice in one batch: the first holds it now
                outcomes.append(IdempotencyInProgress(_IN_PROGRESS))
        return outcomes

    async def _complete_batch(self, outcomes: list[_Outcome]) -> list[None]:
        ordered = sorted(outcomes, key=lambda o: (o.scope, o.key))
        async with self._pool.acquire() as conn:
            await conn.execute(_COMPLETE, [o.scope for o in ordered], [o.key for o in ordered],
                               [o.status for o in ordered], [o.content_type for o in ordered],
                               [o.body for o in ordered])
        return [None] * len(outcomes)

    async def _release_batch(self, keys: list[tuple[str, str]]) -> list[None]:
        ordered = sorted(keys)
        async with self._pool.acquire() as conn:
            await conn.execute(_RELEASE, [scope for scope, _ in ordered], [key for _, key in ordered])
        return [None] * len(keys)


IDEMPOTENCY_STORE = web.AppKey("idempotency_store", IdempotencyStore)
_IN_PROGRESS = "a request with this Idempotency-Key is still being processed"


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
    fingerprint = _fingerprint(request, await request.read())
    store = request.app[IDEMPOTENCY_STORE]
    row = await store.claim(scope, key, fingerprint)
    if row is not None:
        if row["fingerprint"] is None:
            # The row vanished between the claim and the read (a failed first run released it); claim again.
            return await idempotency_middleware(request, handler)
        if row["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was used with a different request",
                                       param="Idempotency-Key")
        if row["completed_at"] is None:
            raise IdempotencyInProgress(_IN_PROGRESS)
        return web.Response(body=bytes(row["body"]), status=row["status"], content_type=row["content_type"],
                            headers={"Idempotent-Replayed": "true"})
    request[IDEMPOTENCY_KEY] = key
    try:
        response = await handler(request)
    except DomainError as exc:
        # Domain outcomes (a decline, a conflict) are results, and are replayed as such,
        # except rate limiting, which says nothing about the request itself.
        if exc.status == 429:
            await store.release(scope, key)
            raise
        await store.complete(scope, key, exc.status, "application/json", encode(exc.body()))
        raise
    except BaseException:
        await asyncio.shield(store.release(scope, key))
        raise
    body = response.body if isinstance(response, web.Response) else None
    if response.status >= 500 or not isinstance(body, bytes | bytearray):  # nothing replayable to store
        await store.release(scope, key)
        return response
    await store.complete(scope, key, response.status, response.content_type, bytes(body))
    return response


async def purge_expired(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        result = await conn.execute(f"DELETE FROM idempotency_keys WHERE created_at < now() - interval '{RETENTION}'")
    return int(result.split()[-1])
