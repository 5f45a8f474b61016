"""The PostgreSQL pool, with every wait bounded.

A stalled server (SIGSTOP, a frozen VM, a lost network path) answers nothing and closes
nothing, so without bounds a request waits for as long as the stall lasts. Three bounds:

- a statement: the server's `statement_timeout` on every pooled connection, and asyncpg's
  `command_timeout` half a second later for a server that stopped answering (asyncpg then
  sends a cancel request, which is bounded by the same time, and terminates the connection
  if the cancel does not go through);
- a connection: `acquire` waits at most `db_acquire_timeout_seconds` (and connecting at most
  as long), and `release` at most `RELEASE_TIMEOUT`: a connection whose reset (the ROLLBACK of
  `release_connection`) or pending cancel does not finish by then is terminated, so a stall
  never wedges the pool; new connections replace the terminated ones after the stall;
- a request: its waits for connections add up to at most `db_request_deadline_seconds`
  (`request_deadline`), so a request that needs many connections one after another cannot
  add their waits up. Only waiting for PostgreSQL counts: a request that spends its time
  elsewhere (a payment processor's answer) still gets the connection it needs to record it.

Long jobs that need more than the statement bound raise it for their own transaction
(`SET LOCAL statement_timeout` and a `timeout=` on the call). Migrations use their own
connection, not this pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

import asyncpg
import structlog

from fooddispatch.config import Settings

log = structlog.get_logger("fooddispatch.database")

RELEASE_TIMEOUT = 1.0  # seconds for a connection's reset on release before it is terminated
CLIENT_MARGIN = 0.5  # the client's command timeout exceeds the server's statement timeout by this

class _Budget:
    """What is left of a request's time for waiting on connections, and the task it belongs to:
    tasks the request starts copy the context but not the budget (a batch it joined serves
    other requests too)."""

    __slots__ = ("left", "owner")

    def __init__(self, owner: asyncio.Task[Any] | None, left: float) -> None:
        self.owner, self.left = owner, left


_BUDGET: ContextVar[_Budget | None] = ContextVar("db_wait_budget", default=None)


@contextlib.contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Within the block, waits for pooled connections add up to at most `seconds`."""
    token = _BUDGET.set(_Budget(asyncio.current_task(), seconds))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _budget() -> _Budget | None:
    found = _BUDGET.get()
    return found if found is not None and found.owner is asyncio.current_task() else None


class _BudgetedAcquire:
    """asyncpg's acquire context, charging its wait to the request's budget."""

    __slots__ = ("_budget", "_inner")

    def __init__(self, inner: Any, budget: _Budget) -> None:
        self._inner, self._budget = inner, budget

    async def _charged(self, acquiring: Awaitable[Any]) -> Any:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            return await acquiring
        finally:
            self._budget.left -= loop.time() - started

    async def __aenter__(self) -> Any:
        return await self._charged(self._inner.__aenter__())

    async def __aexit__(self, *exc: object) -> None:
        await self._inner.__aexit__(*exc)

    def __await__(self) -> Any:
        return self._charged(self._inner).__await__()


class BoundedPool(asyncpg.Pool):
    """An asyncpg pool whose acquire and release are bounded by default (see the module doc)."""

    def __init__(self, *args: Any, acquire_timeout: float, release_timeout: float = RELEASE_TIMEOUT,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout
        self.release_timeout = release_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        wait = self.acquire_timeout if timeout is None else timeout
        budget = _budget()
        if budget is None:
            return super().acquire(timeout=wait)
        # A spent budget still goes through asyncpg, so the failure is the pool's own
        # TimeoutError (reported as database_unavailable) and a free connection is not refused.
        return _BudgetedAcquire(super().acquire(timeout=max(min(wait, budget.left), 0.001)), budget)

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg's signature)
        try:
            await super().release(connection, timeout=self.release_timeout if timeout is None else timeout)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # asyncpg terminated the connection (its slot goes back to the pool); the work done on
            # it has already succeeded or failed on its own, so its caller's outcome stands.
            log.debug("db.release_failed", error=repr(exc))


def pool_options(settings: Settings) -> dict[str, Any]:
    """The bounds of `BoundedPool`, from the settings."""
    statement_ms = int(settings.db_statement_timeout_seconds * 1000)
    return {
        "command_timeout": settings.db_statement_timeout_seconds + CLIENT_MARGIN,
        "timeout": settings.db_acquire_timeout_seconds,  # connecting, within an acquire
        "server_settings": {"application_name": "fooddispatch", "statement_timeout": str(statement_ms)},
        "acquire_timeout": settings.db_acquire_timeout_seconds,
    }


async def create_pool(settings: Settings, *, reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                      ) -> BoundedPool:
    """The app's pool: `settings.db_pool_min`..`db_pool_max` connections, every wait bounded."""
    pool = BoundedPool(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max, max_queries=50_000,
        max_inactive_connection_lifetime=300.0, reset=reset, loop=None, connection_class=asyncpg.Connection,
        record_class=asyncpg.Record, **pool_options(settings),
    )
    await pool
    return pool


async def release_connection(conn: asyncpg.Connection) -> None:
    """What the pool does when a connection comes back. asyncpg's default runs
    `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every release: a
    round trip each time (four per checkout). No pooled connection here keeps session
    state (no LISTEN, no session settings or advisory locks: migrations use their own
    connection), so only an abandoned transaction needs undoing."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


LIVENESS_CONNECTIONS = 1  # fooddispatch.liveness holds one connection of its own for the process's life


def connections_per_process(settings: Settings) -> int:
    """PostgreSQL connections one server process may open at most: its pool, the payments test
    processor's own small pool and the liveness lock's connection (README: the connection budget)."""
    from fooddispatch.components.payments import PROCESSOR_POOL_SIZE

    return settings.db_pool_max + PROCESSOR_POOL_SIZE + LIVENESS_CONNECTIONS
