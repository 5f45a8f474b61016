"""Outgoing webhooks: deliveries are queued in the transaction that made the change
(`store.enqueue_webhook`) and sent by this worker, signed with `kernel.signing`
(the one scheme orders uses too), retried with exponential backoff.

Sent through `kernel.webhook_client` (the SSRF guard orders uses too): the URL is checked at
registration and again at every delivery, the connection goes to exactly the addresses checked,
redirects are not followed and the target's answer is never read, so `last_error` holds a status
code or an error from a fixed list. A URL that can never be allowed fails its delivery at once."""

from __future__ import annotations

import asyncpg

from kernel.signing import SIGNATURE_HEADER, sign
from kernel.tasks import TaskMetrics, every
from kernel.webhook_client import WebhookClient
from payments import store

MAX_ATTEMPTS = 8


class WebhookSender:
    def __init__(self, pool: asyncpg.Pool, client: WebhookClient, *, base_delay: float = 5.0) -> None:
        self.pool = pool
        self.client = client
        self.base_delay = base_delay

    async def deliver_due(self, limit: int = 50) -> int:
        """Send what is due; returns how many were delivered."""
        delivered = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for row in await store.claim_due_deliveries(conn, limit):
                body = row["payload"].encode()
                headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, [row["secret"]])}
                sent = await self.client.post(row["url"], body, headers)
                error = None if sent.ok else sent.error or f"HTTP {sent.status}"
                attempts = row["attempts"] + 1
                final = error is None or sent.refused_url or attempts >= MAX_ATTEMPTS
                retry = None if final else self.base_delay * 2 ** (attempts - 1)
                await store.finish_delivery(conn, row["id"], delivered=error is None, error=error,
                                            retry_in_seconds=retry)
                delivered += error is None
        return delivered

    async def run(self, metrics: TaskMetrics | None = None, interval: float = 1.0) -> None:
        """Deliver what is due every `interval` seconds, until cancelled."""
        await every("payments-webhooks", interval, self.deliver_due, metrics=metrics)
