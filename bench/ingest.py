"""Live tracking ingest benchmark: courier websockets -> validation -> live index in Redis.

    .venv/bin/python bench/ingest.py                  # 2,000 couriers, ~2.5 minutes (~2 with --no-profile)
    .venv/bin/python bench/ingest.py --couriers 5000  # the issue's default size

Starts embedded PostgreSQL and Redis in a temporary folder, then for each measured setup runs
the server (one process, the real app) and a load generator (another process: plain non-blocking
sockets on one epoll loop; the burst and fan-out phases use the `websockets` client library) and
reads the server's CPU and RSS with psutil. Prints:
- baseline (b): Redis's own ceiling for the same commands through `redis-cli --pipe`
  (three plain commands per update, and the flush script with 1,000 updates per call);
- baseline (a): the server with Redis (and history) writes switched off: parse + validate,
  at saturation, and open loop at the full server's judged latency rate (below) and at 80 % of
  its own saturation: how much of the latency budget the shared path already takes;
- the full server: stored (acked) points/s at saturation; p50/p99 frame->ack at three offered
  rates (open loop, one point per frame): 80 % of the issue's end-to-end target (0.8 x 0.66 x
  baseline (a), the rate the issue's latency target is set at), 80 % of the saturation measured
  in this run, and, for information, 80 % of the issue's own planning figure (~20k points/s);
  CPU % of the server, the load generator, Redis and PostgreSQL (the last three share the
  second core), RSS per idle connection, peak RSS under burst senders, fan-out of one position
  to 1,000 watchers (p50/p99);
- a cProfile of the full server at saturation (top functions by own time);
- the CPU cost of one loopback TCP send (an ack), which differs a lot between machines.

`--lane off` runs the server without the courier socket's fast lane (tracking/lane.py) and
`--gc untuned` with Python's default collector, to measure what each is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECRET = "bench-secret-0123456789abcdefghijklmnop"
PREFIX = "bench:"
REGION = "bench"
LAT, LNG = 52.52, 13.405


# -- shared ------------------------------------------------------------------------------


def token_for(account_id: str, role: str) -> str:
    from fooddispatch.identity import Tokens
    from kernel.http import Principal

    return Tokens({"k1": SECRET}, "k1", 86400).issue(Principal(account_id, role, name="Bench Courier"))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# -- server process ------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    import cProfile
    import gc
    import pstats

    from aiohttp import web

    from fooddispatch.app import create_app
    from fooddispatch.components.tracking import TRACKING_CONFIG
    from fooddispatch.config import Settings
    from fooddispatch.logs import configure_logging
    from tracking.service import TrackingConfig

    configure_logging("error", json_lines=True)
    settings = Settings(
        data_dir=Path(args.data), database_url=args.db, redis_url=args.redis, port=args.port, jwt_secret=SECRET,
        vault_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", redis_prefix=PREFIX, region=REGION,
        rate_limit_per_minute=10_000_000, rate_limit_burst=10_000_000, tenant_rate_limit_per_minute=10_000_000,
        db_pool_min=2, db_pool_max=8, log_level="error",
    )
    full = args.mode == "full"
    app = create_app(settings)
    app[TRACKING_CONFIG] = TrackingConfig(region=REGION, redis_writes=full, history_writes=full,
                                          frame_rate=1000, frame_burst=1000, point_rate=50, point_burst=1200,
                                          courier_queue=256, watcher_queue=256, fast_lane=args.lane == "on",
                                          **({"flush_interval": args.flush_interval} if args.flush_interval else {}))
    profiler = cProfile.Profile() if args.profile else None

    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - gc_started[0])

    lags: list[float] = []

    async def watch_loop() -> None:
        """How late a 5 ms timer fires: the longest stretches the loop did not get round to it."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    def stalls() -> dict[str, Any]:
        out: dict[str, Any] = {f"gc{g}": [len(p), round(1000 * sum(p), 1), round(1000 * max(p, default=0), 1)]
                               for g, p in pauses.items()}
        ordered = sorted(lags)
        out["loop_lag_ms_p50_p99_max"] = [round(1000 * pct(ordered, q), 1) for q in (0.5, 0.99)] + \
            [round(1000 * max(ordered, default=0), 1)]
        return out

    async def main() -> None:
        gc.callbacks.append(on_gc)
        lag_task = asyncio.create_task(watch_loop())
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=8192)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        if args.gc == "untuned":
            # The collector as Python sets it up (the app tunes it at startup, see
            # fooddispatch/app.py): to measure what the tuning is worth.
            gc.unfreeze()
            gc.set_threshold(700, 10, 10)
        print("READY", flush=True)
        if profiler:
            profiler.enable()
        await stop.wait()
        lag_task.cancel()
        print("STALLS " + json.dumps(stalls()), flush=True)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(22)
            print("PROFILE END", flush=True)
        await runner.cleanup()

    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


