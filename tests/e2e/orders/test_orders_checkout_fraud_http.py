"""The fraud screen sees the checkout's context, over HTTP as the apps send it: a new account's large
first order, accounts sharing one card (or one device, `X-Device-Id`) and one promo, and the client's
IP (the peer, or what a configured trusted proxy says in X-Forwarded-For). Each rule is checked by the
decision payments recorded (`GET /v1/fraud/decisions`) and by what it did to the checkout."""

from __future__ import annotations

from dataclasses import replace

from orders_helpers import VISA_OK, cart, eventually, make_customer, make_shop, ok

from fooddispatch.app import create_app
from payments.web import PAYMENTS

MASTERCARD_OK = "5555555555554444"
VISA_DEBIT_OK = "4000056655665556"
SMALL = [{"item_id": "itm_fries", "quantity": 1}]


async def _decisions(client, operator: dict, customer_id: str, count: int = 1) -> list[dict]:
    """The customer's fraud decisions, oldest first (they are written apart, maybe after the 201)."""
    async def found() -> list[dict] | None:
        page = await ok(await client.get("/v1/fraud/decisions?limit=100", headers=operator))
        mine = [d for d in page["data"] if d["customer"] == customer_id]
        return mine[::-1] if len(mine) >= count else None

    return await eventually(found)


async def _checkout(client, headers: dict, pm: str, store_id: str, key: str, *, extra: dict | None = None, **kw):
    quote = await ok(await client.post("/v1/quotes", json=cart(store_id, **kw), headers=headers), 201)
    return await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                             headers={**headers, "Idempotency-Key": key, **(extra or {})})


async def _deliver(client, make_principal, shop, order_id: str) -> None:
    await ok(await client.post(f"/v1/orders/{order_id}/accept", json={}, headers=shop.staff))
    courier, courier_headers = await make_principal("courier")
    await ok(await client.post(f"/v1/orders/{order_id}/courier", json={"courier_id": courier.account_id},
                               headers=shop.operator))
    await ok(await client.post(f"/v1/orders/{order_id}/pickup", json={}, headers=courier_headers))
    done = await ok(await client.post(f"/v1/orders/{order_id}/deliver", json={}, headers=courier_headers))
    assert done["status"] == "delivered"


