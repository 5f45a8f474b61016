"""This process's liveness, as every other process sees it through PostgreSQL.

Each app process draws a random 63-bit instance id and, on a connection of its own, holds
the session-level advisory lock on that id for its whole life. PostgreSQL frees a session's
locks the moment the session ends: when the process is killed or crashes (the kernel closes
its sockets), when the server restarts, or when the session is terminated. So "nobody holds
the lock on id N" means "the process that was N is gone, and every transaction it had open
died with it". Another session tests that with `pg_try_advisory_xact_lock(N)` (see
`fooddispatch.idempotency`), which succeeds only when no live session holds N, and lets go
at the end of its own transaction.

The holder reconnects when its connection is lost (a PostgreSQL restart, a terminated
backend): asyncpg tells it at once through a termination listener, and a periodic probe
catches a connection that hangs without closing. While it is not holding the lock, `held`
is clear and callers that rely on it wait (`wait_held`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

import asyncpg

log = logging.getLogger(__name__)

PROBE_EVERY = 5.0  # seconds between checks that the holding connection still answers
PROBE_TIMEOUT = 5.0
RETRY_MIN, RETRY_MAX = 0.05, 1.0  # reconnect back-off bounds, seconds

_LOCK = "SELECT pg_try_advisory_lock($1::bigint)"
# Ends the session that still holds this process's lock after this process lost sight of it
# (a half-open connection the server has not noticed is dead): without this, the lock, and so
# this process's ability to make claims, would wait for the server's TCP keepalive. A bigint
# advisory key shows in pg_locks as its high and low 32 bits with objsubid 1.
_TAKE_BACK = """
SELECT count(pg_terminate_backend(pid)) FROM pg_locks
 WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND pid <> pg_backend_pid()
   AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid
"""


# Takes (and, at the end of its transaction, lets go of) each id's lock that no session holds.
_GONE = "SELECT id FROM unnest($1::bigint[]) AS id WHERE pg_try_advisory_xact_lock(id)"


async def gone_instances(pool: asyncpg.Pool, instance_ids: list[int]) -> set[int]:
    """Those of `instance_ids` whose process is gone (no live session holds their lock)."""
    if not instance_ids:
        return set()
    async with pool.acquire() as conn, conn.transaction():
        return {row["id"] for row in await conn.fetch(_GONE, sorted(set(instance_ids)))}


def new_instance_id() -> int:
    """A positive bigint: drawn at random, so two processes' ids collide with odds of 2^-63;
    a collision is still caught, because the second cannot take a lock the first holds."""
    return secrets.randbits(63) or 1


class ProcessLiveness:
    def __init__(self, dsn: str, *, instance_id: int | None = None, probe_every: float = PROBE_EVERY) -> None:
        self.dsn = dsn
        self.instance_id = instance_id if instance_id is not None else new_instance_id()
        self.held = asyncio.Event()
        self.reconnects = 0  # times the lock was taken again after a lost connection (metrics, tests)
        self._probe_every = probe_every
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take the lock before the app serves: a claim made by this process must look alive from
        its first request on. Fails (like the pool does) when PostgreSQL is not reachable."""
        for _ in range(3):
            try:
                await self._acquire()
                break
            except LockBusy:  # drawn by another live process: this one has made no claim yet, draw again
                self.instance_id = new_instance_id()
        else:
            raise RuntimeError("no free liveness lock after three draws")
        self._task = asyncio.create_task(self._hold(), name=f"liveness-{self.instance_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop()

    async def wait_held(self, within: float) -> bool:
        if self.held.is_set():
            return True
        try:
            async with asyncio.timeout(within):
                await self.held.wait()
        except TimeoutError:
            return False
        return True

    async def _acquire(self, *, take_back: bool = False) -> None:
        conn = await asyncpg.connect(self.dsn, timeout=PROBE_TIMEOUT,
                                     server_settings={"application_name": "fooddispatch-liveness"})
        try:
            if take_back:
                with contextlib.suppress(asyncpg.InsufficientPrivilegeError):  # then the retries wait it out
                    await conn.fetchval(_TAKE_BACK, self.instance_id, timeout=PROBE_TIMEOUT)
            if not await conn.fetchval(_LOCK, self.instance_id, timeout=PROBE_TIMEOUT):
                # A session of ours that the server has not noticed is gone yet (a half-open
                # connection) still holds it; or, at odds of 2^-63, another process drew this id.
                raise LockBusy(self.instance_id)
        except BaseException:
            await _close(conn)
            raise
        self._lost.clear()
        conn.add_termination_listener(self._on_lost)
        self._conn = conn
        self.held.set()

    def _on_lost(self, conn: asyncpg.Connection) -> None:
        if conn is self._conn:  # not a connection this holder already let go of
            self.held.clear()
            self._lost.set()

    async def _drop(self) -> None:
        self.held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close(conn)

    async def _hold(self) -> None:
        """Forever: watch the holding connection; when it is gone, take the lock again. Any failure
        is retried: a process that stopped trying would look dead for the rest of its life."""
        backoff = RETRY_MIN
        while True:
            if self._conn is not None:
                await self._watch()
                await self._drop()
            try:
                await self._acquire(take_back=True)
            except Exception as exc:
                log.warning("liveness lock %s not held (%r); retrying in %.2f s", self.instance_id, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX)
                continue
            backoff = RETRY_MIN
            self.reconnects += 1
            log.info("liveness lock %s held again", self.instance_id)

    async def _watch(self) -> None:
        """Returns when the holding connection is lost or stops answering."""
        conn = self._conn
        assert conn is not None
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._probe_every):
                    await self._lost.wait()
                return
            try:
                await conn.fetchval("SELECT 1", timeout=PROBE_TIMEOUT)
            except Exception as exc:
                log.warning("liveness connection %s lost (%r)", self.instance_id, exc)
                return


class LockBusy(Exception):
    def __init__(self, instance_id: int) -> None:
        super().__init__(f"advisory lock {instance_id} is held by another session")


async def _close(conn: asyncpg.Connection) -> None:
    try:
        async with asyncio.timeout(1.0):
            await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()
