"""The clients of a fault scenario, each recording what it saw, with the test's monotonic time.

- `Http`: every HTTP call any actor makes goes through it and is recorded (`Call`), so the
  verdict can say whether any 500 was ever answered and how each 5xx looked.
- `WebhookReceiver`: the merchant's endpoint (aiohttp on loopback), records deliveries by event id.
- `TabletFeed`: the restaurant tablet's order feed websocket; reconnects when it closes.
- `Courier`: a courier app on the courier websocket: online, GPS every second, accepts every
  offer at once (resending unacknowledged actions like the real app), records offers and refusals.

The checkout load and the kitchen are in faults_load.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from kernel.signing import SIGNATURE_HEADER, verify

RECONNECT_S = 0.3
GPS_EVERY_S = 2.0
ACTION_RESEND_S = 1.5


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
        await _cancel(self._task)

    def by_event(self) -> dict[str, list[FeedFrame]]:
        out: dict[str, list[FeedFrame]] = {}
        for f in self.frames:
            out.setdefault(f.event_id, []).append(f)
        return out


# ---- couriers ----------------------------------------------------------------------------------------

@dataclass(slots=True)
class Offer:
    at: float
    offer_id: str
    courier_id: str
    order_ids: list[str]
    refused: str | None = None  # the error code the server answered our acceptance with
    cancelled: str | None = None  # offer_cancelled's reason
    owned: set[str] = field(default_factory=set)  # order ids the server then showed as assigned to us
    delivered: dict[str, float] = field(default_factory=dict)  # order id -> when we saw it delivered


_action_ids = itertools.count(1)


@dataclass
class Courier:
    http: Http
    courier_id: str
    token: str
    lat: float
    lng: float
    rng: random.Random
    seq: int = 0
    sent: dict[int, float] = field(default_factory=dict)  # seq -> when sent
    acked_seq: int = 0
    acked_at: dict[int, float] = field(default_factory=dict)  # seq -> first ack covering it
    rejected: set[int] = field(default_factory=set)
    offers: dict[str, Offer] = field(default_factory=dict)
    unacked: dict[str, dict[str, Any]] = field(default_factory=dict)  # action id -> frame
    errors: list[tuple[float, str]] = field(default_factory=list)
    connects: int = 0
    outbox: list[dict[str, Any]] = field(default_factory=list)
    rides: list[asyncio.Task[None]] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"courier-{self.courier_id}")

    async def close(self) -> None:
        for ride in self.rides:
            await _cancel(ride)
        await _cancel(self._task)

    async def _ride(self, offer: Offer) -> None:
        """Take the bag and hand it over: the courier's actions drive the order to delivered. Each step
        waits until the order shows the previous one (the assignment first: until then the order is not
        ours to read, and a pick-up for an order not yet ours would be ignored)."""
        for order_id in offer.order_ids:
            if not await self._order_reaches(offer, order_id, {"accepted", "preparing", "ready"}, need_ours=True):
                return
            offer.owned.add(order_id)
            self._act({"type": "picked_up", "order_id": order_id})
            if not await self._order_reaches(offer, order_id, {"picked_up", "delivered"}):
                return
            self._act({"type": "delivered", "order_id": order_id, "proof": {"code": "4711"}})
            if not await self._order_reaches(offer, order_id, {"delivered"}):
                return
            offer.delivered[order_id] = now()

    async def _order_reaches(self, offer: Offer, order_id: str, statuses: set[str], need_ours: bool = False,
                             within: float = 120.0) -> bool:
        deadline = now() + within
        while now() < deadline and not (offer.refused or offer.cancelled):
            answer = await self.http.call("GET", f"/v1/orders/{order_id}", "courier order", token=self.token)
            if answer.status == 200 and answer.body.get("status") in statuses and (
                    not need_ours or answer.body.get("courier_id") == self.courier_id):
                return True
            await asyncio.sleep(0.5)
        return False

    async def _run(self) -> None:
        url = self.http.base_url.replace("http", "ws", 1) + "/v1/courier/ws"
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ConnectionError):
                async with self.http.session.ws_connect(url, headers={"Authorization": f"Bearer {self.token}"},
                                                        heartbeat=5, timeout=aiohttp.ClientWSTimeout(ws_close=2)) as ws:
                    self.connects += 1
                    await self._session(ws)
            await asyncio.sleep(RECONNECT_S)

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_json({"type": "hello", "vehicle": "bicycle"})
        self.outbox.clear()
        self._act({"type": "status", "status": "online"})
        self.outbox.extend(f for f in self.unacked.values() if f not in self.outbox)  # unconfirmed before
        reader = asyncio.create_task(self._read(ws))
        try:
            ping_at = resend_at = now()
            while not reader.done():
                if now() >= ping_at:
                    await self._ping(ws)
                    ping_at = now() + GPS_EVERY_S
                if now() >= resend_at:
                    self.outbox.extend(f for f in self.unacked.values() if f not in self.outbox)
                    resend_at = now() + ACTION_RESEND_S
                while self.outbox:
                    await ws.send_json(self.outbox.pop(0))
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), max(0.01, min(ping_at, resend_at) - now()))
        finally:
            await _cancel(reader)

    def _act(self, frame: dict[str, Any]) -> None:
        """Send an action and keep it until acked: resent (same id, so applied once) until then."""
        action_id = f"a{next(_action_ids)}"
        frame = {**frame, "id": action_id}
        self.unacked[action_id] = frame
        self.outbox.append(frame)
        self.wake.set()

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.seq += 1
        self.sent[self.seq] = now()
        lat = self.lat + self.rng.uniform(-0.00005, 0.00005)
        lng = self.lng + self.rng.uniform(-0.00005, 0.00005)
        await ws.send_json({"type": "location", "lat": round(lat, 6), "lng": round(lng, 6), "ts": time.time(),
                            "seq": self.seq, "accuracy": 8.0, "speed": 0.0})

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            kind = frame.get("type")
            if kind == "ack":
                self._ack(frame)
            elif kind == "offer" and frame["offer_id"] not in self.offers:
                offer = Offer(now(), frame["offer_id"], self.courier_id, list(frame["order_ids"]))
                self.offers[offer.offer_id] = offer
                self._act({"type": "offer_response", "offer_id": offer.offer_id, "accepted": True})
                self.rides.append(asyncio.create_task(self._ride(offer), name=f"ride-{offer.offer_id}"))
            elif kind == "offer_cancelled":
                offer = self.offers.get(frame.get("offer_id", ""))
                if offer is not None:
                    offer.cancelled = str(frame.get("reason"))
            elif kind == "error":
                self._error(frame)

    def _ack(self, frame: dict[str, Any]) -> None:
        if frame.get("id"):
            self.unacked.pop(frame["id"], None)
        seq = frame.get("seq")
        if isinstance(seq, int) and seq > self.acked_seq:
            t = now()
            for s in range(self.acked_seq + 1, seq + 1):
                self.acked_at.setdefault(s, t)
            self.acked_seq = seq

    def _error(self, frame: dict[str, Any]) -> None:
        code = str(frame.get("code"))
        self.errors.append((now(), code))
        if frame.get("offer_id") in self.offers:
            self.offers[frame["offer_id"]].refused = code
        if code == "point_rejected" and isinstance(frame.get("seq"), int):
            self.rejected.add(frame["seq"])

    def acked_points(self, before: float | None = None) -> list[int]:
        """Seqs the server acknowledged as stored (rejected points are acked but not stored)."""
        return [s for s, t in self.acked_at.items() if s not in self.rejected and (before is None or t <= before)]


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def close_all(actors: Iterable[Any]) -> None:
    for actor in actors:
        await actor.close()
