"""Courier tracker devices: the keys an operator issues, and fixes from `/osmand` into the same ingest as
the courier socket (the same validation: bounds, clock skew, impossible speed; the same coalesced flush
into the live index, history, geofences and positions to the orders the courier carries).

A device has no socket and no `seq`: each request runs through a `DeviceSession`, a courier session
without a socket whose "ack" is the answer to the request. Its validation memory (last seq, last fix)
is read back from the live index on every request, so requests may land on any process; its points are
numbered after the last stored seq, and a fix no newer than the last stored one is a resend (dropped).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

from kernel.errors import Conflict, NotFound, Unauthenticated
from kernel.http import COURIER, Principal
from kernel.ids import new_id
from tracking import device_store
from tracking.courier import CourierSession
from tracking.messages import Point, bundle_decoder
from tracking.osmand import DeviceFix
from tracking.service import TrackingService

DEVICE_KEY_PREFIX = "fdd_"
ACK_TIMEOUT_S = 5.0
MAX_SESSIONS = 10_000  # device sessions kept between requests (their geofence memory); oldest dropped


class InvalidDeviceKey(Unauthenticated):
    code = "invalid_device_key"


class DeviceKeyRevoked(Unauthenticated):
    code = "device_key_revoked"


class CourierSocketOpen(Conflict):
    code = "courier_socket_open"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class DeviceKeys:
    def __init__(self, service: TrackingService) -> None:
        self.service = service

    async def issue(self, courier_id: str, name: str, by: str | None) -> tuple[dict[str, object], str]:
        """A new key for the courier's device: (its record, the key, shown once)."""
        key = DEVICE_KEY_PREFIX + secrets.token_urlsafe(24)
        row = await device_store.insert_key(self.service.pool, new_id("dev"), courier_id, key_hash(key), name, by)
        return dict(row), key

    async def of_courier(self, courier_id: str) -> list[dict[str, object]]:
        return [dict(r) for r in await device_store.keys_of(self.service.pool, courier_id)]

    async def revoke(self, key_id: str) -> None:
        if not await device_store.revoke_key(self.service.pool, key_id, self.service.clock.now()):
            raise NotFound("no such device key (or it was revoked already)", param="id")

    async def courier_for(self, key: str) -> str:
        if not key.startswith(DEVICE_KEY_PREFIX) or len(key) > 100:
            raise InvalidDeviceKey("send the device key an operator issued as the device identifier (id)",
                                   param="id")
        row = await device_store.courier_for_key(self.service.pool, key_hash(key), self.service.clock.now())
        if row is None:
            raise InvalidDeviceKey("unknown device key", param="id")
        if row["revoked_at"] is not None:
            raise DeviceKeyRevoked("this device key was revoked", param="id")
        return str(row["courier_id"])


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index of the fix in the request, reason)


class DeviceSession(CourierSession):
    """A courier session without a socket: acks and errors are collected for the HTTP answer."""

    __slots__ = ("done_seq", "rejects", "waiter")

    def __init__(self, service: TrackingService, courier_id: str) -> None:
        super().__init__(service, None, Principal(courier_id, COURIER), None, None)  # type: ignore[arg-type]
        self.done_seq = -1
        self.rejects: list[tuple[int | None, str]] = []
        self.waiter: tuple[int, asyncio.Future[None]] | None = None

    def acked(self, seq: int, again: bool = False) -> None:
        self.done_seq = max(self.done_seq, seq)
        waiter = self.waiter
        if waiter is not None and seq >= waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)

    def error(self, code: str, message: str, seq: int | None = None, *, action_id: str | None = None,
              state: str | None = None) -> None:
        self.rejects.append((seq, message))

    def send(self, frame: bytes) -> None:  # nothing to send to: a device only posts
        return None

    def on_channel(self, raw: bytes) -> None:
        return None


class DeviceIngest:
    def __init__(self, service: TrackingService) -> None:
        self.service = service
        self.sessions: OrderedDict[str, DeviceSession] = OrderedDict()
        # One request at a time per courier (each numbers its fixes after the last stored seq); a lock lives
        # while a request holds or waits for it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def _session(self, courier_id: str) -> DeviceSession:
        service = self.service
        session = self.sessions.pop(courier_id, None) or DeviceSession(service, courier_id)
        self.sessions[courier_id] = session
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        session.resume(await service.index(session.region).stored_state(courier_id))
        raw = await service.redis.hget(service.channels.bundles(session.region), courier_id)
        session.bundle = bundle_decoder.decode(raw) if raw else []
        session.geofences.set_orders(session.bundle)
        session.rejects = []
        session.done_seq = session.track.last_seq  # what is stored; acks of an earlier request count for nothing
        return session

    async def ingest(self, courier_id: str, fixes: list[DeviceFix]) -> IngestResult:
        """Apply the fixes in order and answer once they are stored (or rejected)."""
        if courier_id in self.service.couriers:
            raise CourierSocketOpen("this courier streams its position over the courier app's socket right now")
        lock = self._locks.get(courier_id)
        if lock is None:
            lock = self._locks[courier_id] = asyncio.Lock()
        async with lock:
            return await self._ingest(courier_id, fixes)

    async def _ingest(self, courier_id: str, fixes: list[DeviceFix]) -> IngestResult:
        service = self.service
        now = service.now()
        session = await self._session(courier_id)
        result = IngestResult()
        seq = session.track.last_seq
        last_ts = session.track.fix.ts if session.track.fix is not None else None
        first_seq = seq + 1
        points: list[Point] = []
        for fix in fixes:
            ts = fix.ts if fix.ts is not None else now
            if last_ts is not None and ts <= last_ts:
                result.duplicates += 1  # sent again (the app did not get our answer) or out of order
                continue
            seq += 1
            points.append(Point(fix.lat, fix.lng, ts, seq, fix.accuracy, fix.speed, fix.heading))
            last_ts = ts
        if not points:
            return result
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        session.waiter = (seq, done)
        session._locations(points, now)
        try:
            if session.done_seq < seq:
                await asyncio.wait_for(done, ACK_TIMEOUT_S)
        finally:
            session.waiter = None
        result.rejected = [(s - first_seq, reason) for s, reason in session.rejects if s is not None]
        result.accepted = len(points) - len(result.rejected)
        return result
