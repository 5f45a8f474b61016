"""The one place errors become responses: `{"error": {"code", "message", "param"}}`.

Domain errors carry their own code and status. aiohttp's own HTTP errors (no
route, wrong method, body too large) are given stable codes. A dependency that
is down or stalled (PostgreSQL, Redis) is a 503 with `Retry-After` and the code
`database_unavailable` or `redis_unavailable`, counted in `/metrics` and logged
once per burst. On a websocket that is already open, the same failures close the
socket with 1013 (try again later) and a reason instead. Anything else is a 500
`internal_error` with the request id; the traceback goes to the log only.
"""

from __future__ import annotations

import contextlib
import time
import traceback

import asyncpg
import redis.exceptions as redis_errors
import structlog
from aiohttp import web

from fooddispatch.database import request_deadline
from fooddispatch.metrics import Metrics
from kernel.errors import DomainError
from kernel.http import PRINCIPAL_KEY, REQUEST_ID_KEY, Handler, encode
from kernel.ids import new_id

log = structlog.get_logger("fooddispatch.http")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


DATABASE = "database"
REDIS = "redis"
# Per dependency: the error code, how long a client should wait before retrying, the message.
UNAVAILABLE = {
    DATABASE: ("database_unavailable", 5, "the database is unavailable; retry after the time in Retry-After"),
    REDIS: ("redis_unavailable", 2, "the live-state store is unavailable; retry after the time in Retry-After"),
}
TRY_AGAIN_LATER = 1013  # websocket close code (IANA registry): a dependency is down, reconnect later
INTERNAL_ERROR = 1011
_WEBSOCKET = web.RequestKey("websocket", web.WebSocketResponse)

# PostgreSQL error classes that mean "not now" rather than "wrong": connection exceptions (08),
# insufficient resources (53: too many connections, out of memory, disk full) and operator
# intervention (57: shutting down, starting up, a statement cancelled by statement_timeout).
_PG_UNAVAILABLE = (asyncpg.PostgresConnectionError, asyncpg.exceptions.InsufficientResourcesError,
                   asyncpg.exceptions.OperatorInterventionError)
_REDIS_UNAVAILABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.BusyLoadingError,
                      redis_errors.ReadOnlyError, redis_errors.MasterDownError, redis_errors.TryAgainError,
                      redis_errors.ClusterDownError, redis_errors.OutOfMemoryError,
                      # A cluster whose shard for the slot is down or unknown (livestore.py); the last
                      # two are not RedisErrors.
                      redis_errors.ClusterError, redis_errors.SlotNotCoveredError,
                      redis_errors.RedisClusterUnreachableError)


def unavailable_dependency(exc: BaseException) -> str | None:
    """`DATABASE` or `REDIS` when `exc` means that dependency is down or stalled, else None."""
    if isinstance(exc, _PG_UNAVAILABLE):
        return DATABASE
    if isinstance(exc, asyncpg.InterfaceError):
        # "connection is closed", "pool is closing": the connection went away under us. Other
        # interface errors (an operation in progress, a released connection) are our bugs.
        message = str(exc)
        return DATABASE if "closed" in message or "closing" in message else None
    if isinstance(exc, _REDIS_UNAVAILABLE):
        return REDIS
    if isinstance(exc, redis_errors.RedisError):
        return None
    if isinstance(exc, (TimeoutError, OSError)):
        # asyncpg's statement and acquire timeouts, a refused or reset socket: the driver whose
        # code raised it names the dependency. A timeout of our own is not an outage.
        return _raised_by(exc)
    return None


def _raised_by(exc: BaseException) -> str | None:
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        module = frame.f_globals.get("__name__", "")
        if module.startswith("asyncpg"):
            return DATABASE
        if module.startswith("redis"):
            return REDIS
    return None


