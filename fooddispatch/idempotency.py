"""`Idempotency-Key` on every write: one mechanism for every route that is not a read.

Every HTTP route whose method is not GET, HEAD or OPTIONS honours the header when it is sent;
routes declared `endpoint(idempotent=True)` (money moves the client must be able to retry)
also require it. The first request claims (scope, key) with its fingerprint (method, path and
query, body). When it finishes, its status and body are stored; a repeat with the same
fingerprint gets those bytes back (`Idempotent-Replayed: true`) and the handler does not run.
The same key with another request is 400 `idempotency_key_reused`; a repeat while the first is
still running is 409 `idempotency_in_progress`. Domain outcomes (a decline, a conflict) are
results and are replayed too; a 5xx, a 429 or an exception frees the key, so the retry runs
again. Stored responses are kept 24 h.

Scope. An authenticated caller's keys are theirs (`via:account_id`): two principals never see
each other's keys. An anonymous caller (the public routes: `POST /v1/auth/register` and
`/v1/auth/login`) has no identity to own a key, so its scope is the request itself: the key
plus the fingerprint of the exact bytes sent. Only a caller who sends the very same body (for
login: the same email and password) gets the stored response, which is the token they would
get by logging in again; a stranger who guesses the key and sends anything else just runs their
own request (there is no `idempotency_key_reused` across anonymous callers, since that would
tell one caller about another's key).

Nothing readable at rest. Stored responses include credentials (login and registration tokens,
API keys shown once, webhook signing secrets) and request bodies include passwords and card
numbers, so: fingerprints are HMACs keyed with the server's secret (an unkeyed hash of a card
number or a password is a lookup away from the number), and stored bodies are sealed with
AES-GCM under a key derived from the same secret, bound to their row. Whoever reads the table
without the secret learns nothing; whoever has the secret can sign tokens anyway. A response
sealed under a secret since rotated cannot be replayed: 409 `idempotency_response_unavailable`.

A crash frees the key at once. Each claim records its owner, the instance id of the process
that made it, whose PostgreSQL advisory lock that process holds for its life
(`fooddispatch.liveness`). A conflicting in-progress claim whose owner's lock is free belongs
to a dead process and is taken over in the same claim statement; a live owner's claim is 409.
A claim older than `LOST_CLAIM` is taken over whoever owns it: no request runs that long, so
it is one whose completion or release never reached the database. Services also key their
own rows on the key (`kernel.http.idempotency_key`), so a retry after a crash finds what the
first run wrote.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fooddispatch.liveness import ProcessLiveness
from kernel.coalesce import Coalescer
from kernel.errors import Conflict, DomainError, ValidationFailed
from kernel.http import IDEMPOTENCY_KEY, Handler, encode, endpoint_spec, optional_principal

log = logging.getLogger(__name__)

RETENTION = "24 hours"
# No request runs this long: an in-progress claim this old lost its completion or release.
LOST_CLAIM = "10 minutes"
# Rows written before claims had owners (kernel 0002): a claim this old belonged to a dead process.
STALE_CLAIM = "60 seconds"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
HELD_WAIT = 1.0  # how long a claim waits for this process's liveness lock after a lost connection
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


KEY_MISSING = "idempotency_key_missing"  # 400 on a route that requires the header


class IdempotencyKeyReused(DomainError):
    status = 400
    code = "idempotency_key_reused"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"


class IdempotencyResponseUnavailable(Conflict):
    code = "idempotency_response_unavailable"


class IdempotencyUnavailable(DomainError):
    status = 503
    code = "idempotency_unavailable"


@dataclass(frozen=True, slots=True)
class Claim:
    scope: str
    key: str
    fingerprint: str
    owner: int = 0


@dataclass(frozen=True, slots=True)
class _Outcome:
    claim: Claim
    status: int
    content_type: str
    body: bytes


class Sealer:
    """Keyed fingerprints and sealed response bodies, from one server secret."""

    _VERSION = b"\x01"  # a sealed body starts with it; JSON never does (rows stored in clear before 0002)

    def __init__(self, secret: str) -> None:
        root = secret.encode()
        self._mac_key = hmac.digest(root, b"fooddispatch idempotency fingerprint v1", "sha256")
        self._aead = AESGCM(hmac.digest(root, b"fooddispatch idempotency response v1", "sha256"))

    def fingerprint(self, method: str, target: str, body: bytes) -> str:
        mac = hmac.new(self._mac_key, digestmod=hashlib.sha256)
        for part in (method.encode(), target.encode(), body):
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        return mac.hexdigest()

    def seal(self, claim: Claim, body: bytes) -> bytes:
        nonce = os.urandom(12)
        return self._VERSION + nonce + self._aead.encrypt(nonce, body, _bound_to(claim))

    def open(self, claim: Claim, stored: bytes) -> bytes:
        if not stored.startswith(self._VERSION):
            return stored
        try:
            return self._aead.decrypt(stored[1:13], stored[13:], _bound_to(claim))
        except InvalidTag:
            raise IdempotencyResponseUnavailable(
                "the response stored for this Idempotency-Key can no longer be read (the server's secret "
                "changed); the request was processed: look the result up instead of retrying",
                param=HEADER) from None


def _bound_to(claim: Claim) -> bytes:
    # The row's identity as associated data: a sealed body moved to another row does not open.
    return f"{claim.scope}\0{claim.key}\0{claim.fingerprint}".encode()


# Claims the keys that are free (new, expired, held by a dead process, or lost) and, for the
# others, reads the row as it was before this statement: one round trip for a whole batch.
# Sorted input keeps row-lock order the same in every batch, so concurrent batches cannot
# deadlock. The CASE only runs on a conflict, and in order: a completed claim is kept; a claim
# of our own is running here; otherwise the owner is dead exactly when its lock can be taken
# (held to the end of this statement's transaction, then free again: nobody waits for a dead id).
_CLAIM = f"""
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS u(principal, key, fingerprint)
), claimed AS (
    INSERT INTO idempotency_keys AS k (principal, key, fingerprint, owner)
    SELECT principal, key, fingerprint, $4::bigint FROM input ORDER BY principal, key
    ON CONFLICT (principal, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, owner = EXCLUDED.owner, created_at = now(),
           status = NULL, content_type = NULL, body = NULL, completed_at = NULL
     WHERE k.created_at < now() - interval '{RETENTION}'
        OR CASE WHEN k.completed_at IS NOT NULL THEN false
                WHEN k.created_at < now() - interval '{LOST_CLAIM}' THEN true
                WHEN k.owner IS NULL THEN k.created_at < now() - interval '{STALE_CLAIM}'
                WHEN k.owner = EXCLUDED.owner THEN false
                ELSE pg_try_advisory_xact_lock(k.owner)
           END
    RETURNING k.principal, k.key
)
SELECT i.principal, i.key, c.key IS NOT NULL AS claimed,
       k.fingerprint, k.status, k.content_type, k.body, k.completed_at
  FROM input i
  LEFT JOIN claimed c ON c.principal = i.principal AND c.key = i.key
  LEFT JOIN idempotency_keys k ON c.key IS NULL AND k.principal = i.principal AND k.key = i.key
"""

# Completion and release touch only the caller's own claim: one taken over meanwhile is not theirs.
_COMPLETE = """
UPDATE idempotency_keys k
   SET status = u.status, content_type = u.content_type, body = u.body, completed_at = now()
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::text[], $6::bytea[])
       AS u(principal, key, owner, status, content_type, body)
 WHERE k.principal = u.principal AND k.key = u.key AND k.owner = u.owner AND k.completed_at IS NULL
