"""Outgoing webhooks: deliveries are queued in the transaction that made the change
(`store.enqueue_webhook`) and sent by this worker, signed with `kernel.signing`
(the one scheme orders uses too), retried with exponential backoff."""

from __future__ import annotations

import aiohttp
import asyncpg

from kernel.signing import SIGNATURE_HEADER, sign
from kernel.tasks import TaskMetrics, every
from payments import store

MAX_ATTEMPTS = 8


class WebhookSender:
    def __init__(self, pool: asyncpg.Pool, *, timeout: float = 5.0, base_delay: float = 5.0) -> None:
        self.pool = pool
        self.timeout = timeout
        self.base_delay = base_delay

    async def deliver_due(self, session: aiohttp.ClientSession, limit: int = 50) -> int:
        """Send what is due; returns how many were delivered."""
        delivered = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for row in await store.claim_due_deliveries(conn, limit):
                body = row["payload"].encode()
                headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, [row["secret"]])}
                error: str | None = None
                try:
                    async with session.post(row["url"], data=body, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                        if resp.status >= 300:
                            error = f"HTTP {resp.status}"
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    error = type(exc).__name__
                attempts = row["attempts"] + 1
                retry = None if error is None or attempts >= MAX_ATTEMPTS else self.base_delay * 2 ** (attempts - 1)
                await store.finish_delivery(conn, row["id"], delivered=error is None, error=error,
                                            retry_in_seconds=retry)
                delivered += error is None
        return delivered

    async def run(self, metrics: TaskMetrics | None = None, interval: float = 1.0) -> None:
        """Deliver what is due every `interval` seconds, until cancelled."""
        async with aiohttp.ClientSession() as session:
            await every("payments-webhooks", interval, lambda: self.deliver_due(session), metrics=metrics)
