"""Webhook URLs cannot reach inside (SSRF), over HTTP, with the development setting off: both
registration routes refuse every inside spelling with 422 `webhook_url_forbidden`, and a name
that resolved public at registration but private at delivery is refused at delivery (DNS
rebinding), for merchant and payment webhooks alike. DNS is an injected resolver, never real."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from aiohttp import web
from orders_helpers import eventually, make_customer, make_shop, ok, place

from fooddispatch.app import create_app
from kernel.ids import new_id
from kernel.netguard import NameNotFound, TargetPolicy
from orders.web import WEBHOOKS
from payments import store as payments_store
from payments.web import PAYMENTS
from payments.web_money import WEBHOOK_CLIENT

PUBLIC = "93.184.215.14"
_keys = itertools.count()


class Names:
    """The injected resolver: `answers[name]` is what the name resolves to now (tests change it)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {
            "hooks.merchant.example": [PUBLIC],
            "169.254.169.254.nip.io": ["169.254.169.254"],
            "inside.merchant.example": [PUBLIC, "10.20.30.40"],
            "v6inside.merchant.example": ["fd00::5"],
        }

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        if host not in self.answers:
            raise NameNotFound(host)
        return self.answers[host]


# One row per spelling: (url, the reason the 422 names).
REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "metadata_service"),
    ("https://169.254.169.254/latest/meta-data/", "metadata_service"),
    ("https://2852039166/", "metadata_service"),
    ("https://0xA9.0xFE.0xA9.0xFE/", "metadata_service"),
    ("https://0xa9fea9fe/", "metadata_service"),
    ("https://0251.0376.0251.0376/", "metadata_service"),
    ("https://169.254.43518/", "metadata_service"),
    ("https://[::ffff:169.254.169.254]/", "metadata_service"),
    ("https://[64:ff9b::a9fe:a9fe]/", "metadata_service"),
    ("https://169.254.169.254.nip.io/latest/meta-data/", "metadata_service"),
    ("https://metadata.google.internal/computeMetadata/v1/", "metadata_service"),
    ("https://169.254.1.1/", "link_local_address"),
    ("https://[fe80::1]/", "link_local_address"),
    ("https://127.0.0.1/", "loopback_address"),
    ("https://127.1/", "loopback_address"),
    ("https://[::1]/", "loopback_address"),
    ("https://localhost/", "internal_name"),
    ("https://10.0.0.1/", "private_address"),
    ("https://192.168.0.10/", "private_address"),
    ("https://100.64.0.1/", "private_address"),
    ("https://[fd00::1]/", "private_address"),
    ("https://inside.merchant.example/", "private_address"),
    ("https://v6inside.merchant.example/", "private_address"),
    ("https://0.0.0.0/", "unspecified_address"),
    ("https://[::]/", "unspecified_address"),
    ("https://224.0.0.1/", "multicast_address"),
    ("https://[ff02::1]/", "multicast_address"),
    ("https://255.255.255.255/", "broadcast_address"),
    ("https://240.0.0.1/", "reserved_address"),
    ("https://nowhere.merchant.example/", "unresolvable"),
    ("http://hooks.merchant.example/hook", "scheme_not_allowed"),
    ("https://user:secret@hooks.merchant.example/", "credentials_in_url"),
]


@pytest.fixture
def strict_settings(settings):
    return settings.replace(webhooks_allow_private=False)


@pytest.fixture
async def strict(aiohttp_client, strict_settings, make_principal):
    app = create_app(strict_settings, components=("catalog", "payments", "orders"))
    client = await aiohttp_client(app)
    names = Names()
    for webhook_client in (app[WEBHOOKS].client, app[WEBHOOK_CLIENT]):
        webhook_client.resolver = names
    shop = await make_shop(client, make_principal)
    return app, client, names, shop


