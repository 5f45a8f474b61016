"""`serve`'s HTTP server: aiohttp's, with the time a client may hold a connection bounded.

aiohttp closes a connection with no request in progress after `keepalive_timeout` (counted
from the connection's start and from each response; its default is an hour), which we set to
the idle bound. It has no bound on a request header in progress beyond that: a client that
sends a byte of header now and then (slowloris) holds its connection until the idle time
runs out, counted from the connection's start. `HeaderTimeoutHandler` closes a connection
whose request header is not complete `header_timeout` seconds after its first byte arrived.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


class HeaderTimeoutHandler(RequestHandler):
    """aiohttp's protocol, plus the header bound (aiohttp >= 3.10: `_waiter` is the future the
    handler loop waits on for the next request, `_messages` the parsed requests not yet handled)."""

    __slots__ = ("_header_timeout", "_header_timer")

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages or self._force_close or self._close:
            self._stop_header_timer()  # a whole header arrived (or the connection is going)
        elif self._header_timer is None and self._waiting_for_request():
            # Bytes of a request header, not the whole of it: from now it has `header_timeout`.
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_timed_out)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _waiting_for_request(self) -> bool:
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._waiting_for_request() and not self._messages:
            self.force_close()

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None


class HeaderTimeoutServer(web.Server):
    """A `web.Server` whose connections get `HeaderTimeoutHandler`."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        return HeaderTimeoutHandler(self, loop=self._loop, header_timeout=self.header_timeout, **self._kwargs)


class BoundedAppRunner(web.AppRunner):
    """`web.AppRunner` with the header bound and the idle bound (`keepalive_timeout`)."""

    def __init__(self, app: web.Application, *, header_timeout: float, idle_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=idle_timeout, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return HeaderTimeoutServer(
            server.request_handler, request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation, loop=server._loop,
            header_timeout=self._header_timeout, **server._kwargs,
        )
