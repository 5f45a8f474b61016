"""What the money tests of orders share: a merchant's webhook receiver, the courier steps of a
delivery, and the payments side of an order as stored (its intents, refunds and ledger entries)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from aiohttp import web
from orders_helpers import ok

_keys = itertools.count(1)


def keyed(headers: dict, key: str | None = None) -> dict:
    return {**headers, "Idempotency-Key": key or f"money-{next(_keys)}"}


@dataclass
class Receiver:
    """A merchant's webhook endpoint: keeps every event posted to it."""

    events: list[dict] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.events.append(await request.json())
        return web.Response(status=200)

    def refunds_of(self, order_id: str) -> list[dict]:
        """The `order.refunded` events received for the order, each once (by event id: delivery is
        at least once)."""
        seen: dict[str, dict] = {}
        for e in self.events:
            if e["type"] == "order.refunded" and e["data"]["object"]["order_id"] == order_id:
                seen[e["id"]] = e["data"]["object"]
        return list(seen.values())


async def start_receiver(aiohttp_server, client, shop, event_types: list[str]) -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": str(server.make_url("/hook")), "event_types": event_types}), 201)
    return receiver


async def deliver(client, make_principal, oid: str) -> dict:
    """An operator assigns a courier (dispatch's job otherwise), who picks up and delivers."""
    _, operator = await make_principal("operator")
    courier, headers = await make_principal("courier")
    await ok(await client.post(f"/v1/orders/{oid}/courier", json={"courier_id": courier.account_id},
                               headers=operator))
    await ok(await client.post(f"/v1/orders/{oid}/pickup", json={}, headers=headers))
    resp = await client.post(f"/v1/orders/{oid}/deliver", json={"proof": {"code": "0000"}}, headers=headers)
    return await ok(resp)


async def intents_of(db, order_id: str) -> list[dict]:
    """The order's payment intents: its hold and any tip intents (`<order>:tip:<n>`)."""
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, reference, status, amount_captured, amount_refunded FROM payment_intents "
            "WHERE reference = $1 OR reference LIKE $1 || ':%' ORDER BY id", order_id)
    return [dict(r) for r in rows]


async def refunds_stored(db, intent_ids: list[str]) -> dict[str, int]:
    """Payments' refunds of these intents, by refund id."""
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT id, amount FROM payment_refunds WHERE payment_intent_id = ANY($1)",
                                intent_ids)
    return {r["id"]: r["amount"] for r in rows}


async def ledger_refunds(db, intent_ids: list[str]) -> int:
    """What the ledger's refund entries of these intents moved (their debits of whoever bore them: the
    platform's `platform_refunds`, or a restaurant's `restaurant_payable` for a merchant refund)."""
    async with db.acquire() as conn:
        total = await conn.fetchval(
            "SELECT coalesce(sum(p.amount), 0) FROM journal_entries e JOIN postings p ON p.entry_id = e.id "
            "WHERE e.kind = 'refund' AND e.intent_id = ANY($1) AND p.amount > 0", intent_ids)
    return int(total)
