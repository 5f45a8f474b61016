"""Rate limiting with GCRA in Redis: one atomic script call per batch of concurrent requests.

GCRA (the generic cell rate algorithm) stores a single timestamp per key (the
"theoretical arrival time"), so it is exact, O(1) and needs no sorted sets.
Limits apply per principal (or client IP when anonymous) and per tenant.

When Redis is down or slow, limiting fails open to a limiter in this process (the same
GCRA, in memory), for reads and writes alike: a request that does not need Redis (a
checkout, a menu read: PostgreSQL is the truth) is not refused because the counter store
is out, yet one client still cannot flood a process. The cost is that each process counts
alone for the outage (N processes let N times the limit through). Redis is tried again
`REDIS_RETRY_S` after a failure.

Keys are hash-tagged by tenant (a staff member's key beside its tenant's, `rl:{t:<tenant>}:p:<account>`)
or by principal (`rl:{p:<account>}`, `rl:{ip:<address>}`), so one request's keys share a slot. On a
Redis Cluster a batch becomes one script call per tag, pipelined (one round trip per shard); on one
server it stays one call.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from aiohttp import web
from redis.exceptions import NoScriptError

from kernel.coalesce import Coalescer
from kernel.errors import RateLimited
from kernel.fanout import LIVE_STORE_ERRORS_OR_TIMEOUT, is_cluster
from kernel.http import PRINCIPAL_KEY, Handler

log = structlog.get_logger("fooddispatch.ratelimit")

REDIS_TIMEOUT_S = 0.5  # a batch not answered by then is decided locally
REDIS_RETRY_S = 1.0  # after a failure, decide locally this long before trying Redis again
LOCAL_KEYS_MAX = 100_000  # the local limiter forgets keys whose window has passed beyond this

# Checks a batch of requests in one call. Per request i: KEYS[2i-1] is the principal's key,
# KEYS[2i] the tenant's (the principal's again when there is none); ARGV[5i-4..5i] are the
# principal's emission interval and tolerance (ms), the tenant's, and 1 if the tenant applies.
# Returns three numbers per request: allowed, retry after (ms), used capacity (ms); the tenant's
# when it refused. Server time is used, so callers' clocks do not matter.
_GCRA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local function gcra(key, interval, tolerance)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance - interval
  if now < allow_at then
    return 0, allow_at - now, tat - now
  end
  redis.call('SET', key, new_tat, 'PX', math.ceil(new_tat - now) + 1000)
  return 1, 0, new_tat - now
end
local out = {}
for i = 1, #KEYS / 2 do
  local a = (i - 1) * 5
  local ok, retry, used = gcra(KEYS[2 * i - 1], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]))
  if ok == 1 and ARGV[a + 5] == '1' then
    local t_ok, t_retry, t_used = gcra(KEYS[2 * i], tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]))
    if t_ok == 0 then ok, retry, used = t_ok, t_retry, t_used end
  end
  out[#out + 1] = ok
  out[#out + 1] = retry
  out[#out + 1] = used
end
return out
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


@dataclass(frozen=True, slots=True)
class Check:
    subject: str
    limit: Limit
    tenant: str | None = None
    tenant_limit: Limit | None = None


class LocalLimiter:
    """The same GCRA in memory: the fallback while Redis is unreachable."""

    def __init__(self, now_ms: Callable[[], float]) -> None:
        self._now_ms = now_ms
        self._tat: dict[str, float] = {}

    def check(self, check: Check) -> Decision:
        now = self._now_ms()
        if len(self._tat) > LOCAL_KEYS_MAX:
            self._tat = {k: tat for k, tat in self._tat.items() if tat > now}
        # As the script does: the principal's window first, then the tenant's when the principal may go.
        allowed, retry_ms, used_ms = self._gcra(f"p:{check.subject}", check.limit, now)
        limit = check.limit
        if allowed and check.tenant is not None:
            tenant_limit = check.tenant_limit or check.limit
            t_allowed, t_retry, t_used = self._gcra(f"t:{check.tenant}", tenant_limit, now)
            if not t_allowed:
                allowed, retry_ms, used_ms, limit = False, t_retry, t_used, tenant_limit
        return _decision(allowed, retry_ms, used_ms, limit)

    def _gcra(self, key: str, limit: Limit, now: float) -> tuple[bool, float, float]:
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + limit.interval_ms
        allow_at = new_tat - limit.tolerance_ms - limit.interval_ms
        if now < allow_at:
            return False, allow_at - now, tat - now
        self._tat[key] = new_tat
        return True, 0.0, new_tat - now


class RateLimiter:
    """Concurrent requests' checks go to Redis together, one script call per batch."""

    def __init__(self, redis: aioredis.Redis, prefix: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._prefix = prefix
        self._redis = redis
        self._sharded = is_cluster(redis)
        self._script = redis.register_script(_GCRA)
        self._batches: Coalescer[Check, Decision] = Coalescer(self._check_batch, max_batch=128, max_in_flight=2)
        self._monotonic = monotonic
        self.local = LocalLimiter(lambda: monotonic() * 1000)
        self._redis_down_until: float | None = None  # while set, decide locally (until then, then retry)
        self.local_decisions = 0  # for metrics and tests

    async def check(self, subject: str, limit: Limit, *, tenant: str | None = None,
                    tenant_limit: Limit | None = None) -> Decision:
        """One request's decision: its principal's limit, then its tenant's, if any."""
        check = Check(subject, limit, tenant, tenant_limit)
        down_until = self._redis_down_until
        if down_until is not None and self._monotonic() < down_until:
            self.local_decisions += 1
            return self.local.check(check)
        try:
            decision = await self._batches.submit(check)
        except LIVE_STORE_ERRORS_OR_TIMEOUT as exc:
            if self._redis_down_until is None:
                log.warning("rate_limit.local", reason=f"{type(exc).__name__}: {exc}"[:200],
                            detail="Redis unreachable: limits are counted in this process until it answers")
            self._redis_down_until = self._monotonic() + REDIS_RETRY_S
            self.local_decisions += 1
            return self.local.check(check)
        if self._redis_down_until is not None:
            self._redis_down_until = None
            log.info("rate_limit.redis", detail="Redis answers again: limits are shared across processes")
        return decision

    def keys(self, check: Check) -> tuple[str, str]:
        """The principal's key and the tenant's (the principal's again without a tenant), one hash tag."""
        if check.tenant is None:
            own = f"{self._prefix}rl:{{{check.subject}}}"
            return own, own
        tenant = f"{self._prefix}rl:{{{check.tenant}}}"
        return f"{tenant}:{check.subject}", tenant

    @staticmethod
    def _args(check: Check) -> list[float | str]:
        tenant_limit = check.tenant_limit or check.limit
        return [check.limit.interval_ms, check.limit.tolerance_ms, tenant_limit.interval_ms,
                tenant_limit.tolerance_ms, "1" if check.tenant else "0"]

    async def _check_batch(self, checks: list[Check]) -> list[Decision]:
        async with asyncio.timeout(REDIS_TIMEOUT_S):
            flat = await (self._per_slot(checks) if self._sharded else self._one_call(checks))
        decisions = []
        for i, check in enumerate(checks):
            allowed, retry_ms, used_ms = flat[3 * i: 3 * i + 3]
            limit = check.limit
            if check.tenant is not None and not allowed and check.tenant_limit is not None:
                limit = check.tenant_limit  # the script reports the tenant's numbers when the tenant refused
            decisions.append(_decision(bool(allowed), float(retry_ms), float(used_ms), limit))
        return decisions

    async def _one_call(self, checks: list[Check]) -> list[int]:
        keys: list[str] = []
        args: list[float | str] = []
        for check in checks:
            keys += self.keys(check)
            args += self._args(check)
        return list(await self._script(keys=keys, args=args))

    async def _per_slot(self, checks: list[Check]) -> list[int]:
        """A cluster: one script call per hash tag (a script touches one slot), pipelined, in order."""
        groups: dict[str, list[int]] = {}
        for i, check in enumerate(checks):
            groups.setdefault(check.tenant or check.subject, []).append(i)
        for attempt in (1, 2):
            pipe = self._redis.pipeline(transaction=False)
            for members in groups.values():
                keys: list[str] = []
                args: list[float | str] = []
                for i in members:
                    keys += self.keys(checks[i])
                    args += self._args(checks[i])
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            replies = await pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                await self._redis.script_load(_GCRA)  # a shard restarted: load it on every primary
                continue
            flat = [0] * (3 * len(checks))
            for members, reply in zip(groups.values(), replies, strict=True):
                if isinstance(reply, Exception):
                    raise reply
                for n, i in enumerate(members):
                    flat[3 * i: 3 * i + 3] = reply[3 * n: 3 * n + 3]
            return flat
        raise AssertionError("unreachable")


def _decision(allowed: bool, retry_ms: float, used_ms: float, limit: Limit) -> Decision:
    used_ms = max(used_ms, 0.0)
    capacity_ms = limit.tolerance_ms + limit.interval_ms
    return Decision(
        allowed=allowed,
        limit=limit.burst,
        remaining=max(0, math.floor((capacity_ms - used_ms) / limit.interval_ms)),
        reset_seconds=math.ceil(used_ms / 1000),
        retry_after_seconds=max(1, math.ceil(retry_ms / 1000)) if not allowed else 0,
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
    tenant = f"t:{who.tenant_id}" if who is not None and who.tenant_id else None
    decision = await limiter.check(subject, limits["principal"], tenant=tenant, tenant_limit=limits["tenant"])
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
