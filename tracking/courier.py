"""The courier websocket session: authenticate (header, `?access_token=`, or a `hello`
frame within `auth_timeout`), then read frames until the socket closes.

Reading never waits for Redis: location points are validated and handed to the flusher
(the coalescer); the flusher acks them after they are stored. Actions (status, offer
responses, arrivals, pick-up, delivery) are written to the outbox and acked after commit.

Close codes: 4401 no/invalid credentials in time, 4403 not a courier, 4409 replaced by a
newer connection, 1008 too many malformed frames, 1009 frame over the size limit,
1013 not reading what we send, 1001 server shutting down.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiohttp import WSMsgType, web

from geo.live import LiveState
from kernel.errors import DomainError
from kernel.http import COURIER, Principal, optional_principal, unstorable_path
from kernel.ids import new_id
from tracking.event_types import (
    CourierDelivered,
    CourierEvent,
    CourierOfferResponse,
    CourierPickedUp,
    CourierStatusChanged,
    DeliveryProof,
)
from tracking.lane import INTERNAL_ERROR, LaneSocket
from tracking.messages import (
    Ack,
    Arrived,
    BundleOrder,
    Delivered,
    Error,
    Hello,
    Location,
    OfferResponse,
    PickedUp,
    Point,
    Status,
    StatusSet,
    encoder,
    json_frame_decoder,
    msgpack_frame_decoder,
)
from tracking.model import REJECT_TELEPORT, Arrival, CourierTrack, Geofences, TokenBucket
from tracking.sender import PING, Sender, pong_frame, text_frame
from tracking.service import TRACKING, TrackingService

log = logging.getLogger(__name__)

AUTH_FAILED = 4401
FORBIDDEN = 4403
REPLACED = 4409
POLICY_VIOLATION = 1008
VEHICLES = ("bicycle", "scooter", "car", "walk")
_ACK = b'{"type":"ack","seq":%d}'
NO_ORDERS: list[BundleOrder] = []  # shared, never mutated: a session's bundle is replaced, not changed


class CourierSession:
    # Slots and lazily built geofences: a quiet connection should cost little (see BENCHMARKS.md).
    __slots__ = ("_fences", "acked_seq", "bundle", "busy", "closed", "conn_id", "courier_id", "first_name", "garbage",
                 "limiter", "listener", "moved", "point_limiter", "region", "sender", "service", "silent", "track",
                 "vehicle", "ws")

    def __init__(self, service: TrackingService, ws: web.WebSocketResponse, who: Principal,
                 vehicle: str | None, transport: asyncio.BaseTransport | None) -> None:
        config = service.config
        self.service = service
        self.ws = ws
        self.courier_id = who.account_id
        self.first_name = (who.name or "").split(" ")[0] or None
        self.conn_id = new_id("conn")
        self.region = config.region
        self.sender = Sender(ws, config.courier_queue, transport)
        self.track = CourierTrack(self.courier_id, vehicle=vehicle)
        self.vehicle = vehicle
        self.limiter = TokenBucket(config.frame_rate, config.frame_burst)
        self.point_limiter = TokenBucket(config.point_rate, config.point_burst)
        self._fences: Geofences | None = None  # built with the first fix or bundle
        self.bundle: list[BundleOrder] = NO_ORDERS
        self.moved = False  # a new fix since positions were last published to orders
        self.acked_seq = -1
        self.garbage = 0
        self.silent = 0  # heartbeat rounds since the last frame (of any kind) from the courier
        self.closed = False
        self.busy = False  # the handler is applying a frame (the fast lane leaves the next ones to it)
        self.listener = self.on_channel  # one bound method: the hub compares listeners by identity

    # -- state ------------------------------------------------------------------------

    @property
    def geofences(self) -> Geofences:
        fences = self._fences
        if fences is None:
            fences = self._fences = Geofences()
        return fences

    def resume(self, stored: LiveState | None) -> None:
        self.track = CourierTrack.resume(self.courier_id, stored, self.vehicle)

    def take_over(self, old: CourierSession) -> None:
        self.track = old.track
        if self.vehicle:
            self.track.vehicle = self.vehicle

    def set_bundle(self, orders: list[BundleOrder]) -> None:
        """The orders this courier carries now. Points may have been read before this news
        arrived (the assignment commits on another process): the recent fixes are checked
        against the new orders' geofences, and the next flush shows the position to them."""
        service = self.service
        self.bundle = orders
        for arrival in self.geofences.set_orders(orders, service.config.rules):
            service.run_side(service.record_arrival(self.courier_id, arrival))
        self.moved = True
        service.announce(self)

    def force_status(self, status: str) -> None:
        """Someone else (an operator) set the courier's status: keep it, store it with the next
        flush, and tell the courier's app."""
        if self.track.status == status or self.closed:
            return
        self.track.status = status
        self.track.seen = self.service.now()
        self.service.pending(self, 0)
        self.sender.send(encoder.encode(StatusSet(status)))  # type: ignore[arg-type]

    def heartbeat(self) -> None:
        """One heartbeat round (every half `heartbeat` interval): after a whole interval without
        a frame, ping; if the next half interval brings nothing either (not even the pong),
        drop the connection. The service runs one loop for every socket instead of aiohttp's
        timer and ping task per socket, and a frame costs one attribute write instead of a
        rescheduled timer."""
        self.silent = silent = self.silent + 1
        if silent == 2:
            self.sender.control(PING)
        elif silent > 2 and not self.closed:
            self.closed = True
            self.sender.abort()

    def replaced(self) -> None:
        self.closed = True
        self.sender.close(REPLACED, "replaced by a newer connection")

    # -- outgoing -----------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        self.sender.send(frame)

    def on_channel(self, raw: bytes) -> None:
        """A server->courier frame from the courier channel: forwarded verbatim."""
        self.sender.send(raw)

    def acked(self, seq: int, again: bool = False) -> None:
        """Ack points up to `seq`; `again`: even if already acked (the courier resent them)."""
        if (seq > self.acked_seq or again) and not self.closed:
            self.acked_seq = seq
            payload = _ACK % seq  # what encoder.encode(Ack(seq=seq)) gives, without building the Struct
            self.sender.send(payload, text_frame(payload))

    def error(self, code: str, message: str, seq: int | None = None, *, action_id: str | None = None,
              state: str | None = None) -> None:
        self.sender.send(encoder.encode(Error(code, message, seq, action_id, state)))

    # -- incoming -----------------------------------------------------------------------

    def on_frame_now(self, raw: bytes, binary: bool) -> bool:
        """The fast lane (tracking/lane.py): apply a location frame as it is parsed, unless
        the handler is busy with an earlier frame. False leaves the frame to the handler
        (anything but a valid location frame: it reports errors and runs actions)."""
        if self.busy or self.closed:
            return False
        try:
            frame = (msgpack_frame_decoder if binary else json_frame_decoder).decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return False
        if not isinstance(frame, Location):
            return False
        self.silent = 0
        self._location(frame)
        return True

    def failed(self) -> None:
        """A frame crashed the fast lane: close, as a crash in the handler would."""
        self.closed = True
        self.sender.close(INTERNAL_ERROR, "internal error")

    async def on_frame(self, raw: bytes, binary: bool) -> None:
        try:
            frame = (msgpack_frame_decoder if binary else json_frame_decoder).decode(raw)
        except msgspec.ValidationError as exc:
            return self._garbage("invalid_frame", str(exc))
        except msgspec.DecodeError:
            return self._garbage("malformed_frame", "frame is not valid JSON (text) or msgpack (binary)")
        if isinstance(frame, Location):
            return self._location(frame)
        unstorable = unstorable_path(msgspec.to_builtins(frame))  # action frames are rare: the walk is cheap
        if unstorable is not None:
            return self._garbage("invalid_frame", f"text must not contain NUL characters ({unstorable})")
        if not self.limiter.allow(self.service.now()):
            self.error("rate_limited", "too many frames; slow down and resend unacked points later")
            return None
        self.garbage = 0
        if isinstance(frame, Hello):
            if frame.vehicle:
                self.vehicle = self.track.vehicle = frame.vehicle
            return None
        await self._action(frame)
        return None

    def _garbage(self, code: str, message: str) -> None:
        self.garbage += 1
        if self.garbage >= self.service.config.garbage_limit:
            self.closed = True
            self.sender.close(POLICY_VIOLATION, "too many malformed frames")
        else:
            self.error(code, message)

    def _location(self, frame: Location) -> None:
        now = self.service.now()
        if not self.limiter.allow(now):
            self.error("rate_limited", "too many frames; slow down and resend unacked points later")
            return
        points = frame.all_points()
        if points is None:
            return self._garbage("invalid_frame", "a location frame needs lat, lng, ts and seq, or points")
        self.garbage = 0
        if len(points) > self.service.config.max_points_per_frame:
            self.error("too_many_points", f"at most {self.service.config.max_points_per_frame} points a frame")
            return
        if not self.point_limiter.allow(now, len(points)):
            self.error("rate_limited", "too many points; resend the unacked ones later")
            return
        self._locations(points, now)

    def _locations(self, points: list[Point], now: float) -> None:
        service = self.service
        config = service.config
        applied = self.track.apply(points, now, config.rules)
        stats = service.stats
        if applied.duplicates:
            stats["points_duplicate"] += applied.duplicates
        for seq, reason in applied.rejected:
            stats["points_rejected"] += 1
            if reason == REJECT_TELEPORT:
                stats["teleports"] += 1
            self.error("point_rejected", reason, seq)
        accepted = applied.accepted
        if accepted:
            stats["points_accepted"] += len(accepted)
            if config.history_writes:
                service.keep_history(self.courier_id, accepted, now)
            moved = False
            for p, ok in accepted:
                if ok:
                    moved = True
                    for arrival in self.geofences.observe(p.lat, p.lng, config.rules):
                        service.run_side(service.record_arrival(self.courier_id, arrival))
            if moved:
                self.moved = True
            service.pending(self, applied.max_seq)
        elif service.coalescer.pending_seq(self.courier_id) is not None:
            service.pending(self, applied.max_seq)  # ack after the pending flush
        else:
            self.acked(applied.max_seq, again=True)  # only duplicates or rejects: nothing to store

    async def _action(self, frame: Status | OfferResponse | Arrived | PickedUp | Delivered) -> None:
        service = self.service
        cid = self.courier_id
        at = service.clock.now()
        aggregate: str | None
        action: CourierEvent
        step: str | None = None  # the order moves with it: refused (error frame, no ack) when it cannot
        if isinstance(frame, Status):
            action, aggregate = CourierStatusChanged(courier_id=cid, status=frame.status), cid
        elif isinstance(frame, OfferResponse):
            action = CourierOfferResponse(courier_id=cid, offer_id=frame.offer_id, accepted=frame.accepted, at=at)
            aggregate = frame.offer_id
        elif isinstance(frame, Arrived):
            return await self._arrived(frame)
        elif isinstance(frame, PickedUp):
            action = CourierPickedUp(courier_id=cid, order_id=frame.order_id, at=at, proof=None)
            aggregate, step = frame.order_id, "picked_up"
        else:
            proof = DeliveryProof(frame.proof.photo_url, frame.proof.code) if frame.proof is not None else None
            action = CourierDelivered(courier_id=cid, order_id=frame.order_id, at=at, proof=proof)
            aggregate, step = frame.order_id, "delivered"
        try:
            await service.record_action(cid, frame.id, action, aggregate, step)
        except DomainError as exc:
            state = exc.extra.get("status")  # the order's state, when the step cannot happen in it
            self.error(exc.code, exc.message, action_id=frame.id, state=state if isinstance(state, str) else None)
            return
        except Exception:
            log.exception("courier action failed")
            self.error("unavailable", "could not record the action; resend it")
            return
        if isinstance(frame, Status) and frame.status != self.track.status:
            self.track.status = frame.status
            self.track.seen = service.now()
            service.pending(self, 0)
        self.sender.send(encoder.encode(Ack(id=frame.id)))

    async def _arrived(self, frame: Arrived) -> None:
        """The app says the courier is at the restaurant or the door. Recorded once per order and courier,
        whoever reports it first: this frame, a resend of it, or the geofence (which also saw it, here or
        on the process that held the socket before a reconnect); the others are acked and write nothing."""
        self.geofences.mark_arrived(frame.order_id, frame.where)  # this socket's geofence need not report it
        try:
            await self.service.record_arrival(self.courier_id, Arrival(frame.order_id, frame.where))
        except Exception:
            log.exception("courier arrival failed")
            self.error("unavailable", "could not record the action; resend it", action_id=frame.id)
            return
        self.sender.send(encoder.encode(Ack(id=frame.id)))


