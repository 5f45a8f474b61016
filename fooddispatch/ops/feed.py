"""The console's live feed: one per process, shared by every open console.

Inputs, all public contracts: the durable event stream (read-only tail, XREAD, no consumer group:
the projection is in memory and rebuilt from the stream's retained history at start), the
`{prefix}ops` pub/sub channel (forwarded to consoles as it comes), and courier positions from
geo's live courier index (`geo.live.CourierIndex.courier_states`). Every second a snapshot is
encoded once and queued to each console; a console whose queue is full is dropped, never waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any, cast

import redis.asyncio as aioredis
from aiohttp import web

from fooddispatch.ops.messages import ConsoleSnapshot
from fooddispatch.ops.projection import Projection
from geo.live import CourierIndex
from kernel.fanout import Subscriber
from kernel.http import encode
from kernel.outbox import decode_event
from kernel.tasks import BackgroundTasks, TaskMetrics

QUEUE_MAX = 32
SNAPSHOT_EVERY_S = 1.0


class OpsFeed:
    def __init__(self, redis: aioredis.Redis, stream: str, prefix: str, region: str) -> None:
        self.redis, self.stream, self.prefix, self.region = redis, stream, prefix, region
        self.projection = Projection()
        self.consoles: dict[web.WebSocketResponse, asyncio.Queue[bytes]] = {}
        self.index = CourierIndex(redis, prefix, region)
        self._tasks = BackgroundTasks()
        self._last = "0"  # the last stream entry applied

    @property
    def channel(self) -> str:
        return f"{self.prefix}ops"

    def start(self, metrics: TaskMetrics | None = None) -> None:
        self._tasks = BackgroundTasks(metrics)
        self._tasks.every("ops-events", 0.0, self._read_events, backoff=1.0)
        self._tasks.supervise("ops-channel", self._channel, backoff=1.0)
        self._tasks.every("ops-snapshots", SNAPSHOT_EVERY_S, self._send_snapshot, backoff=1.0)

    async def stop(self) -> None:
        await self._tasks.stop()
        for ws in list(self.consoles):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server shutting down")

    async def _read_events(self) -> None:
        """Apply what the stream has after the last entry applied (waiting up to a second for it)."""
        response = await self.redis.xread({self.stream: self._last}, count=500, block=1000)
        # redis-py types the RESP2 and RESP3 replies at once; our client speaks RESP2 (its default):
        # [[stream, [(entry id, fields), ...]], ...], or [] when the block times out.
        for _stream, entries in cast(list[list[Any]], response) or []:
            for entry_id, fields in entries:
                self._last = entry_id
                raw = fields.get(b"e") or fields.get("e")
                if raw is None:
                    continue
                try:
                    event = decode_event(raw)
                except ValueError:
                    continue
                self.projection.apply(event.type, dict(event.data), event.occurred_at.timestamp())

    async def _channel(self) -> None:
        subscriber = Subscriber(self.redis, self._live)  # sharded on a cluster (kernel.fanout)
        try:
            await subscriber.subscribe(self.channel)
            await subscriber.run()
        finally:
            await subscriber.close()

    def _live(self, _channel: bytes, data: bytes) -> None:
        with contextlib.suppress(ValueError, TypeError):
            parsed = json.loads(data)
            if parsed.get("type") == "courier_position" and parsed.get("courier_id"):
                self.projection.position(parsed["courier_id"], float(parsed["lat"]), float(parsed["lng"]))
        self.broadcast(b'{"type":"live","message":' + data + b"}")

    async def _send_snapshot(self) -> None:
        await self.refresh_positions()
        if self.consoles:
            self.broadcast(encode(self.snapshot()))

    async def refresh_positions(self) -> None:
        ids = list(self.projection.couriers)
        if not ids:
            return
        states = await self.index.courier_states(ids)
        for courier_id, live in states.items():
            state = live.state
            if state is None or state.lat is None or state.lng is None:
                continue
            self.projection.position(courier_id, state.lat, state.lng, state.status, state.vehicle)
            courier = self.projection.couriers[courier_id]
            if live.order_ids or state.status in {"offline", "stale"}:
                courier.order_ids = list(live.order_ids)

    def snapshot(self) -> ConsoleSnapshot:
        return self.projection.frame(time.time(), self.region)

    def broadcast(self, payload: bytes) -> None:
        for ws, queue in list(self.consoles.items()):
            try:
                queue.put_nowait(payload)
            except asyncio.QueueFull:
                self.consoles.pop(ws, None)
                asyncio.create_task(ws.close(code=1013, message=b"console too slow"))  # noqa: RUF006

    async def serve(self, ws: web.WebSocketResponse) -> None:
        """Send the first snapshot, then whatever is queued, until the console goes away."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_MAX)
        await self.refresh_positions()
        queue.put_nowait(encode(self.snapshot()))
        self.consoles[ws] = queue

        async def drain_incoming() -> None:
            async for _msg in ws:
                pass  # the console only listens

        reader = asyncio.create_task(drain_incoming())
        try:
            while not ws.closed and not reader.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await ws.send_str(getter.result().decode())
        finally:
            self.consoles.pop(ws, None)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
