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
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

from dispatch.messages import OfferFrame
from fooddispatch.client import Client, CourierSocket
from fooddispatch.demo.city import VEHICLE_SPEED, CourierSpec
from fooddispatch.demo.seed import SeededCity
from fooddispatch.demo.world import World
from tracking import messages as frames

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


Stop = tuple[Literal["pickup", "dropoff"], str, tuple[float, float]]  # (kind, order id, where)


def stops_from_offer(offer: OfferFrame) -> list[Stop]:
    """(kind, order_id, point) in visiting order: one pickup for the bundle, then the drop-offs in the
    planned order."""
    pickup = (offer.pickup.lat, offer.pickup.lng)
    stops: list[Stop] = [("pickup", order_id, pickup) for order_id in offer.order_ids]
    return stops + [("dropoff", d.order_id, (d.lat, d.lng)) for d in offer.dropoffs]


def action_id() -> str:
    """The id an action frame carries: a resend is applied once, and the ack names it."""
    return f"a{next(ids)}"


@dataclass
class Rider:
    spec: CourierSpec
    token: str
    account_id: str
    lat: float
    lng: float
    seq: int = 0
    offers: asyncio.Queue[OfferFrame] = field(default_factory=asyncio.Queue)
    acked_seq: int = 0


class Couriers:
    def __init__(self, client: Client, seeded: SeededCity, world: World, rng: random.Random) -> None:
        self.client, self.seeded, self.world, self.rng = client, seeded, world, rng
        self.riders: list[Rider] = []

    async def run(self) -> None:
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
        async with self.client.with_token(rider.token).courier_socket(heartbeat=20) as ws:
            reader = asyncio.create_task(self._read(ws, rider))
            try:
                await ws.send(frames.Hello(vehicle=spec.vehicle))  # type: ignore[arg-type]
                await ws.send(frames.Status(status="online", id=action_id()))
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
                await ws.send(frames.Status(status="offline", id=action_id()))
            finally:
                world.couriers_online.discard(rider.account_id)
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader

    async def _read(self, ws: CourierSocket, rider: Rider) -> None:
        tally = self.world.tally
        async for frame in ws.frames():
            if isinstance(frame, frames.Ack) and frame.seq:
                tally.gps_acked += max(0, frame.seq - rider.acked_seq)
                rider.acked_seq = max(rider.acked_seq, frame.seq)
            elif isinstance(frame, OfferFrame):
                tally.offers += 1
                rider.offers.put_nowait(frame)
            elif isinstance(frame, frames.Error):
                tally.gps_errors[frame.code] += 1

    async def _ping(self, ws: CourierSocket, rider: Rider, speed_mps: float, heading: float | None = None) -> None:
        rider.seq += 1
        await ws.send(frames.Location(lat=round(rider.lat, 6), lng=round(rider.lng, 6), ts=time.time(), seq=rider.seq,
                                      accuracy=8.0, speed=speed_mps, heading=heading))
        self.world.tally.gps_points += 1

    async def _ride(self, ws: CourierSocket, rider: Rider, to: tuple[float, float]) -> None:
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

    async def _answer(self, ws: CourierSocket, rider: Rider, rng: random.Random, offer: OfferFrame) -> None:
        world = self.world
        accept = rng.random() < rider.spec.accept_rate
        await asyncio.sleep(world.clock.real(rng.uniform(3, 12)))  # reading the offer
        await ws.send(frames.OfferResponse(offer_id=offer.offer_id, accepted=accept, id=action_id()))
        if not accept:
            world.tally.offers_declined += 1
            return
        world.tally.offers_accepted += 1
        world.couriers_busy.add(rider.account_id)
        world.count_couriers()
        try:
            for kind, order_id, point in stops_from_offer(offer):
                await self._ride(ws, rider, point)
                await ws.send(frames.Arrived(order_id=order_id, where=kind, id=action_id()))
                if kind == "pickup":
                    await self._wait_for_bag(ws, rider, order_id)
                    await ws.send(frames.PickedUp(order_id=order_id, id=action_id()))
                else:
                    await asyncio.sleep(world.clock.real(60))  # stairs, handover
                    await ws.send(frames.Delivered(order_id=order_id, id=action_id(),
                                                   proof=frames.Proof(code=f"{rng.randint(0, 9999):04d}")))
        finally:
            world.couriers_busy.discard(rider.account_id)

    async def _wait_for_bag(self, ws: CourierSocket, rider: Rider, order_id: str) -> None:
        """At the counter until the kitchen hands the bag over (or the order ended, or 45 simulated min)."""
        world, waited = self.world, 0.0
        track = world.orders.get(order_id)
        while (order_id not in world.bags_ready and waited < world.clock.real(45 * 60)
               and not (track and track.outcome)):
            await self._ping(ws, rider, 0.0)
            await asyncio.sleep(1.0)
            waited += 1.0
