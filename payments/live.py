"""Fraud signals in Redis: sliding windows (sorted sets scored by time) per card
fingerprint, customer, device and IP; small declines for card testing; distinct
cards per customer; accounts sharing a promo code through one card or device.
One pipelined round trip per screening."""

from __future__ import annotations

import redis.asyncio as aioredis

from kernel.clock import Clock
from payments.model import FraudAssessment, FraudRules, FraudSignals, assess

DAY = 86_400


class FraudScreen:
    def __init__(self, redis: aioredis.Redis, prefix: str, clock: Clock, rules: FraudRules | None = None) -> None:
        self._redis = redis
        self._prefix = f"{prefix}pay:fraud:"
        self._clock = clock
        self.rules = rules or FraudRules()

    def key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def screen(self, *, attempt_id: str, customer_id: str, fingerprint: str, amount: int, ip: str | None,
                     device_id: str | None, first_order: bool, promo_code: str | None) -> FraudAssessment:
        """Record this confirmation attempt in every window and score it."""
        now = self._clock.now().timestamp()
        window = self.rules.window_seconds
        pipe = self._redis.pipeline(transaction=False)
        counted: list[str] = []

        def window_count(key: str, member: str, span: int, add: bool = True) -> None:
            if add:
                pipe.zadd(key, {member: now})
            pipe.zremrangebyscore(key, "-inf", now - span)
            pipe.zcard(key)
            pipe.expire(key, span)
            counted.append(key)

        dims = [("card", fingerprint), ("customer", customer_id), ("device", device_id), ("ip", ip)]
        for name, value in dims:
            if value:
                window_count(self.key("attempts", name, value), attempt_id, window)
        for name, value in (("card", fingerprint), ("customer", customer_id), ("ip", ip)):
            if value:
                window_count(self.key("declines", name, value), attempt_id, window, add=False)
        window_count(self.key("cards", customer_id), fingerprint, DAY)
        promo_keys = []
        if promo_code:
            for name, value in (("card", fingerprint), ("device", device_id)):
                if value:
                    k = self.key("promo", promo_code, name, value)
                    pipe.sadd(k, customer_id)
                    pipe.scard(k)
                    pipe.expire(k, 30 * DAY)
                    promo_keys.append(k)
        results = await pipe.execute()
        counts: list[int] = []
        i = 0
        for key in counted:
            add = key.startswith(self.key("attempts")) or key.startswith(self.key("cards"))
            i += 1 if add else 0
            i += 1  # zremrangebyscore
            counts.append(int(results[i]))
            i += 2  # zcard, expire
        promo_counts = []
        for _ in promo_keys:
            promo_counts.append(int(results[i + 1]))
            i += 3
        by_key = dict(zip(counted, counts, strict=True))

        def get(*parts: str) -> int:
            return by_key.get(self.key(*parts), 0)

        signals = FraudSignals(
            amount=amount,
            card_attempts=get("attempts", "card", fingerprint),
            customer_attempts=get("attempts", "customer", customer_id),
            device_attempts=get("attempts", "device", device_id) if device_id else 0,
            ip_attempts=get("attempts", "ip", ip) if ip else 0,
            small_declines=max(get("declines", "card", fingerprint), get("declines", "customer", customer_id),
                               get("declines", "ip", ip) if ip else 0),
            distinct_cards=get("cards", customer_id),
            first_order=first_order,
            promo_accounts=max(promo_counts, default=0),
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
        await pipe.execute()
