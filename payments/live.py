"""Fraud signals in Redis: sliding windows (sorted sets scored by time) per card
fingerprint, customer, device and IP; small declines for card testing; distinct
cards per customer; accounts sharing a promo code through one card or device.

One round trip per screening: a Lua script records the attempt in every window and
returns the counts (a pipeline of the same ~30 commands cost the server more Python
to encode and parse than the rest of the confirmation). Every key is hash-tagged by the
one subject it counts (`{card:<fingerprint>}`, `{customer:<id>}`, `{device:<id>}`,
`{ip:<address>}`, `{promo:<code>}`), and the script treats each key on its own: on one
server it is one call over every key; on a Redis Cluster it is one call per subject
(its keys share a slot), pipelined, still one round trip per shard.

Redis down or slow (no answer within `REDIS_TIMEOUT_S`): the screen fails open on its Redis
part. The attempt is scored on what needs no Redis (the amount, a first order) and the
decision carries the reason `velocity_unchecked`, so the payments taken during the outage
can be found and reviewed; a decline is not counted. Refusing every payment instead would
turn an outage of rebuildable counters into an outage of checkout."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
import structlog
from redis.exceptions import NoScriptError

from kernel.clock import Clock
from kernel.fanout import LIVE_STORE_ERRORS_OR_TIMEOUT, is_cluster
from payments.model import FraudAssessment, FraudRules, FraudSignals, assess

log = structlog.get_logger("payments")

DAY = 86_400
REDIS_TIMEOUT_S = 0.5
UNCHECKED = "velocity_unchecked"
PROMO_TTL = 30 * DAY

# KEYS: the keys to count. ARGV: now, window, day, promo ttl, then per key an operation and a member:
# `a` adds the member to a window (attempts), `w` only counts a window (declines), `d` adds the member
# to a day-long window (a customer's cards), `p` adds it to a set (accounts of a promo through a card or
# device). Returns one count per key, in KEYS order. Each window is trimmed to its span and expires
# after it. No key depends on another, so the keys may be split over calls (one per slot on a cluster).
_SCREEN = """
local now, window, day, promo_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for k = 1, #KEYS do
  local op, member, key = ARGV[3 + 2 * k], ARGV[4 + 2 * k], KEYS[k]
  if op == 'p' then
    redis.call('SADD', key, member)
    out[k] = redis.call('SCARD', key)
    redis.call('EXPIRE', key, promo_ttl)
  else
    local span = window
    if op == 'd' then span = day end
    if op ~= 'w' then redis.call('ZADD', key, now, member) end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
    out[k] = redis.call('ZCARD', key)
    redis.call('EXPIRE', key, span)
  end
