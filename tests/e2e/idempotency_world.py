"""What the route-table walk needs to send a valid request to every write route: a tenant with
stores and a menu, customers with cards, couriers, and orders in every state, built lazily
through the real HTTP API (no idempotency keys unless the route requires one)."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

LAT, LNG = 52.5200, 13.4050
SQUARE = {"type": "Polygon", "coordinates": [[[13.35, 52.48], [13.46, 52.48], [13.46, 52.56], [13.35, 52.56],
                                              [13.35, 52.48]]]}
MENU = {"categories": [{"name": "Mains", "id": "cat_mains", "items": [
    {"id": "itm_burger", "name": "Burger", "price": 1000},
    {"id": "itm_fries", "name": "Fries", "price": 400},
]}]}
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
CART_LINES = [{"item_id": "itm_burger", "quantity": 2}, {"item_id": "itm_fries", "quantity": 1}]
HOOK_URL = "http://127.0.0.1:9/hook"  # nothing listens: deliveries fail, which no walk step looks at
# The order states a builder may ask for, each one step after the one before.
STATES = ("placed", "accepted", "preparing", "assigned", "picked_up", "delivered")

_seq = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_seq)}x{time.monotonic_ns() % 1_000_000}"


async def ok(resp: Any, status: int | tuple[int, ...] = (200, 201, 204)) -> dict:
    body = await resp.json() if resp.status != 204 else {}
    expected = status if isinstance(status, tuple) else (status,)
    assert resp.status in expected, (resp.method, str(resp.url), resp.status, body)
    return body


@dataclass
class World:
    client: Any
    make_principal: Any
    _made: dict[str, Any] = field(default_factory=dict)

    def key(self) -> dict[str, str]:
        return {"Idempotency-Key": unique("setup-")}

    async def post(self, path: str, headers: dict, json: Any = None, *, key: bool = False) -> dict:
        headers = {**headers, **self.key()} if key else headers
        return await ok(await self.client.post(path, json=json, headers=headers))

    async def operator(self) -> dict[str, str]:
        if "operator" not in self._made:
            self._made["operator"] = (await self.make_principal("operator"))[1]
        return self._made["operator"]

    async def tenant(self) -> tuple[str, dict[str, str]]:
        """(tenant id, staff headers)."""
        if "tenant" not in self._made:
            tenant = await self.post("/v1/tenants", await self.operator(), {"name": "Walk Burgers"})
            _, staff = await self.make_principal("staff", tenant_id=tenant["id"])
            self._made["tenant"] = (tenant["id"], staff)
        return self._made["tenant"]

    async def new_store(self) -> str:
        tenant_id, staff = await self.tenant()
        store = await self.post(f"/v1/tenants/{tenant_id}/stores", staff, {
            "name": unique("Mitte "), "lat": LAT, "lng": LNG, "timezone": "Europe/Berlin", "currency": "EUR",
            "tax_rate_bps": 700, "prep_time_default_s": 600, "accept_window_s": 3600})
        sid = store["id"]
        await ok(await self.client.put(f"/v1/merchant/stores/{sid}/hours", headers=staff, json={
            "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
        await ok(await self.client.put(f"/v1/merchant/stores/{sid}/zones", headers=staff, json={
            "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}))
        await ok(await self.client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json=MENU))
        return sid

    async def store(self) -> str:
        """The store orders are placed at; nothing else changes it."""
        if "store" not in self._made:
            self._made["store"] = await self.new_store()
        return self._made["store"]

    async def spare_store(self) -> str:
        """A store the catalog steps may pause, close and edit without stopping any order."""
        if "spare" not in self._made:
            self._made["spare"] = await self.new_store()
        return self._made["spare"]

    async def customer(self) -> tuple[str, dict[str, str], str]:
        """(account id, headers, payment method id): a new customer each time."""
        who, headers = await self.make_principal("customer")
        pm = await self.post("/v1/payment_methods", headers, {"card": CARD}, key=True)
        return who.account_id, headers, pm["id"]

    async def courier(self) -> tuple[str, dict[str, str]]:
        who, headers = await self.make_principal("courier")
        return who.account_id, headers

    def cart(self, store_id: str) -> dict:
        return {"store_id": store_id, "dropoff": {"lat": 52.53, "lng": 13.41}, "address": "Torstr. 1, Berlin",
                "lines": CART_LINES, "tip": 200}

    async def quote(self, customer: dict[str, str]) -> dict:
        return await self.post("/v1/quotes", customer, self.cart(await self.store()))

    async def order(self, state: str, courier: tuple[str, dict[str, str]] | None = None) -> Order:
        """A new order by a new customer, taken through the lifecycle up to `state`."""
        _, customer, pm = await self.customer()
        quote = await self.quote(customer)
        placed = await self.post("/v1/orders", customer, {"quote_id": quote["id"], "payment_method_id": pm},
                                 key=True)
        order = Order(placed["id"], customer, pm, courier)
        await self.advance(order, *STATES[1:STATES.index(state) + 1])
        return order

    async def advance(self, order: Order, *steps: str) -> dict:
        """Takes the order through these steps (names from STATES); returns the order as the last left it."""
        shown: dict = {}
        for step in steps:
            shown = await self._step(order, step)
        return shown

    async def _step(self, order: Order, step: str) -> dict:
        _, staff = await self.tenant()
        url = f"/v1/orders/{order.id}"
        if step == "accepted":
            return await self.post(f"{url}/accept", staff, {})
        if step == "preparing":
            return await self.post(f"{url}/preparing", staff)
        if step == "assigned":
            order.courier = order.courier or await self.courier()
            return await self.post(f"{url}/courier", await self.operator(), {"courier_id": order.courier[0]})
        assert order.courier is not None, "assign a courier first"
        if step == "picked_up":
            return await self.post(f"{url}/pickup", order.courier[1], {})
        assert step == "delivered", step
        return await self.post(f"{url}/deliver", order.courier[1], {"proof": {"code": "0000"}})

    async def intent(self, *, confirm: bool = True) -> tuple[dict, dict[str, str], str]:
        """(a payment intent, its customer's headers, the card)."""
        _, customer, pm = await self.customer()
        intent = await self.post("/v1/payment_intents", customer, {
            "amount": 1500, "currency": "EUR", "payment_method": pm, "confirm": confirm}, key=True)
        return intent, customer, pm

    async def earning_courier(self) -> tuple[str, dict[str, str]]:
        """A courier with earnings in the wallet: it delivered an order (delivery fee and tip)."""
        if "earning" not in self._made:
            courier = await self.courier()
            await self.order("delivered", courier)
            self._made["earning"] = courier
        return self._made["earning"]

    async def online_courier(self) -> str:
        """A courier that went online (one location fix) and then closed its socket."""
        courier_id, headers = await self.courier()
        async with self.client.ws_connect("/v1/courier/ws", headers=headers) as ws:
            await ws.send_json({"type": "location", "lat": LAT, "lng": LNG, "ts": time.time(), "seq": 1,
                                "accuracy": 8.0, "speed": 4.0, "heading": 90.0})
            async with asyncio.timeout(10):
                while (await ws.receive_json())["type"] != "ack":
                    pass
        return courier_id


@dataclass
class Order:
    id: str
    customer: dict[str, str]
    pm: str
    courier: tuple[str, dict[str, str]] | None
