"""One HTTP call of an `Operation`: encode the request Struct, send it with the caller's token and an
`Idempotency-Key` on every write, decode the answer into the operation's response Struct or raise
`ApiError`, and retry what is safe to retry.

Safe to retry: a read, and a write carrying its key (the server stores the first outcome under the key
and replays it; a 5xx or 429 frees the key, so the retry really runs). So every call is retried, with
the same key and the same bytes, on 503 (a dependency is down: `Retry-After` says how long), 429, 409
`idempotency_in_progress` (the first attempt is still running) and on a connection that failed before
an answer came back. Anything else is an answer and is returned or raised at once.

Every call names the API version the Structs describe (`FoodDispatch-Version`: the current one, as the
server's handlers build it): an API key pinned to an older version would otherwise get that version's
shapes, which the newest Structs may not read the same way (fooddispatch/versions.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec

from fooddispatch import versions
from fooddispatch.client.errors import CONNECTION_FAILED, ApiError
from fooddispatch.client.operations import Operation

R = TypeVar("R")
API_VERSION = versions.CURRENT  # the version whose shapes the server's current Structs are
Sleep = Callable[[float], Awaitable[None]]
RETRY_CODES = frozenset({"idempotency_in_progress"})  # 409s that are "not yet", not "no"
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` in all (1: no retry); waits `base_delay * 2**n`, or the server's `Retry-After`, at most
    `max_delay` seconds."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        wait = self.base_delay * 2 ** attempt
        if retry_after:
            try:
                wait = max(wait, float(retry_after))
            except ValueError:
                pass
        return min(wait, self.max_delay)


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def fill_path(path: str, values: Mapping[str, str | date]) -> str:
    """`path` with each {placeholder} replaced by its value, escaped as one path segment."""
    filled = path
    for name, value in values.items():
        text = value.isoformat() if isinstance(value, date) else value
        filled = filled.replace("{" + name + "}", quote(text, safe=""))
    if "{" in filled:
        raise ValueError(f"{path}: a placeholder has no value ({filled})")
    return filled


def query_params(query: msgspec.Struct | None) -> dict[str, str]:
    """A query Struct as URL parameters, by their wire names; unset (None) fields are left out."""
    if query is None:
        return {}
    out: dict[str, str] = {}
    for name, value in msgspec.to_builtins(query).items():
        if value is None:
            continue
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class Transport:
    """The session, base URL and retry policy a `Client` and every `Client.with_token` copy share."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, *, retry: RetryPolicy | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._encoder = msgspec.json.Encoder()
        self._decoders: dict[Any, msgspec.json.Decoder[Any]] = {}

    def url(self, path: str) -> str:
        return self.base_url + path

    def _decoder(self, response: type[R]) -> msgspec.json.Decoder[R]:
        decoder = self._decoders.get(response)
        if decoder is None:
            decoder = self._decoders[response] = msgspec.json.Decoder(response)
        return decoder

    async def call(self, op: Operation[R], *, token: str | None, path: Mapping[str, str | date] | None = None,
                   body: msgspec.Struct | None = None, query: msgspec.Struct | None = None,
                   idempotency_key: str | None = None) -> R:
        """One logical call: its attempts share one idempotency key and send the same bytes."""
        if not (body is None if op.body is None else isinstance(body, op.body)):
            raise TypeError(f"{op.method} {op.path} takes a {op.body and op.body.__name__} body")
        headers = {"Accept": "application/json", versions.HEADER: API_VERSION}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if op.writes:
            headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        data = None
        if body is not None:
            data = self._encoder.encode(body)
            headers["Content-Type"] = "application/json"
        url = self.url(fill_path(op.path, path or {}))
        params = query_params(query)
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                async with self.session.request(op.method, url, data=data, params=params,
                                                headers=headers) as response:
                    payload = await response.read()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                if last:
                    raise ApiError(CONNECTION_FAILED, 0, f"{type(exc).__name__}: {exc}") from exc
                await self.sleep(self.retry.delay(attempt, None))
                continue
            if status < 400:
                return self._decoder(op.response).decode(payload)
            error = ApiError.from_response(status, payload)
            if last or not (status in RETRY_STATUSES or error.code in RETRY_CODES):
                raise error
            await self.sleep(self.retry.delay(attempt, retry_after))
        raise AssertionError("unreachable: the last attempt returns or raises")
