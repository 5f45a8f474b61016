"""`fooddispatch demo`: a living city on the real API.

It starts the embedded servers and the app exactly as `fooddispatch serve` does, seeds a city
through the public API, runs simulated customers, restaurant tablets and couriers against it,
shows a live table and the ops console URL, and prints a summary when stopped (Ctrl-C) or after
`--minutes` of wall-clock time (then up to WIND_DOWN_S more, to deliver the bags already out; it says
so). The server's own log goes to `demo.log` in the data folder, never over the table. Parts of the
city whose API is not there yet are listed in the summary as not simulated; nothing is faked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from pathlib import Path

import aiohttp

from fooddispatch.cli import INSTANCE_HEADER, CliError, migrate_database, run_until_signalled, servers_for
from fooddispatch.config import Settings
from fooddispatch.demo import city

WIND_DOWN_S = 15.0  # after --minutes: no new orders; bags already out get delivered


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--restaurants", type=int, default=12, help="number of stores (default 12)")
    parser.add_argument("--couriers", type=int, default=20, help="number of couriers (default 20)")
    parser.add_argument("--customers", type=int, default=60, help="number of customers (default 60)")
    parser.add_argument("--orders-per-minute", type=float, default=3.0,
                        help="orders per simulated minute (default 3)")
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real second (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated city and of the actors")
    parser.add_argument("--minutes", type=float, default=None,
                        help=f"stop taking orders after this many real minutes, then wait up to {WIND_DOWN_S:.0f} s "
                             "for the orders already out to be delivered, and stop")
    parser.add_argument("--headless", action="store_true", help="plain progress lines instead of a live table")


def _check(args: argparse.Namespace) -> None:
    for name in ("restaurants", "couriers", "customers"):
        if not 1 <= getattr(args, name) <= 5000:
            raise CliError(f"--{name} must be between 1 and 5000")
    if not 0.1 <= args.speed <= 600:
        raise CliError("--speed must be between 0.1 and 600")
    if not 0 < args.orders_per_minute <= 1000:
        raise CliError("--orders-per-minute must be above 0 and at most 1000")
    if args.minutes is not None and args.minutes <= 0:
        raise CliError("--minutes must be above 0")


def demo_settings(settings: Settings, speed: float = 1.0) -> Settings:
    """Every simulated phone connects from 127.0.0.1: anonymous calls (register, login) share one
    per-IP rate limit, so the demo raises the limits to what its own load needs. The city is
    Berlin, so unless a zone was configured its local hours are Berlin's. The ops console reads
    its KPIs at the city's speed, as the terminal does."""
    return settings.replace(
        ops_time_scale=speed,
        region_timezone=city.TIMEZONE if settings.region_timezone == "UTC" else settings.region_timezone,
        rate_limit_per_minute=max(settings.rate_limit_per_minute, 100_000),
        rate_limit_burst=max(settings.rate_limit_burst, 10_000),
        tenant_rate_limit_per_minute=max(settings.tenant_rate_limit_per_minute, 1_000_000),
        jwt_ttl_seconds=max(settings.jwt_ttl_seconds, 86_400),
    )


def run(args: argparse.Namespace) -> int:
    _check(args)
    settings = Settings.from_env()
    changes: dict[str, object] = {}
    if getattr(args, "host", None):
        changes["host"] = args.host
    if getattr(args, "port", None) is not None:
        changes["port"] = args.port
    settings = demo_settings(settings.replace(**changes), args.speed)
    log_file = _logging(settings)
    result = [1]
    with servers_for(settings) as resolved:
        asyncio.run(migrate_database(resolved.database_url or ""))

        async def main(stop: asyncio.Event) -> None:
            from fooddispatch.demo.runner import run_city

            result[0] = await run_city(resolved, args, stop, log_file)

        asyncio.run(run_until_signalled(main))
    return result[0]


def _logging(settings: Settings) -> Path:
    """The server's log goes to `demo.log` in the data folder: on the terminal, its request lines
    (thousands a minute) would bury the table, the progress lines and the ops console's URL."""
    from fooddispatch.logs import configure_logging

    path = settings.data_dir.resolve() / "demo.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = path.open("a", encoding="utf-8")
    real_stderr, sys.stderr = sys.stderr, stream
    try:
        configure_logging(settings.log_level, True)
    finally:
        sys.stderr = real_stderr
    return path


async def wait_ready(base_url: str, server: asyncio.Task[None], within: float = 30.0, *,
                     listening: asyncio.Event | None = None, instance: str | None = None) -> None:
    """Until the demo's own server answers ready. First its socket must be listening (a port held by
    another server fails the start here, before anything is sent); then the server that answers at
    `base_url` must be this one (its responses carry `instance`), never a stranger the seeding would
    fill with a city."""
    deadline = time.monotonic() + within
    if listening is not None:
        bound = asyncio.ensure_future(listening.wait())
        try:
            await asyncio.wait({bound, server}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            bound.cancel()
        if not listening.is_set():
            _stopped(server)
            raise CliError(f"the server did not start listening within {within:.0f} s")
    from fooddispatch.client import Client

    async with aiohttp.ClientSession() as session:
        client = Client(base_url, session)
        while time.monotonic() < deadline:
            _stopped(server)
            with contextlib.suppress(aiohttp.ClientError):
                probe = await client.readiness()
                if instance is not None and probe.headers.get(INSTANCE_HEADER) != instance:
                    raise CliError(f"another server answers at {base_url}, not the one this demo started: "
                                   "stop it or pick another --port")
                if probe.status == 200:
                    return
            await asyncio.sleep(0.1)
    raise CliError(f"the server at {base_url} was not ready within {within:.0f} s")


def _stopped(server: asyncio.Task[None]) -> None:
    if server.done():
        server.result()  # raises why the server stopped (a port in use...)
        raise CliError("the server stopped before it was ready")


def rng_for(seed: int, actor: str) -> random.Random:
    return random.Random(f"{seed}:{actor}")
