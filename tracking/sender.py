"""Each websocket's own bounded outgoing queue: a producer (the flusher, the pub/sub hub)
never waits for a socket. A sender task exists only while there is something to send
(an idle connection costs no task). A socket that cannot keep up overflows its queue and
is closed with 1013 (try again later), so it never slows anyone else."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from aiohttp import WSCloseCode, WSMsgType, web

TRY_AGAIN_LATER = 1013
CLOSE_TIMEOUT_S = 3.0
GOING_AWAY = int(WSCloseCode.GOING_AWAY)


class Sender:
    __slots__ = ("_limit", "_queue", "_reason", "_task", "_transport", "_ws", "close_code", "closing")

    def __init__(self, ws: web.WebSocketResponse, limit: int, transport: asyncio.BaseTransport | None) -> None:
        self._ws = ws
        self._transport = transport
        self._limit = limit
        self._queue: deque[bytes | None] = deque()
        self._task: asyncio.Task[None] | None = None
        self._reason = ""
        self.closing = False
        self.close_code: int | None = None

    def send(self, frame: bytes) -> bool:
        """Queue one JSON text frame; False if the socket is closing or was too slow."""
        if self.closing:
            return False
        if len(self._queue) >= self._limit:
            self.close(TRY_AGAIN_LATER, "too slow: outgoing queue is full")
            return False
        self._queue.append(frame)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return True

    def close(self, code: int, reason: str) -> None:
        """Close after what is queued, or at once (dropping it) if the queue is full."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        self._reason = reason
        if len(self._queue) >= self._limit:
            self._queue.clear()
            if self._task is not None:
                self._task.cancel()
            self._task = asyncio.create_task(self._close_now())
            return
        self._queue.append(None)
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._queue:
                frame = self._queue.popleft()
                if frame is None:
                    await self._close_now()
                    return
                await self._ws.send_frame(frame, WSMsgType.TEXT)
        except (ConnectionError, RuntimeError):
            self._queue.clear()  # the peer went away; the reader notices too
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _close_now(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._ws.close(code=self.close_code or GOING_AWAY, message=self._reason.encode())
        except (TimeoutError, ConnectionError, RuntimeError):
            # The peer does not read: drop the connection instead of waiting for it.
            if isinstance(self._transport, asyncio.Transport):
                self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until what was queued before `close` is sent and the close frame is out."""
        task = self._task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def stop(self) -> None:
        """Stop sending (the socket is gone)."""
        self.closing = True
        self._queue.clear()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
