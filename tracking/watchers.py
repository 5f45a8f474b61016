"""Customer and restaurant live views of an order (`GET /v1/orders/{id}/track`).

Each process keeps one `OrderFeed` per watched order: one subscription to the order's
channel, the order's tracking state (`OrderView`), and its watchers. A message is decoded
once per process and forwarded as the same bytes to every watcher's own queue; a watcher
whose queue overflows is closed with 1013 and never delays the others. The message is
framed once and written to each socket without an await (see tracking/sender.py).

A courier position reaches a watcher only if it comes from the courier assigned to the
order now and the order is between assignment and delivery: the publisher (the courier's
session) sends positions only to the orders it carries, and the feed checks again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import WSMsgType, web

from kernel.errors import NotFound
from kernel.http import CUSTOMER, OPERATOR, STAFF, Principal
from tracking import store
from tracking.messages import CourierCard, CourierPosition, OrderStatus, encoder, order_message_decoder
from tracking.model import OrderView, in_window
from tracking.sender import Sender, text_frame
from tracking.service import TrackingService

log = logging.getLogger(__name__)


ERASED = 4410  # close code: the customer whose data the socket shows was erased (reason: why, as an error code)
ACCOUNT_ERASED = "account_erased"


class Watcher:
    """One socket watching an order. `customer_id`: the customer whose data it shows to them or to their
    link's holder (None for staff and operators); `gone`: the close reason if that customer is erased."""

    __slots__ = ("customer_id", "gone", "sender", "ws")

    def __init__(self, ws: web.WebSocketResponse, sender: Sender, customer_id: str | None = None,
                 gone: str = ACCOUNT_ERASED) -> None:
        self.ws = ws
        self.sender = sender
        self.customer_id = customer_id
        self.gone = gone


class OrderFeed:
    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.view = OrderView(order_id, "placed", None, -1)
        self.watchers: set[Watcher] = set()
        self.listener = self.on_message

    def on_message(self, raw: bytes) -> None:
        message = order_message_decoder.decode(raw)
        if isinstance(message, OrderStatus):
            if message.status is not None and message.version is not None and not self.view.apply_status(
                message.status, message.courier_id, message.version
            ):
                return  # older than what we have
        elif not self.view.allows_position_of(message.courier_id):
            return
        frame = text_frame(raw)  # framed once for every watcher
        dropped = [w for w in self.watchers if not w.sender.send(raw, frame)]
        for watcher in dropped:
            self.watchers.discard(watcher)


class Watchers:
    """The process's order feeds."""

    def __init__(self, service: TrackingService) -> None:
        self.service = service
        self.feeds: dict[str, OrderFeed] = {}

    @property
    def count(self) -> int:
        return sum(len(f.watchers) for f in self.feeds.values())

    async def join(self, order_id: str, watcher: Watcher, known: store.TrackedOrder | None = None) -> None:
        """Subscribe first, then read the projection (waiting for a change in flight to
        commit), so no change falls in between. `known`: the order as the socket was authorized
        with, shown while the projection has not seen the order yet (its first change follows)."""
        service = self.service
        feed = self.feeds.get(order_id)
        if feed is None:
            feed = self.feeds[order_id] = OrderFeed(order_id)
            await service.hub.subscribe(service.channels.order(order_id), feed.listener)
        feed.watchers.add(watcher)
        row = await store.tracked_order(service.pool, order_id, settled=True) or known
        if row is None:
            return
        feed.view.apply_status(row.status, row.courier_id, row.version)
        view = feed.view
        watcher.sender.send(encoder.encode(
            OrderStatus(order_id, row.updated_at, view.status, view.version, view.courier_id)
        ))
        if in_window(view.status, view.courier_id) and view.courier_id and service.config.redis_writes:
            region = row.region or service.config.region
            live = (await service.index(region).courier_states([view.courier_id])).get(view.courier_id)
            state = live.state if live else None
            if state is not None and state.lat is not None and state.lng is not None and \
                    feed.view.allows_position_of(view.courier_id):
                at = datetime.fromtimestamp(state.ts or state.seen, UTC)
                watcher.sender.send(encoder.encode(CourierPosition(
                    order_id, view.courier_id, state.lat, state.lng, at, state.heading, state.speed,
                    courier=CourierCard(vehicle=state.vehicle),
                )))

    async def leave(self, order_id: str, watcher: Watcher) -> None:
        feed = self.feeds.get(order_id)
        if feed is None:
            return
        feed.watchers.discard(watcher)
        if not feed.watchers:
            del self.feeds[order_id]
            await self.service.hub.unsubscribe(self.service.channels.order(order_id), feed.listener)

    def close_customer(self, customer_id: str) -> int:
        """An erased customer's sockets on this process close (`ERASED`); how many."""
        found = [w for feed in self.feeds.values() for w in feed.watchers if w.customer_id == customer_id]
        for watcher in found:
            watcher.sender.close(ERASED, watcher.gone)
        return len(found)

    def close_all(self, code: int, reason: str) -> None:
        for feed in self.feeds.values():
            for watcher in feed.watchers:
                watcher.sender.close(code, reason)


def may_watch(who: Principal, order: store.TrackedOrder) -> bool:
    if who.role == OPERATOR:
        return True
    if who.role == STAFF:
        # A store-scoped key (a tablet's) watches its own store's orders only.
        return (order.tenant_id is not None and who.tenant_id == order.tenant_id
                and who.may_act_for_store(order.store_id or ""))
    return order.customer_id is not None and who.account_id == order.customer_id


async def find_order(service: TrackingService, order_id: str) -> store.TrackedOrder | None:
    order = await store.tracked_order(service.pool, order_id)
    if order is None or order.customer_id is None:
        # Just placed: the projection learns of the order from its event, a moment after the
        # checkout's 201 (or holds a placeholder a dispatch event made); orders has it committed.
        order = await service.order_at_source(order_id) or order
    return order


async def order_socket(request: web.Request, service: TrackingService, watchers: Watchers,
                       who: Principal) -> web.WebSocketResponse:
    order_id = request.match_info["order_id"]
    order = await find_order(service, order_id)
    if order is None or not may_watch(who, order):
        raise NotFound("no such order", param="order_id")  # the same answer for someone else's order
    mine = who.account_id if who.role == CUSTOMER else None  # closed if the customer is erased
    return await serve_watcher(request, service, watchers, order_id, order, customer_id=mine)


SenderFactory = Callable[[web.WebSocketResponse, int, asyncio.BaseTransport | None], Sender]


async def serve_watcher(request: web.Request, service: TrackingService, watchers: Watchers, order_id: str,
                        order: store.TrackedOrder, sender: SenderFactory = Sender, *, customer_id: str | None = None,
                        gone: str = ACCOUNT_ERASED) -> web.WebSocketResponse:
    """Serve an authorized watcher of the order until its socket closes; `sender` builds the socket's
    sender and may reshape what it is sent (a tracking link's watcher sees less, tracking/public_view.py).
    `customer_id`: whose data the socket shows (closed with `ERASED` and `gone` when they are erased)."""
    ws = web.WebSocketResponse(heartbeat=service.config.heartbeat, max_msg_size=4096, compress=False,
                               decode_text=False, writer_limit=64 * 1024)
    await ws.prepare(request)
    watcher = Watcher(ws, sender(ws, service.config.watcher_queue, request.transport), customer_id, gone)
    try:
        await watchers.join(order_id, watcher, order)
        while not watcher.sender.closing:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
        if watcher.sender.closing:
            await watcher.sender.wait_closed()
    finally:
        await watchers.leave(order_id, watcher)
        await watcher.sender.stop()
    return ws