# -- load generator process ---------------------------------------------------------------
#
# The generator must not be the bottleneck, so it is not an asyncio/websockets client: plain
# non-blocking sockets on one epoll loop, frames built with one format string and sent with
# an all-zero mask (valid framing; the payload needs no XOR), acks found by a byte search.
# It costs a few microseconds per frame, so one process offers 20k+ frames/s.


def ws_handshake(sock: Any, path: str, token: str) -> bytes:
    """Blocking websocket upgrade on `sock`; returns any bytes read past the response headers."""
    import base64

    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    return rest


def ws_client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client -> server frame, masked with the all-zero key (so the payload is sent as is)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, 0x80 | n)) + b"\0\0\0\0" + payload
    if n < 65536:
        return bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big") + b"\0\0\0\0" + payload
    return bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big") + b"\0\0\0\0" + payload


def ws_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete server frames (unmasked) off the front of `buf`."""
    out = []
    while len(buf) >= 2:
        n, pos = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, pos = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, pos = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < pos + n:
            break
        out.append((buf[0] & 0x0F, bytes(buf[pos:pos + n])))
        del buf[:pos + n]
    return out


class LeanCourier:
    __slots__ = ("buf", "i", "inflight", "out", "seq", "sock")

    def __init__(self, i: int, sock: Any, rest: bytes) -> None:
        from collections import deque

        self.i = i
        self.sock = sock
        self.buf = bytearray(rest)
        self.out = b""  # bytes the socket did not take yet
        self.seq: int | None = None  # known after the server's first ack
        self.inflight: deque[tuple[int, float]] = deque()


def load(args: argparse.Namespace) -> None:
    import select
    import socket

    path = "/v1/courier/ws"
    couriers: list[LeanCourier] = []
    for i in range(args.couriers):
        sock = socket.create_connection(("127.0.0.1", args.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rest = ws_handshake(sock, path, token_for(f"cou_bench{i:06d}", "courier"))
        sock.setblocking(False)
        couriers.append(LeanCourier(i, sock, rest))
    by_fd = {c.sock.fileno(): c for c in couriers}
    ep = select.epoll()
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    perf = time.perf_counter
    stats = {"record": False, "acked": 0, "errors": 0}
    latencies: list[float] = []
    mode = "idle"

    def frames_for(c: LeanCourier, k: int, now: float) -> bytes:
        assert c.seq is not None
        i = c.i
        lat, lng = LAT + (i % 100) * 0.002, LNG + (i // 100) * 0.002
        ts = time.time()
        parts = []
        for _ in range(k):
            c.seq += 1
            c.inflight.append((c.seq, now))
            payload = (f'{{"type":"location","lat":{lat + (c.seq % 7) * 1e-5:.6f},"lng":{lng:.6f},"ts":{ts:.3f},'
                       f'"seq":{c.seq},"accuracy":6.0,"speed":4.2}}').encode()
            parts.append(ws_client_frame(payload))
        return b"".join(parts)

    def send(c: LeanCourier, data: bytes) -> None:
        data = c.out + data
        try:
            sent = c.sock.send(data)
        except BlockingIOError:
            sent = 0
        c.out = data[sent:]

    def poll(timeout: float) -> None:
        """Read what arrived; record frame->ack latency; in saturate mode, refill each window."""
        events = ep.poll(timeout)
        now = perf()
        for fd, _ev in events:
            c = by_fd[fd]
            try:
                data = c.sock.recv(262144)
            except BlockingIOError:
                continue
            if not data:
                ep.unregister(fd)
                continue
            c.buf += data
            done = 0
            for opcode, payload in ws_frames(c.buf):
                if opcode == 0x9:
                    send(c, ws_client_frame(payload, 0xA))  # pong
                    continue
                if opcode != 0x1:
                    continue
                if b'"error"' in payload:
                    stats["errors"] += 1
                at = payload.find(b'"seq":')
                if b'"ack"' not in payload or at < 0:
                    continue
                end = at + 6
                while payload[end:end + 1].isdigit():
                    end += 1
                seq = int(payload[at + 6:end])
                if c.seq is None:
                    c.seq = seq
                    continue
                inflight = c.inflight
                while inflight and inflight[0][0] <= seq:
                    sent_at = inflight.popleft()[1]
                    done += 1
                    if stats["record"]:
                        latencies.append(now - sent_at)
            if stats["record"]:
                stats["acked"] += done
            if done and mode == "saturate":
                send(c, frames_for(c, args.window - len(c.inflight), now))
        for c in couriers:
            if c.out:
                send(c, b"")

    def mark(text: str) -> None:
        print(text, flush=True)

    deadline = perf() + 30
    while any(c.seq is None for c in couriers) and perf() < deadline:
        poll(0.05)
    mark("PHASE idle")  # the parent samples RSS with every socket open and quiet
    idle_until = perf() + 3
    while perf() < idle_until:
        poll(0.1)
    mark("END idle")

    def measure(name: str, seconds: float, rate: float = 0.0) -> dict[str, float]:
        nonlocal mode
        mode = name
        started = perf()
        if name == "saturate":
            for c in couriers:
                send(c, frames_for(c, args.window, started))
        sent = 0
        record_at, stop_at = started + 1.0, started + 1.0 + seconds  # 1 s warm-up
        recorded_from, sent_from = 0.0, 0
        rr = 0
        n = len(couriers)
        while True:
            now = perf()
            if not stats["record"] and now >= record_at:
                latencies.clear()
                stats["acked"], stats["record"] = 0, True
                recorded_from, sent_from = now, sent
                mark(f"PHASE {name}")
            if now >= stop_at:
                break
            if rate:
                due = int((now - started) * rate) - sent
                for _ in range(min(due, n)):
                    c = couriers[rr]
                    rr = (rr + 1) % n
                    send(c, frames_for(c, 1, now))
                    sent += 1
            poll(0.002 if rate else 0.01)
        elapsed = perf() - recorded_from
        stats["record"] = False
        mark(f"END {name}")
        out = {"points_per_s": stats["acked"] / elapsed, "p50_ms": pct(latencies, 0.5) * 1000,
               "p99_ms": pct(latencies, 0.99) * 1000, "samples": len(latencies)}
        if rate:
            out["offered_per_s"] = (sent - sent_from) / elapsed
            out["target"] = rate
        return out

    def drain() -> None:
        """Back to idle until every frame in flight is acked, so the next phase starts clean."""
        nonlocal mode
        mode = "idle"
        until = perf() + 15
        while any(c.inflight or c.out for c in couriers) and perf() < until:
            poll(0.05)
        for c in couriers:
            c.inflight.clear()

    result: dict[str, Any] = {"saturate": measure("saturate", args.duration)}
    drain()
    if args.latency:
        # Two open-loop rates: 80 % of the issue's end-to-end target (0.8 x 0.66 x baseline (a):
        # passed in, or for baseline (a) itself the share of this run's saturation), and 80 % of
        # this server's own saturation.
        issue_rate = args.issue_rate or args.issue_share * result["saturate"]["points_per_s"]
        if issue_rate:
            result["rate_issue"] = measure("rate_issue", args.duration, issue_rate)
            drain()
        if args.planned_rate:
            result["rate_planned"] = measure("rate_planned", args.duration, args.planned_rate)
            drain()
        result["rate_sat"] = measure("rate_sat", args.duration, result["saturate"]["points_per_s"] * 0.8)
        drain()
    result["errors"] = stats["errors"]
    if args.burst:
        result["burst"] = asyncio.run(answering_pings(burst(args, f"ws://127.0.0.1:{args.port}{path}"), poll))
    if args.fanout:
        result["fanout"] = asyncio.run(answering_pings(fanout(args), poll))
    for c in couriers:
        c.sock.close()
    print("RESULT " + json.dumps(result), flush=True)


async def answering_pings(phase: Any, poll: Callable[[float], None]) -> Any:
    """Run an asyncio phase while the lean couriers stay connected and answer the server's
    pings. Without this they go quiet during the burst and fan-out phases, and the server's
    heartbeat drops all 2,000 of them at once, somewhere in the fan-out window."""
    async def keep_answering() -> None:
        while True:
            poll(0)
            await asyncio.sleep(0.05)

    pinger = asyncio.create_task(keep_answering())
    try:
        return await phase
    finally:
        pinger.cancel()


async def burst(args: argparse.Namespace, url: str) -> dict[str, float]:
    """200 couriers replaying 60 KB frames (500 points each) as fast as the socket takes them."""
    from websockets.asyncio.client import connect

    n = 200
    headers = [{"Authorization": f"Bearer {token_for(f'cou_burst{i}', 'courier')}"} for i in range(n)]
    sockets = [await connect(url, additional_headers=headers[i], compression=None, ping_interval=None,
                             max_queue=16) for i in range(n)]
    print("PHASE burst", flush=True)
    stop = time.perf_counter() + 5.0
    sent = 0

    async def blast(i: int, ws: Any) -> None:
        nonlocal sent
        seq = 0
        while time.perf_counter() < stop:
            now = time.time()
            pts = []
            for _ in range(500):
                seq += 1
                pts.append(f'{{"lat":{LAT:.6f},"lng":{LNG + i * 1e-4:.6f},"ts":{now:.3f},"seq":{seq},"accuracy":5}}')
            await ws.send('{"type":"location","points":[' + ",".join(pts) + "]}")
            sent += 1

    async def drain(ws: Any) -> None:
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    drains = [asyncio.create_task(drain(ws)) for ws in sockets]
    await asyncio.gather(*(blast(i, ws) for i, ws in enumerate(sockets)), return_exceptions=True)
    print("END burst", flush=True)
    for d in drains:
        d.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"frames_sent": sent, "bytes_sent_mb": sent * 60_000 / 1e6}


FANOUT_MESSAGES = 40
ISSUE_SHARE = 0.66  # issue 7: one process stores >= 66 % of baseline (a); latency is judged at 80 % of that
LATENCY_SHARE = 0.8 * ISSUE_SHARE  # the judged latency rate, as a share of baseline (a)
# The issue's own figure for that rate on this machine ("about 20k points/s here", with (a) at ~30k/s
# when it was planned): the latency there is printed for information, next to the judged rates.
PLANNED_RATE = 0.8 * 20_000


def watch(args: argparse.Namespace) -> None:
    """The fan-out receivers, in their own process: `args.watchers` raw sockets on one epoll
    loop that only stamp each arrival (time.monotonic: CLOCK_MONOTONIC, the same clock in
    every process of this machine, which the publisher stamps `t0` with) and keep the bytes;
    frames are parsed after the run, so parsing never delays a stamp."""
    import select
    import socket

    path = f"/v1/orders/{args.order}/track"
    token = token_for(args.customer, "customer")
    socks = []
    for _ in range(args.watchers):
        sock = socket.create_connection(("127.0.0.1", args.port))
        rest = ws_handshake(sock, path, token)
        buf = bytearray(rest)
        while not ws_frames(buf):  # the initial status
            buf += sock.recv(65536)
        sock.setblocking(False)
        socks.append(sock)
    ep = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    arrivals: dict[int, list[tuple[float, bytes]]] = {fd: [] for fd in by_fd}
    print("READY", flush=True)
    clock = time.monotonic
    stop_at = clock() + args.duration
    while clock() < stop_at:
        for fd, _ev in ep.poll(0.05):
            now = clock()
            try:
                data = by_fd[fd].recv(262144)
            except BlockingIOError:
                continue
            if data:
                arrivals[fd].append((now, data))
            else:
                ep.unregister(fd)
    latencies, delivered = [], 0
    for chunks in arrivals.values():
        buf = bytearray()
        for at, data in chunks:
            buf += data
            for opcode, payload in ws_frames(buf):
                if opcode == 0x1 and b'"t0"' in payload:
                    delivered += 1
                    body = json.loads(payload)
                    latencies.append((body["n"], at - body["t0"]))
    for s in socks:
        s.close()
    print("RESULT " + json.dumps({"latencies": latencies, "delivered": delivered}), flush=True)


async def fanout(args: argparse.Namespace) -> dict[str, float]:
    """1,000 watchers of one order (in their own process); positions published on the order
    channel, as a courier's process does, timed from publish to arrival at each watcher."""
    import redis.asyncio as aioredis

    watch_time = 4.0 + FANOUT_MESSAGES * 0.1
    cmd = [sys.executable, __file__, "--watch", "--port", str(args.port), "--order", args.order,
           "--customer", args.customer, "--watchers", str(args.watchers), "--duration", str(watch_time)]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if b"READY" not in line:
        raise RuntimeError(f"watchers did not start: {line!r}")
    redis = aioredis.Redis.from_url(args.redis)
    channel = f"{PREFIX}order:{args.order}"
    print("PHASE fanout", flush=True)
    for n in range(FANOUT_MESSAGES):
        body = {"type": "courier_position", "order_id": args.order, "courier_id": args.courier, "lat": LAT,
                "lng": LNG, "at": "2026-01-01T12:00:00Z", "eta_seconds": 300, "eta_to": "dropoff",
                "courier": {"first_name": "Bench", "vehicle": "bicycle"}, "n": n, "t0": time.monotonic()}
        await redis.publish(channel, json.dumps(body))
        await asyncio.sleep(0.1)
    print("END fanout", flush=True)
    await redis.aclose()
    out, _ = await proc.communicate()
    found = json.loads(out.decode().split("RESULT ", 1)[1])
    received = [lat for _n, lat in found["latencies"]]
    by_message: dict[int, list[float]] = {}
    for n, lat in found["latencies"]:
        by_message.setdefault(n, []).append(lat)
    # Where the tail comes from: a message that reached everyone late (the server's loop was
    # busy: GC, other work) or the spread from the first watcher to the last within a message.
    firsts = sorted(min(v) for v in by_message.values())
    spreads = sorted(max(v) - min(v) for v in by_message.values())
    expected = FANOUT_MESSAGES * args.watchers
    return {"watchers": args.watchers, "delivered": found["delivered"], "expected": expected,
            "p50_ms": pct(received, 0.5) * 1000, "p99_ms": pct(received, 0.99) * 1000,
            "first_watcher_p50_max_ms": [pct(firsts, 0.5) * 1000, firsts[-1] * 1000 if firsts else 0.0],
            "spread_p50_max_ms": [pct(spreads, 0.5) * 1000, spreads[-1] * 1000 if spreads else 0.0]}


