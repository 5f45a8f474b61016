"""Simulated couriers: the courier app over the courier websocket, nothing else.

Each courier opens `/v1/courier/ws` with its token when its shift starts, says `hello` with its
vehicle, goes `online`, and streams GPS fixes while it moves at its vehicle's speed (compressed
by `speed`). Offers are accepted or declined; an accepted bundle is driven stop by stop: ride to
the restaurant, wait for the bag, `picked_up`, ride to each customer, `delivered` with a code.

GPS cadence: a real app sends a fix every ~4 s. With time compressed the courier covers
`speed` times more ground per real second, so the demo sends fixes more often in real time,
keeping every step near 45 m, within what the tracking validator allows between two fixes.
Device time is the wall clock, as on a phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fooddispatch.demo.api import Api, ApiError
from fooddispatch.demo.city import VEHICLE_SPEED, CourierSpec
from fooddispatch.demo.seed import SeededCity
from fooddispatch.demo.world import World

log = logging.getLogger("fooddispatch.demo")
STEP_M = 45.0
IDLE_PING_S = 2.0  # real seconds between fixes while standing still (well under the 60 s stale limit)
ids = itertools.count(1)


def move_towards(lat: float, lng: float, to_lat: float, to_lng: float, metres: float) -> tuple[float, float, bool]:
    """Move up to `metres` along the straight line; (lat, lng, arrived)."""
    dy = (to_lat - lat) * 111_320
    dx = (to_lng - lng) * 111_320 * math.cos(math.radians(lat))
    dist = math.hypot(dx, dy)
    if dist <= metres or dist < 1e-6:
        return to_lat, to_lng, True
    f = metres / dist
    return lat + (to_lat - lat) * f, lng + (to_lng - lng) * f, False


def _point(value: Any) -> tuple[float, float] | None:
    if isinstance(value, dict) and "lat" in value and "lng" in value:
        return float(value["lat"]), float(value["lng"])
    return None


def stops_from_offer(offer: dict[str, Any]) -> list[tuple[str, str, tuple[float, float] | None]]:
    """(kind, order_id, point) in visiting order, from whatever stop list the offer carries;
    orders without one get pickup-then-dropoff with unknown points."""
    out: list[tuple[str, str, tuple[float, float] | None]] = []
    if isinstance(offer.get("pickup"), dict) and isinstance(offer.get("dropoffs"), list):
        # dispatch's offer: one pickup for the bundle, then the drop-offs in the planned order
        pickup = _point(offer["pickup"])
        out += [("pickup", order_id, pickup) for order_id in offer.get("order_ids", [])]
        out += [("dropoff", d["order_id"], _point(d)) for d in offer["dropoffs"]]
        return out
    for stop in offer.get("stops") or offer.get("route") or []:
        if isinstance(stop, dict):
            kind = str(stop.get("kind") or stop.get("type") or "")
            kind = "pickup" if "pick" in kind else "dropoff"
            point = _point(stop.get("point") or stop.get("location") or stop)
            for order_id in stop.get("order_ids") or [stop.get("order_id")]:
                if order_id:
                    out.append((kind, order_id, point))
    if not out:
        orders = offer.get("orders") or [{"order_id": oid} for oid in offer.get("order_ids", [])]
        for o in orders:
            out.append(("pickup", o.get("order_id") or o.get("id"), _point(o.get("pickup"))))
        for o in orders:
            out.append(("dropoff", o.get("order_id") or o.get("id"), _point(o.get("dropoff"))))
    return out


@dataclass
class Rider:
    spec: CourierSpec
    token: str
    account_id: str
    lat: float
    lng: float
    seq: int = 0
    offers: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    acked_seq: int = 0


class Couriers:
    def __init__(self, api: Api, seeded: SeededCity, world: World, rng: random.Random) -> None:
        self.api, self.seeded, self.world, self.rng = api, seeded, world, rng
        self.riders: list[Rider] = []

    async def run(self) -> None:
        if not self.api.has("courier_ws"):
            self.world.skip("couriers", "tracking has no courier websocket yet")
            return
        for spec, token, account_id in self.seeded.couriers.values():
            self.riders.append(Rider(spec, token, account_id, spec.lat, spec.lng))
        await asyncio.gather(*(self.shift(rider, random.Random(self.rng.random())) for rider in self.riders))

    async def shift(self, rider: Rider, rng: random.Random) -> None:
        world = self.world
        await asyncio.sleep(world.clock.real(rider.spec.shift_start_min * 60))
        while True:
            try:
                await self._connected(rider, rng)
                return
            except (aiohttp.ClientError, ConnectionError) as exc:
                world.tally.unexpected[f"courier socket {type(exc).__name__}"] += 1
                world.couriers_online.discard(rider.account_id)
                await asyncio.sleep(1.0)  # the app reconnects; seq continues, so nothing is applied twice

    async def _connected(self, rider: Rider, rng: random.Random) -> None:
        world, spec = self.world, rider.spec
        url = self.api.ws_url("courier_ws")
        async with self.api.session.ws_connect(url, headers={"Authorization": f"Bearer {rider.token}"},
                                               heartbeat=20) as ws:
            reader = asyncio.create_task(self._read(ws, rider))
            try:
                await ws.send_json({"type": "hello", "vehicle": spec.vehicle})
                await ws.send_json({"type": "status", "status": "online", "id": f"a{next(ids)}"})
                world.couriers_online.add(rider.account_id)
                world.count_couriers()
                end = spec.shift_start_min * 60 + spec.shift_minutes * 60
                while world.clock.now() < end:
                    if reader.done():
                        reader.result()  # re-raises why the socket ended
                        raise ConnectionError("courier socket closed by the server")
                    try:
                        offer = rider.offers.get_nowait()
                    except asyncio.QueueEmpty:
                        await self._ping(ws, rider, speed_mps=0.0)
                        await asyncio.sleep(IDLE_PING_S)
                        continue
                    await self._answer(ws, rider, rng, offer)
                await ws.send_json({"type": "status", "status": "offline", "id": f"a{next(ids)}"})
            finally:
                world.couriers_online.discard(rider.account_id)
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, rider: Rider) -> None:
        tally = self.world.tally
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            kind = frame.get("type")
            if kind == "ack" and frame.get("seq"):
                tally.gps_acked += max(0, int(frame["seq"]) - rider.acked_seq)
                rider.acked_seq = max(rider.acked_seq, int(frame["seq"]))
            elif kind == "offer":
                tally.offers += 1
                rider.offers.put_nowait(frame)
            elif kind == "error":
                tally.gps_errors[str(frame.get("code"))] += 1

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse, rider: Rider, speed_mps: float,
                    heading: float | None = None) -> None:
        rider.seq += 1
        frame: dict[str, Any] = {"type": "location", "lat": round(rider.lat, 6), "lng": round(rider.lng, 6),
                                 "ts": time.time(), "seq": rider.seq, "accuracy": 8.0, "speed": speed_mps}
        if heading is not None:
            frame["heading"] = heading
        await ws.send_json(frame)
        self.world.tally.gps_points += 1

    async def _ride(self, ws: aiohttp.ClientWebSocketResponse, rider: Rider, to: tuple[float, float]) -> None:
        clock = self.world.clock
        sim_speed = VEHICLE_SPEED[rider.spec.vehicle]
        real_mps = sim_speed * clock.speed
        interval = min(4.0, max(0.2, STEP_M / real_mps))
        arrived = False
        while not arrived:
            heading = math.degrees(math.atan2((to[1] - rider.lng) * math.cos(math.radians(rider.lat)),
                                              to[0] - rider.lat)) % 360
            rider.lat, rider.lng, arrived = move_towards(rider.lat, rider.lng, to[0], to[1], real_mps * interval)
            await self._ping(ws, rider, sim_speed, heading)
            await asyncio.sleep(interval)
        for _ in range(2):  # stand at the door: two fixes inside the geofence
            await self._ping(ws, rider, 0.0)
            await asyncio.sleep(min(interval, 0.5))

    async def _where(self, kind: str, order_id: str, rider: Rider) -> tuple[float, float] | None:
        if self.api.has("get_order"):
            with contextlib.suppress(ApiError):
                order = await self.api.call("get_order", order_id, token=rider.token)
                return _point(order.get(kind))
        track = self.world.orders.get(order_id)  # the address printed on the bag
        return _point(getattr(track, kind, None)) if track else None

    async def _answer(self, ws: aiohttp.ClientWebSocketResponse, rider: Rider, rng: random.Random,
                      offer: dict[str, Any]) -> None:
        world = self.world
        accept = rng.random() < rider.spec.accept_rate
        await asyncio.sleep(world.clock.real(rng.uniform(3, 12)))  # reading the offer
        await ws.send_json({"type": "offer_response", "offer_id": offer["offer_id"], "accepted": accept,
                            "id": f"a{next(ids)}"})
        if not accept:
            world.tally.offers_declined += 1
            return
        world.tally.offers_accepted += 1
        world.couriers_busy.add(rider.account_id)
        world.count_couriers()
        try:
            for kind, order_id, point in stops_from_offer(offer):
                point = point or await self._where(kind, order_id, rider)
                if point is None:
                    world.tally.unexpected["courier: stop without a location"] += 1
                    continue
                await self._ride(ws, rider, point)
                await ws.send_json({"type": "arrived", "order_id": order_id, "where": kind, "id": f"a{next(ids)}"})
                if kind == "pickup":
                    waited = 0.0
                    track = world.orders.get(order_id)
                    while (order_id not in world.bags_ready and waited < world.clock.real(45 * 60)
                           and not (track and track.outcome)):
                        await self._ping(ws, rider, 0.0)
                        await asyncio.sleep(1.0)
                        waited += 1.0
                    await ws.send_json({"type": "picked_up", "order_id": order_id, "id": f"a{next(ids)}"})
                else:
                    await asyncio.sleep(world.clock.real(60))  # stairs, handover
                    await ws.send_json({"type": "delivered", "order_id": order_id, "id": f"a{next(ids)}",
                                        "proof": {"code": f"{rng.randint(0, 9999):04d}"}})
        finally:
            world.couriers_busy.discard(rider.account_id)
