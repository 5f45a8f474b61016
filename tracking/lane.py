"""The courier socket's fast lane: a location frame is applied as soon as it is parsed.

aiohttp hands every websocket message to the handler through a queue: the parser appends
it, resolves the handler's future, and the handler's task wakes up through the whole
middleware chain. At 30k frames/s that hand-over was about a tenth of the ingest server's
CPU (BENCHMARKS.md). A location frame needs no await (its points are validated and handed to
the flusher), so when the handler is idle and nothing is queued, the frame is applied from
the parser's callback instead. Everything else (actions, pings, close, malformed frames)
still goes through the queue to the handler, and so does any frame that arrives while the
handler is busy with an earlier frame or frames are queued: frames are applied in the order
the courier sent them.

This replaces two aiohttp internals (the reader's data queue and parser) right after the
handshake, as aiohttp 3.14 lays them out (3.11-3.13 neither keep the parser on the response
nor take a callback in set_parser; pyproject.toml asks for 3.14). If they are not what this
code expects, the socket keeps aiohttp's own and every frame takes the queue; a test checks
that the lane is on with the installed aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

try:  # aiohttp >= 3.11 has these classes; the swap below needs 3.14's layout
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
    from aiohttp.web_ws import DEFAULT_CHUNK_SIZE
except ImportError:  # pragma: no cover - another aiohttp layout: no lane
    WebSocketDataQueue = WebSocketReader = None  # type: ignore[assignment,misc]

_TEXT, _BINARY = WSMsgType.TEXT, WSMsgType.BINARY
INTERNAL_ERROR = 1011


class FrameSink(Protocol):
    def on_frame_now(self, raw: bytes, binary: bool) -> bool:
        """Apply the frame now if it needs no await; False leaves it to the handler."""

    def failed(self) -> None:
        """Applying a frame raised: close the socket."""


if WebSocketDataQueue is not None:
    class _LaneQueue(WebSocketDataQueue):  # type: ignore[misc,valid-type]
        """aiohttp's queue, with a sink that may take a frame before it is queued."""

        sink: FrameSink | None = None
        taken = 0  # frames the sink applied (they never reached the queue)

        def feed_data(self, data: Any, size: int) -> None:
            sink = self.sink
            if sink is not None and not self._buffer:
                kind = data[0]
                if kind is _TEXT or kind is _BINARY:
                    try:
                        if sink.on_frame_now(data[1], kind is _BINARY):
                            self.taken += 1
                            return
                    except Exception:
                        log.exception("courier frame failed")
                        sink.failed()
                        return
            WebSocketDataQueue.feed_data(self, data, size)


class LaneSocket(web.WebSocketResponse):
    """A websocket response whose frames can go to a sink before the queue (see module doc).
    `lane` is the queue while the lane is on, else None (the socket works as aiohttp's)."""

    def __init__(self, *args: Any, lane: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._want_lane = lane and WebSocketDataQueue is not None
        self.lane: Any = None

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        handler = request.protocol
        # Bytes that came with the upgrade request are parsed by aiohttp's parser inside
        # _post_start; swapping parsers after that could drop half a frame, so no lane then.
        tail = getattr(handler, "_message_tail", b"")
        super()._post_start(request, protocol, writer)
        if not self._want_lane or tail:
            return
        try:
            if getattr(handler, "_payload_parser", None) is not self._parser:
                return
            queue = _LaneQueue(handler, DEFAULT_CHUNK_SIZE, loop=asyncio.get_running_loop())
            parser = WebSocketReader(queue, self._max_msg_size, compress=bool(self._compress),
                                     decode_text=self._decode_text)
            callback = handler._data_received_cb
        except (AttributeError, TypeError) as exc:  # pragma: no cover - an aiohttp we don't know
            log.warning("courier socket fast lane unavailable (%s); frames take aiohttp's queue", exc)
            return
        handler._payload_parser = None  # set_parser insists on being called once
        handler.set_parser(parser, data_received_cb=callback)
        self._reader, self._parser = queue, parser
        self.lane = queue

    def attach_sink(self, sink: FrameSink) -> None:
        if self.lane is not None:
            self.lane.sink = sink

    def detach_sink(self) -> None:
        if self.lane is not None:
            self.lane.sink = None
