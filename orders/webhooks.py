"""Signed webhooks to merchants: endpoints, the delivery log, retries, auto-disable, rotation.

Each order event of a tenant becomes one delivery per subscribed endpoint (enqueued by
the orders event consumer, idempotently: unique (endpoint, event)). The worker claims
due deliveries with `FOR UPDATE SKIP LOCKED` and a lease, POSTs them signed with
`kernel.signing` (`Fooddispatch-Signature: t=...,v1=...`, one `v1` per live secret while
a rotation overlaps), logs every attempt, and retries failures with exponential backoff
and full jitter for 24 h. An endpoint failing `disable_after` times in a row is disabled
and a `webhook_endpoint.disabled` event is written as the notice.

Each event is also kept for the events API (`orders.merchant_events`) with the body its deliveries
send; the body's `id` and the `Fooddispatch-Event-Id` header name it (`GET /v1/events/{id}`). A manual
redelivery (`POST /v1/merchant/webhook_endpoints/{id}/deliveries`) sends that body again.

Receivers must deduplicate by the event `id` (at-least-once) and must not assume order:
events carry their creation time (`created`), and a retry can overtake a later event.

URLs go through `kernel.webhook_client` (the SSRF guard): checked at registration and again at
every delivery, connected to exactly the addresses checked. A URL that can never be allowed
(registered before the guard, or the setting turned off since) disables its endpoint at once.
The attempt log keeps the status code and timing, never the target's answer.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from kernel.clock import Clock
from kernel.ids import new_id
from kernel.netguard import TargetPolicy
from kernel.outbox import Event
from kernel.signing import SIGNATURE_HEADER, sign
from kernel.tasks import TaskMetrics, every
from kernel.webhook_client import WebhookClient
from orders import webhook_store as db
from orders.errors import EndpointDisabled, EventNotFound, WebhookEndpointNotFound
from orders.event_types import WebhookEndpointDisabled


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    base_delay_s: float = 30.0
    max_delay_s: float = 3600.0
    give_up_after_s: float = 86400.0
    disable_after: int = 50  # consecutive failed attempts
    timeout_s: float = 10.0
    lease_s: float = 60.0
    batch: int = 50


def next_delay(attempt: int, policy: WebhookPolicy, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: uniform in [cap/2, cap], cap = base * 2^(attempt-1)."""
    cap = min(policy.max_delay_s, policy.base_delay_s * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(cap / 2, cap)


def live_secrets(row: Any, now: datetime) -> list[str]:
    out = [row["secret"]]
    if row["previous_secret"] and row["previous_expires_at"] and row["previous_expires_at"] > now:
        out.append(row["previous_secret"])
    return out


def payload_for(event: Event) -> bytes:
    """The body merchants receive: Stripe-shaped, so stripe.Webhook.construct_event parses it."""
    return msgspec.json.encode({
        "id": event.id, "object": "event", "type": event.type, "created": int(event.occurred_at.timestamp()),
        "created_at": event.occurred_at, "data": {"object": event.data},
    })


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Webhooks:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, policy: WebhookPolicy | None = None,
                 client: WebhookClient | None = None) -> None:
        self.pool = pool
        self.clock = clock
        self.policy = policy or WebhookPolicy()
        self.client = client or WebhookClient(TargetPolicy(), timeout_s=self.policy.timeout_s)

    async def close(self) -> None:
        await self.client.close()

    # ---- endpoints ----------------------------------------------------------------------------

    async def create_endpoint(self, tenant_id: str, url: str, event_types: list[str]) -> tuple[Any, str]:
        await self.client.check_new_url(url)  # 422 webhook_url_forbidden
        secret = new_secret()
        async with self.pool.acquire() as conn:
            row = await db.insert_endpoint(conn, new_id("whe"), tenant_id, url, event_types, secret,
                                           self.clock.now())
        return row, secret

    async def list_endpoints(self, tenant_id: str | None) -> list[Any]:
        async with self.pool.acquire() as conn:
            return await db.list_endpoints(conn, tenant_id)

    async def _owned(self, conn: asyncpg.Connection, endpoint_id: str, tenant_id: str | None) -> Any:
        row = await db.get_endpoint(conn, endpoint_id)
        if row is None or (tenant_id is not None and row["tenant_id"] != tenant_id):
            raise WebhookEndpointNotFound("no such webhook endpoint", param="endpoint_id")
        return row

    async def get_endpoint(self, endpoint_id: str, tenant_id: str | None) -> Any:
        """The endpoint, when `tenant_id` (None: an operator) may see it; else 404."""
        async with self.pool.acquire() as conn:
            return await self._owned(conn, endpoint_id, tenant_id)

    async def rotate_secret(self, endpoint_id: str, tenant_id: str | None, overlap_s: int) -> tuple[Any, str]:
        """A new secret signs from now on; the old one keeps signing too until the overlap ends."""
        secret = new_secret()
        async with self.pool.acquire() as conn, conn.transaction():
            await self._owned(conn, endpoint_id, tenant_id)
            row = await db.rotate(conn, endpoint_id, secret, self.clock.now() + timedelta(seconds=overlap_s))
        return row, secret

    async def enable(self, endpoint_id: str, tenant_id: str | None) -> Any:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._owned(conn, endpoint_id, tenant_id)
            return await db.set_enabled(conn, endpoint_id, True, None)

    async def delete(self, endpoint_id: str, tenant_id: str | None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._owned(conn, endpoint_id, tenant_id)
            await db.delete_endpoint(conn, endpoint_id, self.clock.now())

    async def deliveries(self, endpoint_id: str, tenant_id: str | None, cursor: str | None,
                         limit: int) -> list[Any]:
        async with self.pool.acquire() as conn:
            await self._owned(conn, endpoint_id, tenant_id)
            return await db.deliveries(conn, endpoint_id, cursor, limit)

    # ---- enqueue (from the event consumer, in its transaction) --------------------------------

    async def enqueue(self, conn: asyncpg.Connection, tenant_id: str, event: Event) -> int:
        """Keep the event for the events API and enqueue its deliveries, with one body for both."""
        body = await db.record_event(conn, event.id, tenant_id, event.type, event.occurred_at, payload_for(event))
        return await db.enqueue(conn, tenant_id, event.id, event.type, body, self.clock.now())

    async def redeliver(self, endpoint_id: str, tenant_id: str | None, event_id: str) -> Any:
        """One more delivery of a kept event of the endpoint's tenant to the endpoint, due now,
        whether or not the endpoint subscribes to its type or had it already (the merchant asks)."""
        async with self.pool.acquire() as conn, conn.transaction():
            endpoint = await self._owned(conn, endpoint_id, tenant_id)
            event = await db.get_event(conn, event_id)
            if event is None or event["tenant_id"] != endpoint["tenant_id"]:
                raise EventNotFound("no such event", param="event_id")
            if not endpoint["enabled"]:
                raise EndpointDisabled("the endpoint is disabled; enable it to redeliver", param="endpoint_id")
            return await db.insert_manual_delivery(conn, endpoint_id, event_id, event["type"],
                                                   bytes(event["payload"]), self.clock.now())

    # ---- the worker ---------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Attempt every due delivery once (concurrently); returns how many were attempted."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            due = await db.claim_due(conn, now, now + timedelta(seconds=self.policy.lease_s), self.policy.batch)
        if not due:
            return 0
        await asyncio.gather(*(self._attempt(row, now) for row in due))
        return len(due)

    async def _attempt(self, row: Any, now: datetime) -> None:
        body = bytes(row["payload"])
        header = sign(body, live_secrets(row, now), timestamp=int(now.timestamp()))
        headers = {
            "Content-Type": "application/json", SIGNATURE_HEADER: header, "Fooddispatch-Event-Id": row["event_id"],
            "Fooddispatch-Event-Type": row["event_type"], "User-Agent": "fooddispatch-webhooks/1",
        }
        started = time.perf_counter()
        sent = await self.client.post(row["url"], body, headers)
        status, ok = sent.status, sent.ok
        error = None if ok else sent.error or f"HTTP {status}"
        ms = int((time.perf_counter() - started) * 1000)
        attempt = row["attempts"]
        give_up = (now - row["created_at"]).total_seconds() >= self.policy.give_up_after_s
        retry_at = None if ok or give_up else now + timedelta(seconds=next_delay(attempt, self.policy))
        async with self.pool.acquire() as conn, conn.transaction():
            failures = await db.record_attempt(
                conn, row["id"], row["endpoint_id"], attempt=attempt, at=now, status_code=status, error=error,
                duration_ms=ms, ok=ok, retry_at=retry_at,
            )
            if sent.refused_url or (not ok and failures >= self.policy.disable_after):
                reason = (f"the URL is not allowed ({sent.refused})" if sent.refused_url
                          else f"{failures} consecutive failed deliveries")
                if await db.disable(conn, row["endpoint_id"], reason):
                    notice = WebhookEndpointDisabled(
                        endpoint_id=row["endpoint_id"], tenant_id=row["tenant_id"], url=row["url"], reason=reason,
                    ).event(row["endpoint_id"])
                    await db.write_notice(conn, notice)

    async def run(self, metrics: TaskMetrics | None = None, interval: float = 0.5) -> None:
        """Deliver what is due every `interval` seconds, at once again after a full batch."""
        await every("orders-webhooks", interval, self.deliver_due, metrics=metrics,
                    busy=lambda n: n >= self.policy.batch)
