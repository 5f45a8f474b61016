"""The simulated apps' HTTP client: the public API only, found through /openapi.json.

Every simulated phone, tablet and courier app goes through `Api.call(...)` with its own bearer
token, exactly as a real client would; nothing here touches a database or a Redis key.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fooddispatch.ops.discovery import Route, find_routes


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class Missing(Exception):
    """The operation is not in the API (yet)."""


@dataclass
class CallStats:
    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "name status code"
    latency: dict[str, list[float]] = field(default_factory=dict)


class Api:
    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.routes: dict[str, Route] = {}
        self.stats = CallStats()

    async def discover(self) -> dict[str, Route]:
        async with self.session.get(f"{self.base_url}/openapi.json") as response:
            response.raise_for_status()
            spec = await response.json()
        self.routes = find_routes(spec)
        return self.routes

    def has(self, *names: str) -> bool:
        return all(name in self.routes for name in names)

    def ws_url(self, name: str, *values: str, **named: str) -> str:
        route = self.routes.get(name)
        if route is None:
            raise Missing(name)
        return self.base_url.replace("http", "ws", 1) + route.url(*values, **named)

    async def call(
        self,
        name: str,
        *values: str,
        token: str | None = None,
        json: Any = None,
        query: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        retries: int = 2,
        path: dict[str, str] | None = None,
    ) -> Any:
        route = self.routes.get(name)
        if route is None:
            raise Missing(name)
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if route.idempotent or idempotency_key:
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        url = self.base_url + route.url(*values, **(path or {}))
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        for attempt in range(retries + 1):
            started = time.perf_counter()
            self.stats.calls[name] += 1
            try:
                async with self.session.request(route.method, url, json=json, params=params,
                                                headers=headers) as response:
                    body = await response.json(content_type=None) if response.content_length != 0 else None
                    self.stats.latency.setdefault(name, []).append(time.perf_counter() - started)
                    if response.status == 429 and attempt < retries:
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    if response.status >= 400:
                        error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
                        code = str(error.get("code") or error.get("type") or response.status)
                        self.stats.errors[f"{name} {response.status} {code}"] += 1
                        raise ApiError(response.status, code, str(error.get("message", "")), body)
                    return body
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                if attempt >= retries:
                    self.stats.errors[f"{name} connection {type(exc).__name__}"] += 1
                    raise ApiError(0, "connection", str(exc)) from None
                await asyncio.sleep(0.2 * (attempt + 1))
        raise ApiError(0, "retries", "gave up")
