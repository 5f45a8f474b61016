"""Rate limiting with GCRA in Redis: one atomic script call per request.

GCRA (the generic cell rate algorithm) stores a single timestamp per key (the
"theoretical arrival time"), so it is exact, O(1) and needs no sorted sets.
Limits apply per principal (or client IP when anonymous) and per tenant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web

from kernel.errors import RateLimited
from kernel.http import PRINCIPAL_KEY, Handler

# KEYS[1] = key; ARGV = emission interval ms, burst (tolerance) ms, now ms (server time is used)
_GCRA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance - interval
if now < allow_at then
  return {0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0, new_tat - now}
"""


@dataclass(frozen=True)
class Limit:
    per_minute: int
    burst: int

    @property
    def interval_ms(self) -> float:
        return 60_000 / self.per_minute

    @property
    def tolerance_ms(self) -> float:
        return self.interval_ms * max(self.burst - 1, 0)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_GCRA)

    async def check(self, key: str, limit: Limit) -> Decision:
        allowed, retry_ms, used_ms = await self._script(
            keys=[f"{self._prefix}rl:{key}"], args=[limit.interval_ms, limit.tolerance_ms]
        )
        used_ms = max(float(used_ms), 0.0)
        capacity_ms = limit.tolerance_ms + limit.interval_ms
        remaining = max(0, math.floor((capacity_ms - used_ms) / limit.interval_ms))
        return Decision(
            allowed=bool(allowed),
            limit=limit.burst,
            remaining=remaining,
            reset_seconds=math.ceil(used_ms / 1000),
            retry_after_seconds=max(1, math.ceil(float(retry_ms) / 1000)) if not allowed else 0,
        )


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
LIMITS = web.AppKey("rate_limits", dict)


def _exempt(request: web.Request) -> bool:
    return request.path in ("/healthz", "/readyz", "/metrics")


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _exempt(request):
        return await handler(request)
    limiter = request.app[RATE_LIMITER]
    limits = request.app[LIMITS]
    who = request.get(PRINCIPAL_KEY)
    subject = f"p:{who.account_id}" if who else f"ip:{request.remote}"
    decision = await limiter.check(subject, limits["principal"])
    if decision.allowed and who is not None and who.tenant_id:
        tenant = await limiter.check(f"t:{who.tenant_id}", limits["tenant"])
        if not tenant.allowed:
            decision = tenant
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_seconds),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after_seconds)
        raise RateLimited("too many requests; retry after the time in Retry-After", headers=headers)
    response = await handler(request)
    if not response.prepared:
        response.headers.update(headers)
    return response