"""

_RELEASE = """
DELETE FROM idempotency_keys k
 USING unnest($1::text[], $2::text[], $3::bigint[]) AS u(principal, key, owner)
 WHERE k.principal = u.principal AND k.key = u.key AND k.owner = u.owner AND k.completed_at IS NULL
"""


class IdempotencyStore:
    """The key table, with concurrent requests' claims, completions and releases each sent
    as one statement per batch (see kernel.coalesce): two round trips per write request
    become two per batch of them, with the same guarantees per key. A completion or release
    that cannot reach the database is kept and written later, so a live process's claim is
    not left in progress (which would answer 409 until `LOST_CLAIM`)."""

    def __init__(self, pool: asyncpg.Pool, liveness: ProcessLiveness, secret: str) -> None:
        self._pool = pool
        self.liveness = liveness
        self.sealer = Sealer(secret)
        self._claims: Coalescer[Claim, asyncpg.Record | None] = Coalescer(self._claim_batch, max_in_flight=4)
        self._completions: Coalescer[_Outcome, None] = Coalescer(self._complete_batch, max_in_flight=4)
        self._releases: Coalescer[Claim, None] = Coalescer(self._release_batch, max_in_flight=2)
        self._unsettled: list[_Outcome | Claim] = []
        self._settler: asyncio.Task[None] | None = None

    async def claim(self, scope: str, key: str, fingerprint: str) -> tuple[Claim, asyncpg.Record | None]:
        """(the claim, None) when this request now holds the key; else (_, the key's row), whose
        fields are None if it vanished between the claim and the read."""
        if not await self.liveness.wait_held(HELD_WAIT):
            # Claims made now would look dead to every other process: refuse rather than risk two runs.
            raise IdempotencyUnavailable("idempotency keys are unavailable; retry shortly",
                                         headers={"Retry-After": "1"})
        claim = Claim(scope, key, fingerprint, self.liveness.instance_id)
        return claim, await self._claims.submit(claim)

    async def complete(self, claim: Claim, status: int, content_type: str, body: bytes) -> None:
        outcome = _Outcome(claim, status, content_type, self.sealer.seal(claim, body))
        try:
            await self._completions.submit(outcome)
        except _DB_ERRORS as exc:
            self._keep_for_later(outcome, exc)

    async def release(self, claim: Claim) -> None:
        try:
            await self._releases.submit(claim)
        except _DB_ERRORS as exc:
            self._keep_for_later(claim, exc)

    async def close(self) -> None:
        if self._settler is not None:
            self._settler.cancel()
            await asyncio.gather(self._settler, return_exceptions=True)

    def _keep_for_later(self, item: _Outcome | Claim, exc: BaseException) -> None:
        log.warning("idempotency key not settled (%r); retrying in the background", exc)
        self._unsettled.append(item)
        if self._settler is None or self._settler.done():
            self._settler = asyncio.get_running_loop().create_task(self._settle(), name="idempotency-settle")

    async def _settle(self) -> None:
        delay = 0.1
        while self._unsettled:
            await asyncio.sleep(delay)
            items, self._unsettled = self._unsettled, []
            try:
                outcomes = [i for i in items if isinstance(i, _Outcome)]
                claims = [i for i in items if isinstance(i, Claim)]
                if outcomes:
                    await self._complete_batch(outcomes)
                if claims:
                    await self._release_batch(claims)
            except _DB_ERRORS:
                self._unsettled.extend(items)  # both statements are idempotent: all again next time
                delay = min(delay * 2, 5.0)

    async def _claim_batch(self, claims: list[Claim]) -> list[asyncpg.Record | BaseException | None]:
        first: dict[tuple[str, str], Claim] = {}
        for claim in claims:
            first.setdefault((claim.scope, claim.key), claim)
        ordered = sorted(first.values(), key=lambda c: (c.scope, c.key))
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, [c.scope for c in ordered], [c.key for c in ordered],
                                    [c.fingerprint for c in ordered], claims[0].owner)
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
        ordered = sorted(outcomes, key=lambda o: (o.claim.scope, o.claim.key))
        async with self._pool.acquire() as conn:
            await conn.execute(_COMPLETE, [o.claim.scope for o in ordered], [o.claim.key for o in ordered],
                               [o.claim.owner for o in ordered], [o.status for o in ordered],
                               [o.content_type for o in ordered], [o.body for o in ordered])
        return [None] * len(outcomes)

    async def _release_batch(self, claims: list[Claim]) -> list[None]:
        ordered = sorted(claims, key=lambda c: (c.scope, c.key))
        async with self._pool.acquire() as conn:
            await conn.execute(_RELEASE, [c.scope for c in ordered], [c.key for c in ordered],
                               [c.owner for c in ordered])
        return [None] * len(claims)


IDEMPOTENCY_STORE = web.AppKey("idempotency_store", IdempotencyStore)
_IN_PROGRESS = "a request with this Idempotency-Key is still being processed"


def _key_from(request: web.Request, required: bool) -> str | None:
    key = request.headers.get(HEADER, "").strip()
    if not key:
        if required:
            raise ValidationFailed("this write requires an Idempotency-Key header", param=HEADER,
                                   code=KEY_MISSING, status=400)
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters", param=HEADER)
    if not (key.isascii() and key.isprintable()):
        raise ValidationFailed("Idempotency-Key must be printable ASCII", param=HEADER)
    return key


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in READS or request.match_info.http_exception is not None:
        return await handler(request)  # a read, or no route (404/405): nothing to claim
    spec = endpoint_spec(request.match_info.handler)
    key = _key_from(request, required=spec is not None and spec.idempotent)
    if key is None:
        return await handler(request)
    store = request.app[IDEMPOTENCY_STORE]
    fingerprint = store.sealer.fingerprint(request.method, request.rel_url.path_qs, await request.read())
    who = optional_principal(request)
    scope = f"{who.via}:{who.account_id}" if who is not None else f"anonymous:{fingerprint}"
    while True:
        claim, row = await store.claim(scope, key, fingerprint)
        if row is None or row["fingerprint"] is not None:
            break
        # The row vanished between the claim and the read (a failed first run released it): claim again.
    if row is not None:
        return _replay(store, claim, row)
    request[IDEMPOTENCY_KEY] = key
    return await _run_once(store, claim, request, handler)


def _replay(store: IdempotencyStore, claim: Claim, row: asyncpg.Record) -> web.Response:
    if row["fingerprint"] != claim.fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request", param=HEADER)
    if row["completed_at"] is None:
        raise IdempotencyInProgress(_IN_PROGRESS)
    body = store.sealer.open(claim, bytes(row["body"]))
    headers = {"Idempotent-Replayed": "true", "Content-Type": row["content_type"]}
    if not body and row["status"] in (204, 304):
        del headers["Content-Type"]
    return web.Response(body=body, status=row["status"], headers=headers)


async def _run_once(store: IdempotencyStore, claim: Claim, request: web.Request,
                    handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except DomainError as exc:
        # Domain outcomes (a decline, a conflict) are results, and are replayed as such, except
        # rate limiting and unavailability, which say nothing about the request itself.
        if exc.status == 429 or exc.status >= 500:
            await asyncio.shield(store.release(claim))
            raise
        await asyncio.shield(store.complete(claim, exc.status, "application/json", encode(exc.body())))
        raise
    except BaseException:
        await asyncio.shield(store.release(claim))
        raise
    body = response.body if isinstance(response, web.Response) else None
    if isinstance(response, web.Response) and body is None:
        body = b""  # no content (204): replayed as no content
    if response.status >= 500 or not isinstance(body, bytes | bytearray):  # nothing replayable to store
        await asyncio.shield(store.release(claim))
        return response
    content_type = response.headers.get("Content-Type", response.content_type)
    await asyncio.shield(store.complete(claim, response.status, content_type, bytes(body)))
    return response


async def purge_expired(pool: asyncpg.Pool, retention: timedelta | None = None) -> int:
    """Retention: keys written longer than `retention` ago go (the configured period, docs/PRIVACY.md, which
    config keeps no shorter than the replay window), else longer than the replay window (RETENTION) ago.
    Measured on the database's clock, as the replay window is (a key's `created_at` and its claim's expiry)."""
    async with pool.acquire() as conn:
        result = await conn.execute(
            f"DELETE FROM idempotency_keys WHERE created_at < now() - coalesce($1::interval, interval '{RETENTION}')",
            retention)
    return int(result.split()[-1])


async def forget_principal(conn: asyncpg.Connection, account_id: str) -> int:
    """An erasure: the account's stored responses (which may hold its personal data) go."""
    result = await conn.execute("DELETE FROM idempotency_keys WHERE principal = ANY($1::text[])",
                                [f"token:{account_id}", f"api_key:{account_id}"])
    return int(result.split()[-1])