class _BurstLog:
    """An outage fails many requests at once: log the first failure of a burst (with the count
    of those left unlogged since the previous line), then at most one line per `every` seconds."""

    def __init__(self, every: float = 30.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def failed(self, dependency: str, exc: BaseException, route: str) -> None:
        now = time.monotonic()
        last = self._last.get(dependency)
        if last is not None and now - last < self.every:
            self._unlogged[dependency] = self._unlogged.get(dependency, 0) + 1
            return
        self._last[dependency] = now
        log.warning("dependency.unavailable", dependency=dependency, error=f"{type(exc).__name__}: {exc}"[:300],
                    route=route, failures_not_logged=self._unlogged.pop(dependency, 0))


async def remember_websocket(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: note an opened websocket, so a failure after the handshake closes it cleanly."""
    if isinstance(response, web.WebSocketResponse):
        request[_WEBSOCKET] = response


def unavailable_response(dependency: str) -> web.Response:
    code, retry_after, message = UNAVAILABLE[dependency]
    return error_response(503, code, message, headers={"Retry-After": str(retry_after)})


def error_response(status: int, code: str, message: str, param: str | None = None,
                   headers: dict[str, str] | None = None, **extra: object) -> web.Response:
    body = {"error": {"code": code, "message": message, "param": param, **extra}}
    return web.Response(body=encode(body), status=status, content_type="application/json", headers=headers)


class _Failures:
    """What an unexpected exception becomes: a 503 (or a websocket closed with 1013) when a dependency is
    down, counted and logged once per burst; else a 500 with the request id, the traceback in the log."""

    def __init__(self, metrics: Metrics) -> None:
        self.outages = metrics.counter("dependency_unavailable",
                                       "Requests failed because a dependency was down or stalled", ("dependency",))
        self.bursts = _BurstLog()

    async def answer(self, request: web.Request, exc: Exception, route: str, request_id: str) -> web.StreamResponse:
        dependency = unavailable_dependency(exc)
        if dependency is not None:
            self.outages.labels(dependency).inc()
            self.bursts.failed(dependency, exc, route)
        else:
            log.exception("unhandled error", path=request.path, method=request.method)
        ws = request.get(_WEBSOCKET)
        if ws is not None:  # the handshake is done: no HTTP answer is possible any more
            if not ws.closed:
                reason = f"{UNAVAILABLE[dependency][0]}; reconnect later" if dependency else "internal error"
                await ws.close(code=TRY_AGAIN_LATER if dependency else INTERNAL_ERROR, message=reason.encode())
            return ws
        if dependency is not None:
            return unavailable_response(dependency)
        return error_response(
            500, "internal_error", "an unexpected error occurred; quote the request id to support",
            request_id=request_id,
        )


def _http_error_response(exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (no route, wrong method, body too large) with stable codes."""
    code = _HTTP_CODES.get(exc.status, "http_error")
    message = exc.reason if exc.status != 413 else "request body is larger than the limit"
    response = error_response(exc.status, code, message)
    if exc.status == 405:
        allowed = exc.headers.get("Allow")
        if allowed:
            response.headers["Allow"] = allowed
    return response


def _log_request(metrics: Metrics, request: web.Request, route: str, status: int, elapsed: float) -> None:
    metrics.requests.labels(route, request.method, str(status)).inc()
    metrics.latency.labels(route, request.method).observe(elapsed)
    principal = request.get(PRINCIPAL_KEY)
    log.info(
        "request", method=request.method, route=route, status=status,
        ms=round(elapsed * 1000, 2), principal=principal.account_id if principal else None,
    )


def make_error_middleware(metrics: Metrics, db_deadline: float | None = None):
    """The outermost middleware. `db_deadline`: seconds a request may wait for database connections
    in all (not for websockets, which live for as long as they are open)."""
    failures = _Failures(metrics)

    @web.middleware
    async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id") or new_id("req")
        request[REQUEST_ID_KEY] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        status = 500
        try:
            try:
                upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
                with contextlib.nullcontext() if db_deadline is None or upgrade else request_deadline(db_deadline):
                    response = await handler(request)
            except DomainError as exc:
                response = web.Response(
                    body=encode(exc.body()), status=exc.status, content_type="application/json",
                    headers=exc.headers or None,
                )
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = _http_error_response(exc)
            except Exception as exc:
                response = await failures.answer(request, exc, route, request_id)
            status = response.status
            if not response.prepared:
                response.headers["X-Request-Id"] = request_id
            return response
        finally:
            _log_request(metrics, request, route, status, time.perf_counter() - started)
            structlog.contextvars.clear_contextvars()

    return error_middleware
