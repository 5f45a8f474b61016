"""Accounts, bearer tokens (JWT) and restaurant API keys.

Tokens are short-lived HS256 JWTs with a `kid` header so the signing secret can
rotate: `verify` accepts every key in the keyring, `issue` signs with the current
one. API keys are random secrets shown once (`fdk_<prefix>_<secret>`); only a
SHA-256 of the secret is stored, which is enough for 256-bit random secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fooddispatch.versions import CURRENT as CURRENT_API_VERSION
from kernel.errors import Conflict, DomainError, NotFound, Unauthenticated, ValidationFailed
from kernel.http import CUSTOMER, OPERATOR, ROLES, STAFF, Principal, refuse_store_scoped
from kernel.ids import new_id

API_KEY_PREFIX = "fdk_"
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)  # OWASP's argon2id minimum


class TokenExpired(Unauthenticated):
    code = "token_expired"


class InvalidToken(Unauthenticated):
    code = "invalid_token"


class TokenRevoked(Unauthenticated):
    code = "token_revoked"


# Codes of 401s raised without a type of their own.
INVALID_CREDENTIALS = "invalid_credentials"
API_KEY_REVOKED = "api_key_revoked"


class EmailTaken(Conflict):
    code = "email_taken"


class Tokens:
    """Issues and verifies tokens. Verified tokens are remembered until they expire.

    An app sends the same token on every request for its lifetime, and PyJWT's decode
    (header parse, base64 alphabet check per character, HMAC, claims) costs more than
    the rest of a cheap request. A token string is immutable and self-contained, so the
    principal it verified to stays right until `exp`; the keyring is fixed per process,
    so a removed key cannot leave stale entries behind.
    """

    CACHE_SIZE = 8_192

    def __init__(self, keyring: dict[str, str], current_kid: str, ttl_seconds: int) -> None:
        if current_kid not in keyring:
            raise ValueError("the current kid must be in the keyring")
        self._keys = dict(keyring)
        self._kid = current_kid
        self._ttl = ttl_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}
        # Accounts whose tokens no longer verify (erased: docs/PRIVACY.md). Filled by `revoke` in the
        # process that erased, and from the accounts table by every process (`IdentityService.refresh_revoked`).
        self.revoked: frozenset[str] = frozenset()

    def revoke(self, account_ids: set[str] | frozenset[str]) -> None:
        self.revoked = self.revoked | account_ids

    @property
    def ttl(self) -> int:
        return self._ttl

    def issue(self, principal: Principal, ttl_seconds: int | None = None) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": principal.account_id,
            "role": principal.role,
            "iat": now,
            "exp": now + timedelta(seconds=ttl_seconds or self._ttl),
        }
        if principal.tenant_id:
            claims["tenant"] = principal.tenant_id
        if principal.name:
            claims["name"] = principal.name
        return jwt.encode(claims, self._keys[self._kid], algorithm="HS256", headers={"kid": self._kid})

    def verify(self, token: str) -> Principal:
        hit = self._verified.get(token)
        if hit is not None:
            if time.time() < hit[1]:
                return self._unrevoked(hit[0])
            del self._verified[token]
            raise TokenExpired("token has expired")
        who, expires_at = self._decode(token)
        if len(self._verified) >= self.CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[token] = (who, expires_at)
        return self._unrevoked(who)

    def _unrevoked(self, who: Principal) -> Principal:
        if self.revoked and who.account_id in self.revoked:
            raise TokenRevoked("this account's tokens have been revoked")
        return who

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid or "")
            if key is None:
                raise InvalidToken("token signed with an unknown key")
            claims = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]})
        except jwt.ExpiredSignatureError:
            raise TokenExpired("token has expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("token is malformed or its signature does not verify") from None
        if claims["role"] not in ROLES:
            raise InvalidToken("token names an unknown role")
        who = Principal(
            account_id=claims["sub"], role=claims["role"], tenant_id=claims.get("tenant"), name=claims.get("name")
        )
        return who, float(claims["exp"])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class IdentityService:
    def __init__(self, pool: asyncpg.Pool, tokens: Tokens, api_version: str = CURRENT_API_VERSION) -> None:
        """`api_version`: the version a new API key is pinned to (the current one)."""
        self._pool = pool
        self.tokens = tokens
        self.api_version = api_version

    async def register_customer(self, email: str, password: str, name: str | None) -> Principal:
        if len(password) < 8:
            raise ValidationFailed("password must be at least 8 characters", param="password")
        return await self.create_account(CUSTOMER, email=email, password=password, name=name)

    async def create_account(
        self,
        role: str,
        *,
        email: str | None = None,
        password: str | None = None,
        name: str | None = None,
        tenant_id: str | None = None,
        account_id: str | None = None,
    ) -> Principal:
        if role not in ROLES:
            raise ValidationFailed(f"unknown role {role!r}", param="role")
        if (role == STAFF) != (tenant_id is not None):
            raise ValidationFailed("staff accounts need a tenant, other roles must not have one", param="tenant_id")
        prefixes = {"customer": "cus", "courier": "cou", "staff": "stf", "auditor": "aud"}
        account_id = account_id or new_id(prefixes.get(role, "opr"))
        password_hash = await _hash_off_loop(password) if password else None
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO accounts (id, role, email, password_hash, name, tenant_id) "
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    account_id, role, email, password_hash, name, tenant_id,
                )
        except asyncpg.UniqueViolationError:
            raise EmailTaken("an account with this email already exists", param="email") from None
        return Principal(account_id=account_id, role=role, tenant_id=tenant_id, name=name)

    async def login(self, email: str, password: str) -> Principal:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, role, tenant_id, name, password_hash FROM accounts "
                "WHERE lower(email) = lower($1) AND disabled_at IS NULL",
                email,
            )
        # Verify against a dummy hash when the account is unknown, so timing does not reveal it.
        stored = row["password_hash"] if row and row["password_hash"] else _DUMMY_HASH
        ok = await _verify_off_loop(stored, password)
        if row is None or not ok:
            raise Unauthenticated("email or password is wrong", code=INVALID_CREDENTIALS)
        return Principal(account_id=row["id"], role=row["role"], tenant_id=row["tenant_id"], name=row["name"])

    async def get_account(self, account_id: str) -> Principal:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, role, tenant_id, name FROM accounts WHERE id = $1 AND disabled_at IS NULL", account_id
            )
        if row is None:
            raise NotFound("no such account", param="account_id")
        return Principal(account_id=row["id"], role=row["role"], tenant_id=row["tenant_id"], name=row["name"])

    async def names(self, account_ids: list[str], role: str) -> dict[str, str]:
        """The names of those of `account_ids` that are accounts of `role` and have a name."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, name FROM accounts WHERE id = ANY($1::text[]) AND role = $2 AND name IS NOT NULL",
                account_ids, role,
            )
        return {row["id"]: row["name"] for row in rows}

    async def first_account(self, role: str, tenant_id: str | None) -> Principal | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, role, tenant_id, name FROM accounts WHERE role = $1 "
                "AND tenant_id IS NOT DISTINCT FROM $2 AND disabled_at IS NULL ORDER BY created_at LIMIT 1",
                role, tenant_id,
            )
        if row is None:
            return None
        return Principal(account_id=row["id"], role=row["role"], tenant_id=row["tenant_id"], name=row["name"])

    # -- privacy (fooddispatch.privacy) ------------------------------------------------------

    async def refresh_revoked(self) -> None:
        """Every erased account's tokens stop verifying in this process (the erasing process revoked
        them at once; the others learn here, every few seconds). Only erasures younger than a token's
        lifetime matter: older tokens have expired anyway."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT id FROM accounts WHERE erased_at > now() - $1::interval",
                                    timedelta(seconds=self.tokens.ttl))
        self.tokens.revoke({row["id"] for row in rows})

    @staticmethod
    async def export_account(conn: asyncpg.Connection, account_id: str) -> dict[str, object] | None:
        """What the accounts table holds about the person (never the password hash)."""
        row = await conn.fetchrow(
            "SELECT id, role, email, name, tenant_id, created_at, disabled_at, erased_at FROM accounts WHERE id = $1",
            account_id,
        )
        return None if row is None else dict(row)

    @staticmethod
    async def erase_account(conn: asyncpg.Connection, account_id: str, at: datetime) -> int:
        """Name, email and password gone, the account disabled; the id stays (financial records name it)."""
        result = await conn.execute(
            "UPDATE accounts SET email = NULL, name = NULL, password_hash = NULL, "
            "disabled_at = coalesce(disabled_at, $2), erased_at = coalesce(erased_at, $2) WHERE id = $1",
            account_id, at,
        )
        return int(result.split()[-1])

    async def create_api_key(self, tenant_id: str, name: str, created_by: Principal,
                             store_id: str | None = None) -> tuple[str, str]:
        """Returns (key id, the full secret). The secret is never retrievable again. `store_id`
        limits the key to that store (the caller has checked that it is the tenant's). The key is
        pinned to the current API version: its requests keep that version's shapes."""
        if created_by.role != OPERATOR and created_by.tenant_id != tenant_id:
            raise NotFound("no such tenant", param="tenant_id")
        refuse_store_scoped(created_by, "API keys")
        key_id = new_id("key")
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO api_keys (id, tenant_id, prefix, secret_hash, name, created_by, store_id, api_version) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                key_id, tenant_id, prefix, _secret_hash(secret), name, created_by.account_id, store_id,
                self.api_version,
            )
        return key_id, f"{API_KEY_PREFIX}{prefix}_{secret}"

    async def revoke_api_key(self, key_id: str, by: Principal) -> None:
        refuse_store_scoped(by, "API keys")
        async with self._pool.acquire() as conn:
            done = await conn.fetchval(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL "
                "AND ($2::text IS NULL OR tenant_id = $2) RETURNING id",
                key_id, None if by.role == OPERATOR else by.tenant_id,
            )
        if done is None:
            raise NotFound("no such API key", param="key_id")

    async def principal_for_api_key(self, presented: str) -> Principal:
        try:
            prefix, secret = presented[len(API_KEY_PREFIX):].split("_", 1)
        except ValueError:
            raise InvalidToken("malformed API key") from None
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, tenant_id, store_id, secret_hash, revoked_at, api_version FROM api_keys WHERE prefix = $1",
                prefix,
            )
        if row is None or not hmac.compare_digest(row["secret_hash"], _secret_hash(secret)):
            raise InvalidToken("unknown API key")
        if row["revoked_at"] is not None:
            raise Unauthenticated("API key has been revoked", code=API_KEY_REVOKED)
        stores = None if row["store_id"] is None else frozenset({row["store_id"]})
        return Principal(account_id=row["id"], role=STAFF, tenant_id=row["tenant_id"], via="api_key",
                         store_ids=stores, api_version=row["api_version"])


async def _hash_off_loop(password: str) -> str:
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, hash_password, password)


async def _verify_off_loop(stored: str, password: str) -> bool:
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, password_matches, stored, password)


_DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2N+0W5k9tOpSpXIVHdB3mN/lsbEqO4YVBSkWmWq6x1w"

__all__ = ["DomainError", "IdentityService", "Tokens"]
