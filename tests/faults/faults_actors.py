"""The clients of a fault scenario, each recording what it saw, with the test's monotonic time.

- `Http`: every HTTP call any actor makes goes through it and is recorded (`Call`), so the
  verdict can say whether any 500 was ever answered and how each 5xx looked.
- `WebhookReceiver`: the merchant's endpoint (aiohttp on loopback), records deliveries by event id.
- `TabletFeed`: the restaurant tablet's order feed websocket; reconnects when it closes.

Couriers are in faults_couriers.py, the checkout load and the kitchen in faults_load.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from kernel.signing import SIGNATURE_HEADER, verify

RECONNECT_S = 0.3


def now() -> float:
    return time.monotonic()


async def until(check: Callable[[], bool], within: float, every: float = 0.05) -> bool:
    """Poll `check` until it holds (True) or `within` seconds pass (False): a deadline, not a sleep."""
    deadline = now() + within
    while True:
        if check():
            return True
        if now() > deadline:
            return False
        await asyncio.sleep(every)


# ---- HTTP, recorded -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Call:
    at: float  # when the answer (or the failure) came
    name: str
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    code: str | None  # the JSON error code, or the exception's name when status is 0
    retry_after: str | None
    seconds: float


@dataclass(slots=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]
    seconds: float

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None


class Http:
    def __init__(self, base_url: str, calls: list[Call], timeout: float = 10.0) -> None:
        self.base_url = base_url
        self.calls = calls
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, name: str, *, token: str | None = None, json_body: Any = None,
                   headers: dict[str, str] | None = None, give_up_s: float | None = None) -> Answer:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        started = now()
        kw: dict[str, Any] = {"json": json_body, "headers": sent}
        if give_up_s is not None:
            kw["timeout"] = aiohttp.ClientTimeout(total=give_up_s)
        try:
            async with self.session.request(method, self.base_url + path, **kw) as response:
                raw = await response.read()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                answer = Answer(response.status, body, dict(response.headers), now() - started)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            answer = Answer(0, {"error": {"code": type(exc).__name__}}, {}, now() - started)
        self.calls.append(Call(now(), name, answer.status, answer.code, answer.headers.get("Retry-After"),
                               answer.seconds))
        return answer


def retryable(answer: Answer) -> bool:
    """What a real client retries with the same request: no answer, 5xx, 429, and a key still in progress."""
    return (answer.status == 0 or answer.status >= 500 or answer.status == 429
            or (answer.status == 409 and answer.code == "idempotency_in_progress"))


def backoff(answer: Answer, attempt: int) -> float:
    hinted = answer.headers.get("Retry-After")
    if hinted:
        with contextlib.suppress(ValueError):
            return min(2.0, max(0.1, float(hinted)))
    return min(2.0, 0.2 * 1.5 ** attempt)


# ---- the merchant's webhook endpoint ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Delivery:
    at: float
    event_id: str
    event_type: str
    order_id: str | None
    signature_ok: bool


class WebhookReceiver:
    """Answers 200 to every delivery (a healthy merchant), so a second delivery of an event id is
    never explained by our answer: only by the sender not having recorded its first attempt."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.secret: str | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = json.loads(body)
        ok = self.secret is not None and verify(body, request.headers.get(SIGNATURE_HEADER, ""), self.secret)
        data = (payload.get("data") or {}).get("object") or {}
        self.deliveries.append(Delivery(now(), payload["id"], payload["type"], data.get("order_id"), ok))
        return web.Response(status=200)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def by_event(self) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = {}
        for d in self.deliveries:
            out.setdefault(d.event_id, []).append(d)
        return out


# ---- the restaurant tablet's feed -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FeedFrame:
    at: float
    event_id: str
    event_type: str
    order_id: str


class TabletFeed:
    def __init__(self, http: Http, store_id: str, token: str) -> None:
        self.http, self.store_id, self.token = http, store_id, token
        self.frames: list[FeedFrame] = []
        self.hellos: list[tuple[float, set[str]]] = []  # (when, active order ids)
        self.connected_at: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tablet-feed")

    async def _run(self) -> None:
        url = self.http.base_url.replace("http", "ws", 1) + f"/v1/stores/{self.store_id}/orders/feed"
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with self.http.session.ws_connect(url, headers={"Authorization": f"Bearer {self.token}"},
                                                        heartbeat=5, timeout=aiohttp.ClientWSTimeout(ws_close=2)) as ws:
                    self.connected_at.append(now())
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT and msg.type != aiohttp.WSMsgType.BINARY:
                            continue
                        self._frame(json.loads(msg.data))
            await asyncio.sleep(RECONNECT_S)

    def _frame(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "hello":
            self.hellos.append((now(), {o["id"] for o in frame.get("active_orders", [])}))
        elif frame.get("type") == "order":
            self.frames.append(FeedFrame(now(), frame["event_id"], frame["event_type"], frame["order_id"]))

    async def close(self) -> None:
        await cancel(self._task)

    def by_event(self) -> dict[str, list[FeedFrame]]:
        out: dict[str, list[FeedFrame]] = {}
        for f in self.frames:
            out.setdefault(f.event_id, []).append(f)
        return out


async def cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def close_all(actors: Iterable[Any]) -> None:
    for actor in actors:
        await actor.close()
