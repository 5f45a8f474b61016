"""A customer and a courier with something to export or erase: a registered customer (email, name,
a card) whose order a named courier carried to the end while streaming fixes, through the real HTTP API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from idempotency_world import CARD, LAT, LNG, Order, World, ok, unique

from fooddispatch.app import create_app
from fooddispatch.components.tracking import TRACKING_CONFIG
from fooddispatch.config import Settings
from tracking.service import TrackingConfig

PHONE = "+49 30 9876 5432"
NOTE = f"ring twice, or call {PHONE}"


def privacy_app(settings: Settings, **options: Any) -> Any:
    app = create_app(settings, **options)
    app[TRACKING_CONFIG] = TrackingConfig(region=settings.region, history_interval=0.1, auth_timeout=0.5)
    return app


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await check()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


@dataclass
class People:
    customer_id: str
    customer: dict[str, str]
    email: str
    name: str
    courier_id: str
    courier: dict[str, str]
    courier_name: str
    courier_email: str
    order_id: str
    operator: dict[str, str]


async def register(client: Any, name: str) -> tuple[str, dict[str, str], str]:
    email = f"{unique('priv')}@example.com"
    token = await ok(await client.post("/v1/auth/register", json={"email": email, "password": "correct horse 1",
                                                                   "name": name}))
    return token["account_id"], {"Authorization": f"Bearer {token['token']}"}, email


async def courier_account(client: Any, operator: dict[str, str], name: str) -> tuple[str, dict[str, str], str]:
    email = f"{unique('cou')}@example.com"
    made = await ok(await client.post("/v1/accounts", headers=operator, json={
        "role": "courier", "email": email, "password": "correct horse 2", "name": name}))
    token = await ok(await client.post("/v1/auth/login", json={"email": email, "password": "correct horse 2"}))
    return made["account_id"], {"Authorization": f"Bearer {token['token']}"}, email


async def send_fixes(client: Any, headers: dict[str, str], count: int, start_seq: int = 1) -> None:
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        for seq in range(start_seq, start_seq + count):
            await ws.send_json({"type": "location", "lat": LAT + seq * 1e-4, "lng": LNG, "ts": time.time(),
                                "seq": seq, "accuracy": 8.0, "speed": 4.0, "heading": 90.0})
        async with asyncio.timeout(10):
            while True:
                frame = await ws.receive_json()
                if frame["type"] == "ack" and (frame.get("seq") or 0) >= start_seq + count - 1:
                    break


async def delivered_order(client: Any, make_principal: Any, db: Any) -> People:
    """A customer (registered: email, name, card) whose order a courier (named, with a login) picked up
    and delivered, sending fixes while it carried it; its fixes are in the location history."""
    world = World(client, make_principal)
    operator = await world.operator()
    name, courier_name = f"Ada {unique('Lovelace')}", f"Grace {unique('Hopper')}"
    customer_id, customer, email = await register(client, name)
    pm = await world.post("/v1/payment_methods", customer, {"card": CARD, "billing_details": {"name": name}}, key=True)
    quote = await world.post("/v1/quotes", customer, {**world.cart(await world.store()), "delivery_note": NOTE})
    placed = await world.post("/v1/orders", customer, {"quote_id": quote["id"], "payment_method_id": pm["id"]},
                              key=True)
    courier_id, courier, courier_email = await courier_account(client, operator, courier_name)
    order = Order(placed["id"], customer, pm["id"], (courier_id, courier))
    await world.advance(order, "accepted", "preparing", "assigned")

    async def courier_seen() -> bool:  # tracking's projection knows the courier since the hand-over
        async with db.acquire() as conn:
            return bool(await conn.fetchval("SELECT courier_since IS NOT NULL FROM tracking_orders "
                                            "WHERE order_id = $1", order.id))

    await eventually(courier_seen)
    await send_fixes(client, courier, 3)
    await world.advance(order, "picked_up", "delivered")

    async def history_written() -> bool:
        async with db.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM courier_locations WHERE courier_id = $1",
                                       courier_id) >= 3

    await eventually(history_written)
    return People(customer_id, customer, email, name, courier_id, courier, courier_name, courier_email, order.id,
                  operator)