async def test_a_new_accounts_large_first_order_is_flagged_and_its_next_one_after_a_delivery_is_not(
        client, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    customer_id, cust, pm = await customer_factory()
    big = [{"item_id": "itm_burger", "quantity": 15}]  # 150.00 of food, with fees and tax over 150
    first = await _checkout(client, cust, pm, shop.store_id, "big-1", lines=big)
    order = await ok(first, 201)
    assert order["total"]["amount"] >= 15_000
    [decision] = await _decisions(client, shop.operator, customer_id)
    # 40 alone is below the review threshold: the order goes through, the reason is on record.
    assert (decision["score"], decision["level"], decision["action"], decision["reasons"]) == (
        40, "normal", "allow", ["new_account_large_first_order"])

    await _deliver(client, make_principal, shop, order["id"])
    await ok(await _checkout(client, cust, pm, shop.store_id, "big-2", lines=big), 201)
    second = (await _decisions(client, shop.operator, customer_id, 2))[1]
    assert (second["score"], second["reasons"]) == (0, [])


async def _promo(client, shop, code: str) -> None:
    await ok(await client.post("/v1/promos", headers=shop.staff, json={
        "code": code, "kind": "percent", "percent_bps": 1000, "store_id": shop.store_id}), 201)


async def test_accounts_sharing_one_card_and_one_promo_must_authenticate(
        client, shop_factory, make_principal) -> None:
    shop = await shop_factory()
    await _promo(client, shop, "SHARE10")
    accounts = [await make_customer(client, make_principal, VISA_OK) for _ in range(3)]
    (first_id, first, first_pm), *others = accounts
    await ok(await _checkout(client, first, first_pm, shop.store_id, "p", lines=SMALL, promo_code="share10"), 201)
    assert (await _decisions(client, shop.operator, first_id))[0]["reasons"] == []
    for customer_id, headers, pm in others:
        resp = await _checkout(client, headers, pm, shop.store_id, "p", lines=SMALL, promo_code="SHARE10")
        err = (await resp.json())["error"]
        assert (resp.status, err["code"]) == (402, "authentication_required"), err
        [decision] = await _decisions(client, shop.operator, customer_id)
        assert (decision["score"], decision["level"], decision["reasons"]) == (
            70, "elevated", ["promo_abuse_shared_card_or_device"])
    # The same card without the promo is no reason to ask.
    lone_id, lone, lone_pm = await make_customer(client, make_principal, VISA_OK)
    await ok(await _checkout(client, lone, lone_pm, shop.store_id, "p", lines=SMALL), 201)
    assert (await _decisions(client, shop.operator, lone_id))[0]["reasons"] == []


async def test_accounts_sharing_one_device_and_one_promo_must_authenticate(
        client, shop_factory, make_principal) -> None:
    shop = await shop_factory()
    await _promo(client, shop, "PHONE10")
    device = {"X-Device-Id": "ios-5B0F6C1E-phone-of-many"}
    cards = (VISA_OK, MASTERCARD_OK, VISA_DEBIT_OK)  # three cards: only the device is shared
    accounts = [await make_customer(client, make_principal, card) for card in cards]
    statuses = []
    for _customer_id, headers, pm in accounts:
        resp = await _checkout(client, headers, pm, shop.store_id, "d", extra=device, lines=SMALL,
                               promo_code="PHONE10")
        statuses.append(resp.status)
    assert statuses == [201, 402, 402]
    levels = [(await _decisions(client, shop.operator, cid))[0]["level"] for cid, _, _ in accounts]
    assert levels == ["normal", "elevated", "elevated"]
    too_long = await _checkout(client, accounts[0][1], accounts[0][2], shop.store_id, "long",
                               extra={"X-Device-Id": "x" * 200}, lines=SMALL)
    assert (too_long.status, (await too_long.json())["error"]["param"]) == (422, "X-Device-Id")


async def test_the_client_ip_reaches_the_screen_and_x_forwarded_for_only_from_a_trusted_proxy(
        aiohttp_client, settings, make_principal) -> None:
    components = ("catalog", "payments", "orders")
    direct = await aiohttp_client(create_app(settings, components=components))
    shop = await make_shop(direct, make_principal)  # the second app below serves the same database

    async def two_customers_from(client, forwarded: tuple[str, str]) -> list[list[str]]:
        # Velocity per IP at 1 a window: a second checkout from one address is over it.
        fraud = client.app[PAYMENTS].fraud
        fraud.rules = replace(fraud.rules, ip_velocity=1)
        reasons = []
        for i, (card, ip) in enumerate(zip((VISA_OK, MASTERCARD_OK), forwarded, strict=True)):
            customer_id, headers, pm = await make_customer(client, make_principal, card)
            await ok(await _checkout(client, headers, pm, shop.store_id, f"ip{i}", lines=SMALL,
                                     extra={"X-Forwarded-For": f"198.51.100.9, {ip}"}), 201)
            reasons.append((await _decisions(client, shop.operator, customer_id))[0]["reasons"])
        return reasons

    # No proxy configured: the header is the client's word and is ignored; both come from the peer.
    assert await two_customers_from(direct, ("203.0.113.1", "203.0.113.2")) == [[], ["velocity:ip"]]
    await direct.close()

    proxied = await aiohttp_client(create_app(replace(settings, trusted_proxies=("127.0.0.0/8",),
                                                      redis_prefix=settings.redis_prefix + "px:"),
                                              components=components))
    # Behind a trusted proxy: the address it saw is the client, so two clients are two addresses...
    assert await two_customers_from(proxied, ("203.0.113.1", "203.0.113.2")) == [[], []]
    # ...and one client twice is one.
    assert await two_customers_from(proxied, ("203.0.113.7", "203.0.113.7")) == [[], ["velocity:ip"]]
