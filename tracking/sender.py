"""Each websocket's own outgoing queue and sender task: a producer (the flusher, the
pub/sub hub) never waits for a socket. A socket that cannot keep up overflows its bounded
queue and is closed with 1013 (try again later), so it never slows anyone else."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSCloseCode, WSMsgType, web

TRY_AGAIN_LATER = 1013
CLOSE_TIMEOUT_S = 3.0


class Sender:
    __slots__ = ("_queue", "_reason", "_task", "_transport", "_ws", "close_code", "closing")

    def __init__(self, ws: web.WebSocketResponse, limit: int, transport: asyncio.BaseTransport | None) -> None:
        self._ws = ws
        self._transport = transport
        self._reason = ""
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(limit)
        self.closing = False
        self.close_code: int | None = None
        self._task = asyncio.create_task(self._run())

    def send(self, frame: bytes) -> bool:
        """Queue one JSON text frame; False if the socket is closing or was too slow."""
        if self.closing:
            return False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close(TRY_AGAIN_LATER, "too slow: outgoing queue is full")
            return False
        return True

    def close(self, code: int, reason: str) -> None:
        """Close after what is queued (or at once if the queue is full)."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        self._reason = reason
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        if self._queue.full():
            self._task.cancel()
            self._task = asyncio.create_task(self._close_now(code, reason))

    async def _run(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                if frame is None:
                    break
                await self._ws.send_frame(frame, WSMsgType.TEXT)
        except (ConnectionError, RuntimeError):
            return  # the peer went away; the reader notices too
        if self.close_code is not None:
            await self._close_now(self.close_code, self._reason)

    async def _close_now(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._ws.close(code=code, message=reason.encode())
        except (TimeoutError, ConnectionError, RuntimeError):
            # The peer does not read: drop the connection instead of waiting for it.
            if isinstance(self._transport, asyncio.Transport):
                self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until what was queued before `close` is sent and the close frame is out."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop sending (the socket is gone)."""
        self.closing = True
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


GOING_AWAY = int(WSCloseCode.GOING_AWAY)