async def test_both_registration_routes_refuse_every_inside_spelling(strict) -> None:
    _, client, _, shop = strict
    operator = {**shop.operator}
    for url, reason in REFUSED:
        merchant = await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff,
                                     json={"url": url, "event_types": ["order.placed"]})
        payments = await client.post("/v1/webhook_endpoints", json={"url": url},
                                     headers={**operator, "Idempotency-Key": f"wh-{next(_keys)}"})
        for resp in (merchant, payments):
            body = await resp.json()
            assert resp.status == 422, (url, resp.status, body)
            assert body["error"]["code"] == "webhook_url_forbidden" and body["error"]["param"] == "url", (url, body)
            assert body["error"]["reason"] == reason, (url, body)
    assert (await ok(await client.get("/v1/merchant/webhook_endpoints", headers=shop.staff)))["items"] == []
    assert await ok(await client.get("/v1/webhook_endpoints", headers=operator)) == []
    # and a public https target is taken by both
    await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": "https://hooks.merchant.example/orders", "event_types": ["order.placed"]}), 201)
    await ok(await client.post("/v1/webhook_endpoints", json={"url": "https://hooks.merchant.example/pay"},
                               headers={**operator, "Idempotency-Key": "wh-public"}), 201)


@pytest.fixture
async def receiver(aiohttp_server):
    hits: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        hits.append(await request.read())
        return web.Response(status=200, text="secret-from-inside")

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app, host="127.0.0.1")
    return server.port, hits


async def test_a_merchant_url_that_turns_private_after_registration_is_refused_at_delivery(
        strict, receiver, make_principal) -> None:
    app, client, names, shop = strict
    port, hits = receiver
    # Plain http so the receiver here could answer if anything let the delivery through.
    app[WEBHOOKS].client.policy = TargetPolicy(allow_http=True, allow_private=False)
    endpoint = await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": f"http://hooks.merchant.example:{port}/hook", "event_types": ["order.placed"]}), 201)
    names.answers["hooks.merchant.example"] = ["127.0.0.1"]  # rebinding: now it points at us
    _, cust, pm = await make_customer(client, make_principal)
    await place(client, cust, pm, shop.store_id)

    async def attempts() -> list | None:
        log = await ok(await client.get(f"/v1/merchant/webhook_endpoints/{endpoint['id']}/deliveries",
                                        headers=shop.staff))
        return log["items"][0]["attempts"] if log["items"] and log["items"][0]["attempts"] else None

    first = (await eventually(attempts))[0]
    assert first["status_code"] is None and first["error"] == "refused: loopback_address"
    assert hits == []
    listed = await ok(await client.get("/v1/merchant/webhook_endpoints", headers=shop.staff))
    assert listed["items"][0]["enabled"]  # DNS may change back: retried, not disabled


async def test_an_endpoint_stored_before_the_guard_is_disabled_at_its_first_delivery(
        strict, db, make_principal) -> None:
    _, client, _, shop = strict
    legacy = new_id("whe")
    async with db.acquire() as conn:  # as the issue found it: registered when nothing checked
        await conn.execute(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret, created_at) "
            "VALUES ($2, $1, 'http://169.254.169.254/latest/meta-data/', '{order.placed}', 'whsec_x', now())",
            shop.tenant_id, legacy)
    _, cust, pm = await make_customer(client, make_principal)
    await place(client, cust, pm, shop.store_id)

    async def disabled() -> dict | None:
        listed = await ok(await client.get("/v1/merchant/webhook_endpoints", headers=shop.staff))
        return None if listed["items"][0]["enabled"] else listed["items"][0]

    row = await eventually(disabled)
    assert row["disabled_reason"] == "the URL is not allowed (metadata_service)"
    log = await ok(await client.get(f"/v1/merchant/webhook_endpoints/{legacy}/deliveries", headers=shop.staff))
    assert log["items"][0]["attempts"][0]["error"] == "refused: metadata_service"


async def test_a_payments_url_that_turns_private_after_registration_is_refused_at_delivery(
        strict, receiver) -> None:
    app, client, names, shop = strict
    port, hits = receiver
    app[WEBHOOK_CLIENT].policy = TargetPolicy(allow_http=True, allow_private=False)
    created = await ok(await client.post("/v1/webhook_endpoints", json={
        "url": f"http://hooks.merchant.example:{port}/hook"}, headers={**shop.operator, "Idempotency-Key": "wh"}),
        201)
    names.answers["hooks.merchant.example"] = ["127.0.0.1"]
    pool = app[PAYMENTS].pool
    async with pool.acquire() as conn:
        await payments_store.enqueue_webhook(conn, "payment_intent.succeeded",
                                             {"id": "evt_rebind", "type": "payment_intent.succeeded"})

    async def last_error() -> str | None:
        async with pool.acquire() as conn:
            return await conn.fetchval("SELECT last_error FROM payment_webhook_deliveries WHERE endpoint_id = $1",
                                       created["id"])

    assert await eventually(last_error) == "refused: loopback_address"
    assert hits == []