end
return out
"""


class FraudScreen:
    def __init__(self, redis: aioredis.Redis, prefix: str, clock: Clock, rules: FraudRules | None = None) -> None:
        self._redis = redis
        self._prefix = f"{prefix}pay:fraud:"
        self._clock = clock
        self.rules = rules or FraudRules()
        self._script = redis.register_script(_SCREEN)
        self._sharded = is_cluster(redis)

    def key(self, subject: str, value: str, *rest: str) -> str:
        """`<prefix>pay:fraud:{<subject>:<value>}:<rest>`: the subject is the hash tag."""
        return self._prefix + ":".join((f"{{{subject}:{value}}}", *rest))

    async def screen(self, *, attempt_id: str, customer_id: str, fingerprint: str, amount: int, ip: str | None,
                     device_id: str | None, first_order: bool, promo_code: str | None,
                     currency: str | None = None) -> FraudAssessment:
        """Record this confirmation attempt in every window and score it (one round trip)."""
        attempts = [(name, value) for name, value in
                    (("card", fingerprint), ("customer", customer_id), ("device", device_id), ("ip", ip)) if value]
        declines = [(name, value) for name, value in (("card", fingerprint), ("customer", customer_id), ("ip", ip))
                    if value]
        promos = [(self.key("promo", promo_code, name, value), customer_id) for name, value in
                  (("card", fingerprint), ("device", device_id)) if promo_code and value]
        ops: list[tuple[str, str, str]] = (
            [(self.key(name, value, "attempts"), "a", attempt_id) for name, value in attempts]  # type: ignore[arg-type]
            + [(self.key(name, value, "declines"), "w", "") for name, value in declines]  # type: ignore[arg-type]
            + [(self.key("customer", customer_id, "cards"), "d", fingerprint)]
            + [(key, "p", member) for key, member in promos])
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                counts = await self._count(ops)
        except LIVE_STORE_ERRORS_OR_TIMEOUT as exc:
            log.warning("fraud.screen_degraded", attempt=attempt_id, error=f"{type(exc).__name__}: {exc}"[:200])
            unchecked = assess(FraudSignals(amount=amount, first_order=first_order, currency=currency), self.rules)
            return FraudAssessment(unchecked.score, unchecked.level, (*unchecked.reasons, UNCHECKED))
        seen_attempts = dict(zip((name for name, _ in attempts), counts, strict=False))
        seen_declines = dict(zip((name for name, _ in declines), counts[len(attempts):], strict=False))
        signals = FraudSignals(
            amount=amount,
            card_attempts=seen_attempts.get("card", 0),
            customer_attempts=seen_attempts.get("customer", 0),
            device_attempts=seen_attempts.get("device", 0),
            ip_attempts=seen_attempts.get("ip", 0),
            small_declines=max(seen_declines.values(), default=0),
            distinct_cards=counts[len(attempts) + len(declines)],
            first_order=first_order,
            promo_accounts=max(counts[len(attempts) + len(declines) + 1:], default=0),
            currency=currency,
        )
        return assess(signals, self.rules)

    def _head(self) -> list[str | int]:
        return [repr(self._clock.now().timestamp()), self.rules.window_seconds, DAY, PROMO_TTL]

    async def _count(self, ops: list[tuple[str, str, str]]) -> list[int]:
        """Run the script over `ops` (key, operation, member); the counts in the same order."""
        if not self._sharded:
            args = self._head()
            for _key, op, member in ops:
                args += (op, member)
            return [int(c) for c in await self._script(keys=[k for k, _, _ in ops], args=args)]
        groups: dict[str, list[int]] = {}
        for i, (key, _op, _member) in enumerate(ops):
            groups.setdefault(key[key.index("{"):key.index("}") + 1], []).append(i)
        for attempt in (1, 2):
            pipe = self._redis.pipeline(transaction=False)
            for members in groups.values():
                args = self._head()
                for i in members:
                    args += (ops[i][1], ops[i][2])
                pipe.evalsha(self._script.sha, len(members), *(ops[i][0] for i in members), *args)
            replies = await pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                await self._redis.script_load(_SCREEN)  # a shard restarted: load it on every primary
                continue
            counts = [0] * len(ops)
            for members, reply in zip(groups.values(), replies, strict=True):
                if isinstance(reply, Exception):
                    raise reply
                for n, i in enumerate(members):
                    counts[i] = int(reply[n])
            return counts
        raise AssertionError("unreachable")

    async def record_decline(self, *, attempt_id: str, customer_id: str, fingerprint: str | None, ip: str | None,
                             amount: int, currency: str | None = None) -> None:
        """Card testing looks like many small declines: count those (small in `currency`)."""
        if amount > self.rules.amounts_for(currency)[0]:
            return
        now = self._clock.now().timestamp()
        pipe = self._redis.pipeline(transaction=False)
        for name, value in (("card", fingerprint), ("customer", customer_id), ("ip", ip)):
            if value:
                k = self.key(name, value, "declines")
                pipe.zadd(k, {attempt_id: now})
                pipe.expire(k, self.rules.window_seconds)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                await pipe.execute()
        except LIVE_STORE_ERRORS_OR_TIMEOUT as exc:
            log.warning("fraud.decline_not_counted", attempt=attempt_id, error=f"{type(exc).__name__}: {exc}"[:200])
