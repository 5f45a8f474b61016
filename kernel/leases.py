"""Job leases: a recurring job that must run once across every server process runs where its lease is.

`serve --workers N` and any number of hosts run the same app, and each starts the same recurring jobs
(`kernel.tasks.every`). A job whose work must not be done N times (a sweeper, the relay's settling and
pruning, a partition's upkeep, a daily reconciliation) runs its step through `JobLeases.singular`: the
step runs only in the process that holds the job's lease in PostgreSQL, which it renews at every step.
When the holder stops it lets go (the next process takes the job at its next step); when it dies, the
lease expires `ttl` later and another process takes over. PostgreSQL's clock decides expiry, so the
processes' clocks do not matter; a job that needs PostgreSQL anyway does not stop with Redis.

Jobs that claim their rows `FOR UPDATE SKIP LOCKED` (the outbox relay, webhook deliveries, collections)
are partitioned by those locks instead and run in every process; a region's dispatch rounds have their
own fenced lease in Redis (dispatch.live).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[object]]

MIN_TTL = 10.0  # seconds: a dead holder's jobs move within this (or 3 intervals, if longer)


class JobLeases:
    """The job leases of one process (`holder` names it, unique per app)."""

    def __init__(self, pool: asyncpg.Pool, holder: str) -> None:
        self._pool = pool
        self.holder = holder
        self.held: set[str] = set()

    async def hold(self, job: str, ttl: float) -> bool:
        """Take the job's lease if it is free or expired, renew it if ours; True while we hold it."""
        ours = bool(await self._pool.fetchval(
            """INSERT INTO job_leases (job, holder, expires_at) VALUES ($1, $2, now() + $3::interval)
               ON CONFLICT (job) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                WHERE job_leases.holder = EXCLUDED.holder OR job_leases.expires_at < now()
               RETURNING true""",
            job, self.holder, timedelta(seconds=ttl),
        ))
        if ours != (job in self.held):
            log.info("job %s: %s", job, "this process holds its lease" if ours else "another process holds its lease")
            (self.held.add if ours else self.held.discard)(job)
        return ours

    def singular(self, job: str, interval: float, step: Step, *, ttl: float | None = None) -> Step:
        """`step` for `kernel.tasks.every(job, interval, ...)`, run only while this process holds the lease."""
        lease_ttl = ttl if ttl is not None else max(MIN_TTL, 3 * interval)

        async def leased() -> object:
            if not await self.hold(job, lease_ttl):
                return None
            return await step()

        return leased

    async def release_all(self) -> None:
        """Let go of every lease (on a graceful stop): the other processes take the jobs at once."""
        if self.held:
            await self._pool.execute("DELETE FROM job_leases WHERE holder = $1 AND job = ANY($2::text[])",
                                     self.holder, sorted(self.held))
            self.held.clear()
