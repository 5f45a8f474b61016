"""Each websocket's own bounded outgoing queue: a producer (the flusher, the pub/sub hub)
never waits for a socket.

A frame goes straight into the socket's transport when nothing is queued for it and its
write buffer is small (the common case): no task, no await, so a position reaches 1,000
watchers in one pass of plain writes. Only a socket that is behind (its buffer holds more
than `BUFFER_LIMIT`, or frames are queued) gets frames queued and a sender task that waits
for it to drain. A socket that cannot keep up overflows its queue and is closed with 1013
(try again later), so it never slows anyone else. An idle connection holds no task and no
queue.

`text_frame` builds the websocket frame (header + payload) once, so a message for many
sockets is framed once, not once per socket."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque

from aiohttp import WSCloseCode, WSMsgType, web

TRY_AGAIN_LATER = 1013
CLOSE_TIMEOUT_S = 3.0
GOING_AWAY = int(WSCloseCode.GOING_AWAY)
BUFFER_LIMIT = 64 * 1024  # bytes in the transport's buffer above which frames queue instead

_FIN_TEXT = 0x81
_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack


PING = b"\x89\x00"  # an empty ping frame (server -> client, unmasked)


def pong_frame(payload: bytes) -> bytes:
    """The answer to a ping: a pong with the same payload (a control frame's is at most 125 bytes)."""
    data = payload[:125]
    return bytes((0x8A, len(data))) + data


def text_frame(payload: bytes) -> bytes:
    """A server -> client websocket text frame (unmasked, uncompressed, final) carrying `payload`."""
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 65536:
        return _LEN2(_FIN_TEXT, 126, n) + payload
    return _LEN8(_FIN_TEXT, 127, n) + payload


class Sender:
    __slots__ = ("_limit", "_queue", "_reason", "_task", "_transport", "_ws", "close_code", "closing")

    def __init__(self, ws: web.WebSocketResponse, limit: int, transport: asyncio.BaseTransport | None) -> None:
        self._ws = ws
        # Any transport that writes (uvloop's are not asyncio.WriteTransport subclasses).
        self._transport: asyncio.WriteTransport | None = transport if hasattr(transport, "write") else None  # type: ignore[assignment]
        self._limit = limit
        self._queue: deque[bytes | None] | None = None  # only while behind
        self._task: asyncio.Task[None] | None = None
        self._reason = ""
        self.closing = False
        self.close_code: int | None = None

    def send(self, payload: bytes, frame: bytes | None = None) -> bool:
        """Send one JSON text frame (`frame`: the same payload already framed by `text_frame`);
        False if the socket is closing or was too slow."""
        if self.closing:
            return False
        if self._task is None:
            transport = self._transport
            if transport is not None and not transport.is_closing() and not self._ws.closed and \
                    transport.get_write_buffer_size() <= BUFFER_LIMIT:
                transport.write(frame if frame is not None else text_frame(payload))
                return True
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= self._limit:
            self.close(TRY_AGAIN_LATER, "too slow: outgoing queue is full")
            return False
        queue.append(payload)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return True

    def control(self, frame: bytes) -> None:
        """Write a ping or pong frame now (control frames may go between data frames; a socket
        whose buffer is full gets none: it is not reading, and the heartbeat notices)."""
        transport = self._transport
        if not self.closing and transport is not None and not transport.is_closing() and \
                transport.get_write_buffer_size() <= BUFFER_LIMIT:
            transport.write(frame)

    def abort(self) -> None:
        """Drop the connection without a close handshake (the peer stopped answering)."""
        if self._transport is not None:
            self.closing = True
            self._transport.abort()
        else:
            self.close(GOING_AWAY, "no answer to pings")

    def close(self, code: int, reason: str) -> None:
        """Close after what is queued, or at once (dropping it) if the queue is full."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        self._reason = reason
        queue = self._queue
        if queue is not None and len(queue) >= self._limit:
            queue.clear()
            if self._task is not None:
                self._task.cancel()
            self._task = asyncio.create_task(self._close_now())
            return
        if self._task is None:
            self._task = asyncio.create_task(self._close_now())
            return
        if queue is None:
            queue = self._queue = deque()
        queue.append(None)

    async def _run(self) -> None:
        queue = self._queue
        try:
            while queue:
                frame = queue.popleft()
                if frame is None:
                    await self._close_now()
                    return
                await self._ws.send_frame(frame, WSMsgType.TEXT)  # waits while the transport is full
        except (ConnectionError, RuntimeError):
            if queue is not None:
                queue.clear()  # the peer went away; the reader notices too
        finally:
            if self._task is asyncio.current_task():
                self._task = None
                self._queue = None

    async def _close_now(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._ws.close(code=self.close_code or GOING_AWAY, message=self._reason.encode())
        except (TimeoutError, ConnectionError, RuntimeError):
            # The peer does not read: drop the connection instead of waiting for it.
            if self._transport is not None:
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
        self._queue = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
