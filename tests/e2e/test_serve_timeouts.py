"""`serve`'s HTTP server bounds how long a client holds a connection: a request header that
trickles in (slowloris) is cut off after the header timeout, an idle connection after the idle
timeout, and normal requests are served all along."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from fooddispatch.cli import serve_app
from fooddispatch.config import Settings

HEADER_TIMEOUT = 2.0
IDLE_TIMEOUT = 3.0
SLOW_CLIENTS = 200
SLACK = 8.0  # generous: the machine is shared and loaded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[int]:
    port = _free_port()
    stop = asyncio.Event()
    bounded = settings.replace(port=port, http_header_timeout_seconds=HEADER_TIMEOUT,
                               http_idle_timeout_seconds=IDLE_TIMEOUT)
    server = asyncio.create_task(serve_app(bounded, stop, announce=False))
    deadline = time.monotonic() + 60
    while True:
        assert not server.done(), server.exception() if server.done() else None
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    yield port
    stop.set()
    await server


async def _slow_header(port: int, give_up_s: float) -> float | None:
    """Send a request header one byte a second; how long until the server closed the connection
    (None: still open when we gave up)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    started = time.monotonic()
    try:
        for byte in header:
            writer.write(bytes([byte]))
            try:
                await writer.drain()
                if await asyncio.wait_for(reader.read(1), timeout=1.0) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass  # nothing from the server: it still waits for the rest of the header
            except OSError:
                return time.monotonic() - started
            if time.monotonic() - started > give_up_s:
                return None
        return None
    finally:
        writer.close()


async def test_slow_headers_are_cut_off_while_normal_requests_are_served(served: int) -> None:
    port = served
    slow = [asyncio.create_task(_slow_header(port, HEADER_TIMEOUT + SLACK)) for _ in range(SLOW_CLIENTS)]
    served_meanwhile = 0
    async with aiohttp.ClientSession() as session:
        while not all(t.done() for t in slow):
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
                served_meanwhile += 1
            await asyncio.sleep(0.2)
    closed_after = [t.result() for t in slow]
    still_open = sum(1 for s in closed_after if s is None)
    print(f"{SLOW_CLIENTS} slow clients closed after {min(s or 0 for s in closed_after):.1f}.."
          f"{max(s or 0 for s in closed_after):.1f} s; {served_meanwhile} normal requests served meanwhile")
    assert still_open == 0
    assert all(s is not None and s >= HEADER_TIMEOUT - 0.5 for s in closed_after)
    assert served_meanwhile >= 5


async def test_idle_connections_are_closed_after_the_idle_timeout(served: int) -> None:
    port = served
    # A connection that never sends anything, and one kept alive after a response.
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", port)
    kept_reader, kept_writer = await asyncio.open_connection("127.0.0.1", port)
    kept_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await kept_writer.drain()
    status = await asyncio.wait_for(kept_reader.readline(), timeout=30)
    assert b" 200 " in status
    started = time.monotonic()

    async def closed(reader: asyncio.StreamReader) -> float:
        while await reader.read(65536) != b"":
            pass
        return time.monotonic() - started

    silent_s, kept_s = await asyncio.wait_for(asyncio.gather(closed(silent_reader), closed(kept_reader)),
                                              timeout=IDLE_TIMEOUT + SLACK)
    print(f"idle connections closed after {silent_s:.1f} s (silent) and {kept_s:.1f} s (kept alive)")
    assert kept_s >= IDLE_TIMEOUT - 0.5  # idle for the idle time, not cut off sooner
    silent_writer.close()
    kept_writer.close()
