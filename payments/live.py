"""Fraud signals in Redis: sliding windows (sorted sets scored by time) per card
fingerprint, customer, device and IP; small declines for card testing; distinct
cards per customer; accounts sharing a promo code through one card or device.

One round trip per screening: a Lua script records the attempt in every window and
returns the counts (a pipeline of the same ~30 commands cost the server more Python
to encode and parse than the rest of the confirmation). The script touches keys of
several cards, customers and devices, so on a Redis Cluster they would have to share
a hash tag (or the screen go back to a pipeline): today's deployments use one Redis.

Redis down or slow (no answer within `REDIS_TIMEOUT_S`): the screen fails open on its Redis
part. The attempt is scored on what needs no Redis (the amount, a first order) and the
decision carries the reason `velocity_unchecked`, so the payments taken during the outage
can be found and reviewed; a decline is not counted. Refusing every payment instead would
turn an outage of rebuildable counters into an outage of checkout."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from kernel.clock import Clock
from payments.model import FraudAssessment, FraudRules, FraudSignals, assess

log = structlog.get_logger("payments")

DAY = 86_400
REDIS_TIMEOUT_S = 0.5
UNCHECKED = "velocity_unchecked"
PROMO_TTL = 30 * DAY

# KEYS: the attempt windows (this attempt added), the decline windows (counted only), the customer's
# cards of the day (this card added), the promo sets. ARGV: now, window, day, attempt id, card
# fingerprint, customer id, how many attempt, decline and promo keys, promo ttl. Returns the counts
# in KEYS order. Each window is trimmed to its span and expires after it, as the pipeline did.
_SCREEN = """
local now, window, day = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local attempt, card, customer = ARGV[4], ARGV[5], ARGV[6]
local n_attempts, n_declines, n_promos = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local promo_ttl = tonumber(ARGV[10])
local out = {}
local function count(key, member, span)
  if member then redis.call('ZADD', key, now, member) end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  out[#out + 1] = redis.call('ZCARD', key)
  redis.call('EXPIRE', key, span)
end
local k = 0
for _ = 1, n_attempts do k = k + 1; count(KEYS[k], attempt, window) end
for _ = 1, n_declines do k = k + 1; count(KEYS[k], false, window) end
k = k + 1; count(KEYS[k], card, day)
for _ = 1, n_promos do
  k = k + 1
  redis.call('SADD', KEYS[k], customer)
  out[#out + 1] = redis.call('SCARD', KEYS[k])
  redis.call('EXPIRE', KEYS[k], promo_ttl)
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

    def key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def screen(self, *, attempt_id: str, customer_id: str, fingerprint: str, amount: int, ip: str | None,
                     device_id: str | None, first_order: bool, promo_code: str | None) -> FraudAssessment:
        """Record this confirmation attempt in every window and score it (one round trip)."""
        attempts = [(name, value) for name, value in
                    (("card", fingerprint), ("customer", customer_id), ("device", device_id), ("ip", ip)) if value]
        declines = [(name, value) for name, value in (("card", fingerprint), ("customer", customer_id), ("ip", ip))
                    if value]
        promos = [self.key("promo", promo_code, name, value) for name, value in
                  (("card", fingerprint), ("device", device_id)) if promo_code and value]
        keys = ([self.key("attempts", name, value) for name, value in attempts]  # type: ignore[arg-type]
                + [self.key("declines", name, value) for name, value in declines]  # type: ignore[arg-type]
                + [self.key("cards", customer_id)] + promos)
        args: list[str | int] = [repr(self._clock.now().timestamp()), self.rules.window_seconds, DAY, attempt_id,
                                 fingerprint, customer_id, len(attempts), len(declines), len(promos), PROMO_TTL]
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                counts = [int(c) for c in await self._script(keys=keys, args=args)]
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("fraud.screen_degraded", attempt=attempt_id, error=f"{type(exc).__name__}: {exc}"[:200])
            unchecked = assess(FraudSignals(amount=amount, first_order=first_order), self.rules)
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
        )
        return assess(signals, self.rules)

    async def record_decline(self, *, attempt_id: str, customer_id: str, fingerprint: str | None, ip: str | None,
                             amount: int) -> None:
        """Card testing looks like many small declines: count those."""
        if amount > self.rules.card_testing_small_amount:
            return
        now = self._clock.now().timestamp()
        pipe = self._redis.pipeline(transaction=False)
        for name, value in (("card", fingerprint), ("customer", customer_id), ("ip", ip)):
            if value:
                k = self.key("declines", name, value)
                pipe.zadd(k, {attempt_id: now})
                pipe.expire(k, self.rules.window_seconds)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("fraud.decline_not_counted", attempt=attempt_id, error=f"{type(exc).__name__}: {exc}"[:200])
