"""Couriers on the courier websocket, as the courier app behaves: online, a GPS fix every couple of
seconds, every offer accepted at once, then the bag picked up and handed over (each step once the
order shows the previous one). Actions carry an id and are resent until acknowledged (the server
applies an id once), also over a new connection after a reconnect. Each courier records the points
the server acknowledged, the offers it got and how they ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from faults_actors import RECONNECT_S, Http, cancel, now

GPS_EVERY_S = 2.0
ACTION_RESEND_S = 1.5


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
            await cancel(ride)
        await cancel(self._task)

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
            await cancel(reader)

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
