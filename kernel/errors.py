"""The base error type. Every package's errors subclass `DomainError`.

An error carries a stable machine `code`, an HTTP `status`, a human `message`
and optionally the offending field path in `param`. The one error middleware
turns any `DomainError` into `{"error": {"code", "message", "param", ...}}`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    # The `param` when the raiser names none: a kind of missing resource names its id's parameter.
    default_param: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param if param is not None else self.default_param
        if code is not None:
            self.code = code  # type: ignore[misc]
        if status is not None:
            self.status = status  # type: ignore[misc]
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "param": self.param}
        err.update(self.extra)
        return {"error": err}


class InvalidJson(DomainError):
    status = 400
    code = "invalid_json"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    """A resource that does not exist, or one the caller may not see (the two are never told apart).
    Every 404 of the API has this one code, Stripe's `resource_missing`; `param` names the id."""

    status = 404
    code = "resource_missing"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
