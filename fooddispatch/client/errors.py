"""What a failed call raises: `ApiError`, built from the server's one error shape,
`{"error": {"code", "message", "param", ...}}` (fooddispatch/errors.py)."""

from __future__ import annotations

from typing import Any

import msgspec

CONNECTION_FAILED = "connection_failed"  # `code` when no answer came back, even after the retries


class ApiError(Exception):
    """The server refused a call (or never answered: `status` 0, `code` `connection_failed`).

    `code` is the stable machine-readable code, `param` the offending field path when there is one,
    `extra` any further fields of the error object (a 402 `authentication_required` names its
    `payment_intent` there)."""

    def __init__(self, code: str, status: int, message: str = "", param: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}" if message else f"{status} {code}")
        self.code = code
        self.status = status
        self.message = message
        self.param = param
        self.extra = extra or {}

    @classmethod
    def from_response(cls, status: int, body: bytes) -> ApiError:
        """From an error response's body; one that is not the error shape still gives a stable code."""
        try:
            error = msgspec.json.decode(body).get("error") if body else None
        except (msgspec.DecodeError, AttributeError):
            error = None
        if not isinstance(error, dict):
            return cls(f"http_{status}", status, body[:200].decode("utf-8", "replace"))
        fields = dict(error)
        code, message, param = fields.pop("code", None), fields.pop("message", ""), fields.pop("param", None)
        return cls(str(code or f"http_{status}"), status, str(message or ""),
                   param if isinstance(param, str) else None, fields)
