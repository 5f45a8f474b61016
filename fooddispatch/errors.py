"""The one place errors become responses: `{"error": {"code", "message", "param"}}`.

Domain errors carry their own code and status. aiohttp's own HTTP errors (no
route, wrong method, body too large) are given stable codes. Anything else is
a 500 `internal_error` with the request id; the traceback goes to the log only.
"""

from __future__ import annotations

import time

import structlog
from aiohttp import web

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


def error_response(status: int, code: str, message: str, param: str | None = None,
                   headers: dict[str, str] | None = None, **extra: object) -> web.Response:
    body = {"error": {"code": code, "message": message, "param": param, **extra}}
    return web.Response(body=encode(body), status=status, content_type="application/json", headers=headers)


def make_error_middleware(metrics: Metrics):
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
                response = await handler(request)
            except DomainError as exc:
                response = web.Response(
                    body=encode(exc.body()), status=exc.status, content_type="application/json",
                    headers=exc.headers or None,
                )
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                code = _HTTP_CODES.get(exc.status, "http_error")
                message = exc.reason if exc.status != 413 else "request body is larger than the limit"
                response = error_response(exc.status, code, message)
                if exc.status == 405:
                    allowed = exc.headers.get("Allow")
                    if allowed:
                        response.headers["Allow"] = allowed
            except Exception:
                log.exception("unhandled error", path=request.path, method=request.method)
                response = error_response(
                    500, "internal_error", "an unexpected error occurred; quote the request id to support",
                    request_id=request_id,
                )
            status = response.status
            if not response.prepared:
                response.headers["X-Request-Id"] = request_id
            return response
        finally:
            elapsed = time.perf_counter() - started
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.latency.labels(route, request.method).observe(elapsed)
            principal = request.get(PRINCIPAL_KEY)
            log.info(
                "request", method=request.method, route=route, status=status,
                ms=round(elapsed * 1000, 2), principal=principal.account_id if principal else None,
            )
            structlog.contextvars.clear_contextvars()

    return error_middleware