async def _hello(ws: web.WebSocketResponse, service: TrackingService) -> tuple[Principal | None, str | None]:
    """Authenticate from the first frame; close 4401 on timeout or bad credentials."""
    try:
        async with asyncio.timeout(service.config.auth_timeout):
            msg = await ws.receive()
            while msg.type is WSMsgType.PING or msg.type is WSMsgType.PONG:
                if msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
                msg = await ws.receive()
    except TimeoutError:
        await ws.close(code=AUTH_FAILED, message=b"authentication timed out: send a hello frame with a token")
        return None, None
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None, None
    try:
        decoder = msgpack_frame_decoder if msg.type == WSMsgType.BINARY else json_frame_decoder
        hello = decoder.decode(msg.data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        hello = None
    if not isinstance(hello, Hello) or not hello.token:
        await ws.close(code=AUTH_FAILED, message=b"the first frame must be a hello with a token")
        return None, None
    try:
        who = service.authenticate(hello.token)
    except DomainError as exc:
        await ws.close(code=AUTH_FAILED, message=exc.message.encode()[:120])
        return None, None
    return who, hello.vehicle


async def courier_ws(request: web.Request) -> web.WebSocketResponse:
    """The courier socket's handler (routed in tracking/web.py; itself, not wrapped, since every
    coroutine frame on the way stays alive as long as the socket)."""
    service = request.app[TRACKING]
    config = service.config
    # No aiohttp heartbeat (the service's heartbeat loop pings quiet sockets), so pings and
    # pongs come to the loop below.
    ws = LaneSocket(heartbeat=None, autoping=False, max_msg_size=config.max_frame_bytes, compress=False,
                    decode_text=False, writer_limit=64 * 1024, lane=config.fast_lane)
    await ws.prepare(request)
    vehicle = request.query.get("vehicle")
    vehicle = vehicle if vehicle in VEHICLES else None
    who = optional_principal(request)
    if who is None:
        who, hello_vehicle = await _hello(ws, service)
        if who is None:
            return ws
        vehicle = hello_vehicle or vehicle
    if who.role != COURIER:
        await ws.close(code=FORBIDDEN, message=b"only couriers may open this socket")
        return ws
    session = CourierSession(service, ws, who, vehicle, request.transport)
    try:
        await service.attach(session)
        ws.attach_sink(session)  # from here, location frames may skip the queue (tracking/lane.py)
        while not session.closed:
            msg = await ws.receive()
            session.silent = 0
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                session.busy = True
                await session.on_frame(msg.data, kind is WSMsgType.BINARY)
                session.busy = False
            elif kind is WSMsgType.PING:
                session.sender.control(pong_frame(msg.data))
            elif kind in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
        if session.closed:
            # Replaced or policy close: the sender closes after what is queued; wait for it.
            await session.sender.wait_closed()
    finally:
        session.closed = True
        ws.detach_sink()
        await service.detach(session)
        await session.sender.stop()
    return ws