# -- the driver ----------------------------------------------------------------------------


def resp(*args: bytes | str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def baseline_redis_pipe(redis_url: str, updates: int = 200_000) -> dict[str, float]:
    """Redis's own ceiling: the same work fed by redis-cli --pipe (no Python client in the way)."""
    import h3
    import redis as sync_redis

    from geo.live import CourierIndex, CourierUpdate, LiveKeys, LiveState
    from geo.live_scripts import FLUSH

    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    cli = str(Path(sys.executable).parent / "redis-cli")
    client = sync_redis.Redis.from_url(redis_url)
    keys = LiveKeys("base:", REGION)
    out: dict[str, float] = {}

    def run(payload: bytes) -> float:
        started = time.perf_counter()
        subprocess.run([cli, "-p", port, "--pipe"], input=payload, check=True, capture_output=True)
        return time.perf_counter() - started

    cells = [h3.latlng_to_cell(LAT + (i % 100) * 0.002, LNG + (i // 100 % 50) * 0.002, 9) for i in range(5000)]
    chunks = []
    for i in range(updates):
        cid = f"c{i % 20000}"
        lat, lng = LAT + (i % 100) * 0.002, LNG + (i // 100 % 50) * 0.002
        chunks.append(resp("GEOADD", keys.geo, repr(lng), repr(lat), cid))
        chunks.append(resp("SADD", keys.cell(cells[i % 5000]), cid))
        chunks.append(resp("HSET", keys.state, cid, f'{{"status":"online","seen":1.0,"seq":{i}}}'))
    out["plain_3_commands_per_update"] = updates / run(b"".join(chunks))
    client.flushdb()

    sha = client.script_load(FLUSH)
    index = CourierIndex(None, "base:", REGION)  # type: ignore[arg-type]
    calls = []
    per_call = 1000
    now = time.time()
    for start in range(0, updates, per_call):
        batch = []
        for i in range(start, start + per_call):
            lat, lng = LAT + (i % 100) * 0.002 + (i % 7) * 1e-5, LNG + (i // 100 % 50) * 0.002
            cell = cells[i % 5000]
            batch.append(CourierUpdate(f"c{i % 20000}", True, LiveState(status="online", seen=now, seq=i, lat=lat,
                                                                       lng=lng, cell=cell), lat, lng, cell))
        calls.append(resp("EVALSHA", sha, "5", *keys.script_keys(), *index.flush_args(batch)))
    out["flush_script_1000_per_call"] = updates / run(b"".join(calls))
    client.flushdb()
    client.close()
    return out


class Server:
    def __init__(self, args: argparse.Namespace, db: str, redis: str, data: str, mode: str,
                 profile: bool = False) -> None:
        import psutil

        self.port = args.port
        cmd = [sys.executable, __file__, "--serve", "--mode", mode, "--port", str(args.port), "--db", db,
               "--redis", redis, "--data", data] + (["--profile"] if profile else [])
        if getattr(args, "flush_interval", None):
            cmd += ["--flush-interval", str(args.flush_interval)]
        if getattr(args, "loop", "asyncio") != "asyncio":
            cmd += ["--loop", args.loop]
        if getattr(args, "gc", "app") != "app":
            cmd += ["--gc", args.gc]
        if getattr(args, "lane", "on") != "on":
            cmd += ["--lane", args.lane]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "READY" not in line:
            raise RuntimeError(f"server did not start: {line!r}")
        self.ps = psutil.Process(self.proc.pid)

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


class SideProcesses:
    """Redis and PostgreSQL (the postmaster and its backends): they share the second core with
    the load generator, so their CPU per phase says how crowded that core was."""

    def __init__(self, redis_pid: int, pg_data: str) -> None:
        import psutil

        self.redis = psutil.Process(redis_pid)
        self.postmaster = next((p for p in psutil.process_iter(["cmdline"])
                                if pg_data in " ".join(p.info["cmdline"] or ())), None)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of Redis and of every PostgreSQL process alive now (a backend that
        exits between two readings takes its time with it: these are lower bounds)."""
        out = {"redis": 0.0, "postgres": 0.0}
        with contextlib.suppress(Exception):
            out["redis"] = sum(self.redis.cpu_times()[:2])
        if self.postmaster is not None:
            with contextlib.suppress(Exception):
                for proc in [self.postmaster, *self.postmaster.children(recursive=True)]:
                    with contextlib.suppress(Exception):
                        out["postgres"] += sum(proc.cpu_times()[:2])
        return out


def loopback_send_us(sockets: int = 200, rounds: int = 100) -> float:
    """CPU per 30-byte `send` on a loopback TCP socket (an ack's size). On loopback the kernel
    delivers the segment to the receiving socket inside the sender's call, so this is what one
    ack costs the server in the kernel on this machine; it differs a lot between machines."""
    import socket

    with socket.create_server(("127.0.0.1", 0), backlog=sockets) as listener:
        port = listener.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(sockets)]
        peers = [listener.accept()[0] for _ in range(sockets)]
        try:
            for sock in peers:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            payload = b'{"type":"ack","seq":123456789}'
            started = time.process_time()
            for _ in range(rounds):
                for sock in peers:
                    sock.send(payload)
            return (time.process_time() - started) / (sockets * rounds) * 1e6
        finally:
            for sock in clients + peers:
                sock.close()


def cpu_split(phase: dict[str, float]) -> str:
    """Where the two cores went in a phase: the server, and what shares the other core."""
    return (f"CPU: server {phase['server_cpu_pct']:.0f} % (kernel {phase['server_kernel_pct']:.0f}), "
            f"load generator {phase['loadgen_cpu_pct']:.0f} %, "
            f"Redis {phase.get('redis_cpu_pct', 0):.0f} %, PostgreSQL {phase.get('postgres_cpu_pct', 0):.0f} %")


def drive(args: argparse.Namespace, server: Server, extra: list[str],
          side: SideProcesses | None = None) -> dict[str, Any]:
    """Run the load generator; sample the server's CPU and RSS between its phase markers (and
    Redis's and PostgreSQL's CPU, given `side`)."""
    cmd = [sys.executable, __file__, "--load", "--port", str(args.port), "--couriers", str(args.couriers),
           "--duration", str(args.duration), "--window", str(args.window), *extra]
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    import psutil

    gen_ps = psutil.Process(gen.pid)
    phases: dict[str, dict[str, float]] = {}
    result: dict[str, Any] = {}
    base_rss = server.rss()
    current: str | None = None
    cpu0 = sys0 = gen_cpu0 = t0 = 0.0
    peak = 0
    assert gen.stdout is not None
    sampler_stop = False

    import threading

    def sample() -> None:
        nonlocal peak
        while not sampler_stop:
            with contextlib.suppress(Exception):
                peak = max(peak, server.rss())
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    for line in gen.stdout:
        line = line.strip()
        if line.startswith("PHASE "):
            current = line.split()[1]
            t0 = time.perf_counter()
            times = server.ps.cpu_times()
            cpu0, sys0 = times.user + times.system, times.system
            gen_cpu0 = sum(gen_ps.cpu_times()[:2])
            side0 = side.cpu_seconds() if side else {}
            peak = server.rss()
        elif line.startswith("END ") and current:
            elapsed = time.perf_counter() - t0
            times = server.ps.cpu_times()
            phases[current] = {
                "server_cpu_pct": 100 * (times.user + times.system - cpu0) / elapsed,
                "server_kernel_pct": 100 * (times.system - sys0) / elapsed,
                "loadgen_cpu_pct": 100 * (sum(gen_ps.cpu_times()[:2]) - gen_cpu0) / elapsed,
                "rss_mb": server.rss() / 1e6, "peak_rss_mb": peak / 1e6,
            }
            if side:
                for name, seconds in side.cpu_seconds().items():
                    phases[current][f"{name}_cpu_pct"] = 100 * (seconds - side0[name]) / elapsed
            current = None
        elif line.startswith("RESULT "):
            result = json.loads(line[7:])
    gen.wait()
    sampler_stop = True
    result["phases"] = phases
    result["base_rss"] = base_rss
    return result


async def make_trackable_order(db_url: str, redis_url: str) -> tuple[str, str, str]:
    import asyncpg

    from kernel.ids import new_id
    from kernel.outbox import write_event

    order_id, customer, courier = new_id("ord"), "cus_bench", "cou_bench000000"
    data = {"order_id": order_id, "customer_id": customer, "store_id": "sto_b", "tenant_id": "ten_b",
            "region": REGION, "pickup": {"lat": LAT, "lng": LNG}, "dropoff": {"lat": LAT + 0.01, "lng": LNG},
            "total": {"amount": 1000, "currency": "EUR"}, "placed_at": "2026-01-01T12:00:00+00:00",
            "ready_at": "2026-01-01T12:15:00+00:00", "promised_at": "2026-01-01T12:40:00+00:00"}
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():
            await write_event(conn, "order.accepted", data, order_id)
            await write_event(conn, "dispatch.assigned", {"offer_id": "off_b", "courier_id": courier,
                                                          "order_ids": [order_id], "at": data["placed_at"]})
        for _ in range(200):
            found = await conn.fetchval("SELECT courier_id FROM tracking_orders WHERE order_id = $1", order_id)
            if found:
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return order_id, customer, courier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--couriers", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured phase")
    parser.add_argument("--window", type=int, default=2,
                        help="unacked frames per courier at saturation (2: frames arrive one by one, as in the field)")
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--flush-interval", type=float, default=0.0,
                        help="the server's minimum gap between flush starts (default: TrackingConfig's)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the server's event loop (uvloop: if installed)")
    parser.add_argument("--lane", choices=("on", "off"), default="on",
                        help="off: every courier frame takes aiohttp's queue (tracking/lane.py), for comparison")
    parser.add_argument("--gc", choices=("app", "untuned"), default="app",
                        help="untuned: undo the app's GC tuning (Python's default thresholds, nothing frozen)")
    # internal: the server and the load generator processes
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--watch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--latency", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--issue-rate", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--planned-rate", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--issue-share", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--burst", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fanout", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--order", help=argparse.SUPPRESS)
    parser.add_argument("--customer", help=argparse.SUPPRESS)
    parser.add_argument("--courier", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args)
    if args.load:
        return load(args)
    if args.watch:
        return watch(args)

    import warnings

    import psutil

    from fooddispatch.embedded import start_postgres, start_redis
    from fooddispatch.migrate import apply_migrations

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fd-bench-") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pg = start_postgres(Path(tmp) / "pg")
        rd = start_redis(Path(tmp) / "redis")
        try:
            async def migrate() -> None:
                import asyncpg

                conn = await asyncpg.connect(pg.url)
                try:
                    await apply_migrations(conn)
                finally:
                    await conn.close()

            asyncio.run(migrate())
            print(f"server: --loop {args.loop} --gc {args.gc} --lane {args.lane}; flush interval "
                  f"{args.flush_interval or 'default'}")
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f}"
                  f" GiB, Python {platform.python_version()}; load average now {os.getloadavg()[0]:.2f}")
            print(f"loopback: a 30-byte TCP send (an ack) costs at least {loopback_send_us():.1f} us of CPU here "
                  "(more when the peer must be woken)")
            print(f"couriers: {args.couriers}, {args.duration:.0f} s per phase, window {args.window}\n")

            base = baseline_redis_pipe(rd.url)
            print("baseline (b) Redis ceiling, redis-cli --pipe:")
            for name, value in base.items():
                print(f"  {name:32s} {value:10,.0f} updates/s")

            side = SideProcesses(rd.process.pid, str(Path(tmp) / "pg"))
            server = Server(args, pg.url, rd.url, tmp, "parse")
            # Open loop too, at the rate the issue judges the full server's latency at: how much of
            # the latency budget the shared path (sockets, parsing, validation, acks) leaves.
            parse = drive(args, server, ["--latency", "--issue-share", f"{LATENCY_SHARE}"], side)
            server.stop()
            sat = parse["saturate"]
            ph = parse["phases"]["saturate"]
            print("\nbaseline (a) server with Redis and history writes off (parse + validate + ack):")
            print(f"  {sat['points_per_s']:10,.0f} points/s   p50 {sat['p50_ms']:.1f} ms  p99 {sat['p99_ms']:.1f} ms"
                  f"   {cpu_split(ph)}")
            for label, key in (("the issue's latency rate (0.8 x 0.66 x (a))", "rate_issue"),
                               ("80 % of its own saturation", "rate_sat")):
                rate, rph = parse[key], parse["phases"][key]
                print(f"  open loop at {label}:\n               offered {rate['offered_per_s']:,.0f} of "
                      f"{rate['target']:,.0f} frames/s   p50 {rate['p50_ms']:.1f} ms  p99 {rate['p99_ms']:.1f} ms"
                      f"\n               {cpu_split(rph)}")

            a_rate = sat["points_per_s"]
            issue_rate = LATENCY_SHARE * a_rate
            server = Server(args, pg.url, rd.url, tmp, "full")
            order, customer, courier = asyncio.run(make_trackable_order(pg.url, rd.url))
            full = drive(args, server, ["--latency", "--issue-rate", f"{issue_rate:.0f}",
                                        "--planned-rate", f"{PLANNED_RATE:.0f}", "--burst", "--fanout",
                                        "--redis", rd.url, "--order", order,
                                        "--customer", customer, "--courier", courier,
                                        "--watchers", str(args.watchers)], side)
            stalls = next((json.loads(ln[7:]) for ln in server.stop().splitlines() if ln.startswith("STALLS ")), {})
            sat, ph = full["saturate"], full["phases"]
            rates = [("80 % of the issue's target rate (0.8 x 0.66 x (a))", full["rate_issue"], ph["rate_issue"]),
                     ("80 % of this run's saturation", full["rate_sat"], ph["rate_sat"]),
                     ("80 % of the issue's planning figure (~20k/s), for information", full["rate_planned"],
                      ph["rate_planned"])]
            idle_rss = (ph["idle"]["rss_mb"] * 1e6 - full["base_rss"]) / args.couriers
            f = full.get("fanout", {})
            share = 100 * sat["points_per_s"] / parse["saturate"]["points_per_s"]

            def verdict(ok: bool) -> str:
                return "MET" if ok else "NOT MET"

            print("\nfull server (validate, coalesce, one EVALSHA per flush, history COPY, acks):")
            print(f"  saturation   {sat['points_per_s']:10,.0f} stored points/s = {share:.0f} % of baseline (a)"
                  f"   p50 {sat['p50_ms']:.1f} ms  p99 {sat['p99_ms']:.1f} ms (queueing: {args.window} in flight)"
                  f"\n               {cpu_split(ph['saturate'])}")
            for label, rate, rph in rates:
                print(f"  at {label}:\n               offered {rate['offered_per_s']:,.0f} of {rate['target']:,.0f} "
                      f"frames/s, stored {rate['points_per_s']:,.0f}/s   p50 {rate['p50_ms']:.1f} ms  p99 "
                      f"{rate['p99_ms']:.1f} ms\n               {cpu_split(rph)}")
            print(f"  idle RSS     {idle_rss / 1024:.1f} KiB per courier connection "
                  f"({full['base_rss'] / 1e6:.0f} MB before, {ph['idle']['rss_mb']:.0f} MB with {args.couriers} open)")
            b = full.get("burst", {})
            print(f"  burst        200 couriers sending 60 KB replay frames for 5 s ({b.get('bytes_sent_mb', 0):.0f} MB"
                  f" sent): peak RSS {ph['burst']['peak_rss_mb']:.0f} MB, after {ph['burst']['rss_mb']:.0f} MB")
            print(f"  fan-out      1 position -> {f.get('watchers')} watchers (own process): p50 "
                  f"{f.get('p50_ms', 0):.1f} ms  p99 {f.get('p99_ms', 0):.1f} ms  ({f.get('delivered')}/"
                  f"{f.get('expected')} delivered)   server CPU {ph['fanout']['server_cpu_pct']:.0f} %")
            if f.get("first_watcher_p50_max_ms"):
                first, spread = f["first_watcher_p50_max_ms"], f["spread_p50_max_ms"]
                print(f"               per message: first watcher p50 {first[0]:.1f} ms, max {first[1]:.1f} ms; "
                      f"first to last watcher p50 {spread[0]:.1f} ms, max {spread[1]:.1f} ms")
            if full.get("errors"):
                print(f"  the server answered {full['errors']:,} frames with an error (rate limits?): "
                      "those points count as acked once a later seq is acked; use more couriers")
            if stalls:
                print(f"  server stalls over the whole run: GC (count, total ms, longest ms) gen0 {stalls['gc0']}, "
                      f"gen1 {stalls['gc1']}, gen2 {stalls['gc2']}; a 5 ms timer late by p50/p99/max "
                      f"{stalls['loop_lag_ms_p50_p99_max']} ms")
            for label, result, phase in (("saturation", sat, ph["saturate"]), *rates):
                print(f"  server CPU per stored point at {label}: "
                      f"{phase['server_cpu_pct'] * 1e4 / max(result['points_per_s'], 1):.1f} us")
            print("\ntargets (issue 7):")
            print(f"  stored points/s >= 66 % of baseline (a)       {share:5.0f} %        {verdict(share >= 66)}")
            for name, rate in (("issue's target rate", full["rate_issue"]), ("saturation", full["rate_sat"])):
                valid = rate["offered_per_s"] >= 0.95 * rate["target"]
                print(f"  p99 frame->ack < 100 ms, 80 % of {name:19s} {rate['p99_ms']:7.1f} ms     "
                      + (verdict(rate["p99_ms"] < 100) if valid else "NOT VALID (generator short of the rate)"))
            print(f"  RSS per idle courier connection <= 20 KiB     {idle_rss / 1024:7.1f} KiB    "
                  f"{verdict(idle_rss <= 20 * 1024)}")
            print(f"  fan-out to 1,000 watchers p99 < 50 ms         {f.get('p99_ms', 0):7.1f} ms     "
                  f"{verdict(f.get('p99_ms', 1e9) < 50 and f.get('delivered') == f.get('expected'))}")
            print(f"  (load average {os.getloadavg()[0]:.2f} at the end of the run; other load skews every figure)")

            if not args.no_profile:
                server = Server(args, pg.url, rd.url, tmp, "full", profile=True)
                quick = argparse.Namespace(**{**vars(args), "duration": 5.0})
                prof = drive(quick, server, [])
                text = server.stop()
                print(f"\nprofile of the full server at saturation (cProfile, which slows it: "
                      f"{prof['saturate']['points_per_s']:,.0f} points/s under the profiler), top by own time:")
                lines = [ln for ln in text.splitlines() if ln.strip()]
                start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
                for ln in lines[start:start + 23]:
                    venv = str(Path(sys.executable).parents[1])
                    print("  " + ln.replace(str(REPO) + "/", "").replace(venv, ".venv")[:150])
        finally:
            rd.stop()
            pg.stop()
    print(f"\ntotal run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
