"""One demo run inside the event loop: serve the app, seed, run the actors, draw, stop, summarise."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
import uuid
from pathlib import Path

import aiohttp

from fooddispatch.cli import serve_app
from fooddispatch.client import Client
from fooddispatch.config import Settings
from fooddispatch.demo import WIND_DOWN_S, rng_for, wait_ready
from fooddispatch.demo.city import generate_city
from fooddispatch.demo.console import Console
from fooddispatch.demo.couriers import Couriers
from fooddispatch.demo.customers import Customers
from fooddispatch.demo.restaurants import Restaurants
from fooddispatch.demo.seed import seed_city
from fooddispatch.demo.world import SimClock, World

log = logging.getLogger("fooddispatch.demo")


async def run_city(settings: Settings, args: argparse.Namespace, stop: asyncio.Event, log_file: Path | None) -> int:
    server_stop, listening, instance = asyncio.Event(), asyncio.Event(), uuid.uuid4().hex
    server = asyncio.create_task(serve_app(settings, server_stop, announce=False, listening=listening,
                                           instance=instance), name="demo-server")
    base_url = f"http://{local_host(settings.host)}:{settings.port}"
    try:
        await wait_ready(base_url, server, listening=listening, instance=instance)
        # No total timeout: it would also cut the courier websockets; each read is bounded instead.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            return await _city(Client(base_url, session), settings, args, stop, log_file)
    finally:
        server_stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await server


def local_host(host: str) -> str:
    """Where this machine reaches a server bound to `host` (a wildcard address is reached on loopback
    of its own family: an IPv6 socket does not take IPv4 connections)."""
    if host in {"0.0.0.0", ""}:
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def _city(client: Client, settings: Settings, args: argparse.Namespace, stop: asyncio.Event,
                log_file: Path | None) -> int:
    base_url = client.transport.base_url
    city = generate_city(args.seed, args.restaurants, args.couriers, args.customers)
    world = World(SimClock(args.speed))
    print(f"seeding {city.name}: {len(city.stores)} stores of {len(city.tenants)} merchants, "
          f"{len(city.customers)} customers, {len(city.couriers)} couriers ...", flush=True)
    started = time.monotonic()
    seeded = await seed_city(client, city, settings)
    print(f"seeded in {time.monotonic() - started:.1f} s", flush=True)
    ops_url = f"{base_url}/ops?token={seeded.operator_token}"
    print(f"ops console: {ops_url}", flush=True)
    if log_file is not None:
        print(f"server log: {log_file}", flush=True)
    if args.minutes:
        print(f"the city takes orders for {args.minutes:g} min (real time), then waits up to {WIND_DOWN_S:.0f} s "
              "for the orders already out to be delivered", flush=True)
    world.clock = SimClock(args.speed)  # the city opens now
    console = Console(world, ops_url, headless=args.headless)
    console.log_file = log_file
    customers = Customers(client, seeded, world, rng_for(args.seed, "customers"), args.orders_per_minute)
    restaurants = Restaurants(client, seeded, world, rng_for(args.seed, "restaurants"))
    couriers = Couriers(client, seeded, world, rng_for(args.seed, "couriers"))
    actors = [asyncio.create_task(coro, name=name) for name, coro in [
        ("customers", customers.run()), ("restaurants", restaurants.run()), ("couriers", couriers.run())]]
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    draw_every = 1.0 if console.live else 10.0
    next_draw = 0.0
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            for task in actors:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if time.monotonic() >= next_draw:
                await console.scrape(client, seeded.operator_token)
                console.draw()
                next_draw = time.monotonic() + draw_every
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
        if not stop.is_set():
            wind_down = time.monotonic()
            await _wind_down(world, customers, stop)
            console.wind_down_s = time.monotonic() - wind_down
    finally:
        console.close()
        world.accepting_orders = False
        for task in [*actors, *customers.tasks, *restaurants.tasks]:
            task.cancel()
        await asyncio.gather(*actors, *customers.tasks, *restaurants.tasks, return_exceptions=True)
    await console.scrape(client, seeded.operator_token)
    if world.tally.placed and not world.tally.offers:
        world.skip("dispatch (couriers getting orders)", "no offer reached any courier: the app has no dispatch "
                   "live loop yet, so accepted orders wait and nothing is delivered")
    print(console.summary(), flush=True)
    return 0


async def _wind_down(world: World, customers: Customers, stop: asyncio.Event) -> None:
    """No new orders; give orders already with a courier (or cooking) a short while to arrive."""
    world.accepting_orders = False
    open_orders = world.undelivered()["open"]
    if open_orders:
        print(f"no new orders; waiting up to {WIND_DOWN_S:.0f} s for the {open_orders} still on their way", flush=True)
    until = time.monotonic() + WIND_DOWN_S
    while time.monotonic() < until and not stop.is_set():
        if not world.undelivered()["open"] or not customers.tasks:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
