"""`fooddispatch.client` against the real app (real PostgreSQL and Redis): a customer's whole order through
the typed client, the error JSON as `ApiError`, and retries that never place an order twice."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
from aiohttp import web

from catalog.messages import (
    CartLineInput,
    CategoryIn,
    DiscoveryQuery,
    FeeBand,
    HoursIn,
    ItemIn,
    MenuIn,
    Period,
    StoreCreate,
    TenantCreate,
    ZonesIn,
)
from fooddispatch.auth import CreateAccount, CreateApiKey, Login, Register
from fooddispatch.client import ApiError, Client
from orders.messages import (
    AcceptRequest,
    AssignRequest,
    CheckoutRequest,
    CourierStepRequest,
    OrderListQuery,
    OrderOut,
    Point,
    Proof,
    QuoteRequest,
    RatingRequest,
    TipRequest,
)
from payments.messages import CardDetails, ConfirmPaymentIntent, CreatePaymentMethod

LAT, LNG = 52.5200, 13.4050
SQUARE = {"type": "Polygon", "coordinates": [[[13.35, 52.48], [13.46, 52.48], [13.46, 52.56], [13.35, 52.56],
                                              [13.35, 52.48]]]}
MENU = MenuIn(categories=[CategoryIn(name="Mains", id="cat_mains", items=[
    ItemIn(name="Burger", price=1000, id="itm_burger"), ItemIn(name="Fries", price=400, id="itm_fries")])])
CARD_OK, CARD_DECLINE, CARD_3DS = "4242424242424242", "4000000000000002", "4000002500003155"
PASSWORD = "client-password-1"


@pytest.fixture
def app(settings):
    """The packages a customer's order goes through; dispatch and tracking are not needed by hand-assignment."""
    from fooddispatch.app import create_app

    return create_app(settings, components=("catalog", "payments", "orders"))


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def api(client, delays) -> Client:
    """The typed client over the test server's own session; its back-off waits are recorded, not slept."""
    async def no_sleep(seconds: float) -> None:
        delays.append(seconds)

    return Client(str(client.make_url("")), client.session, sleep=no_sleep)


async def as_role(api: Client, make_principal, role: str, tenant_id: str | None = None) -> tuple[Client, str]:
    who, headers = await make_principal(role, tenant_id=tenant_id)
    return api.with_token(headers["Authorization"].removeprefix("Bearer ")), who.account_id


@dataclass
class Shop:
    operator: Client
    tablet: Client  # the tenant's API key, as a restaurant tablet holds it
    store_id: str


async def open_shop(api: Client, make_principal) -> Shop:
    operator, _ = await as_role(api, make_principal, "operator")
    tenant = await operator.create_tenant(TenantCreate(name="Burger Bros"))
    key = await operator.create_api_key(tenant.id, CreateApiKey(name="tablet"))
    tablet = api.with_token(key.key)
    store = await tablet.create_store(tenant.id, StoreCreate(
        name="Mitte", lat=LAT, lng=LNG, timezone="Europe/Berlin", currency="EUR", tax_rate_bps=700))
    await tablet.put_hours(store.id, HoursIn(periods=[Period(weekday=d, opens="00:00", closes="24:00")
                                                      for d in range(7)]))
    await tablet.put_zones(store.id, ZonesIn(zones=[SQUARE], max_delivery_m=8000,
                                             fee_bands=[FeeBand(up_to_m=8000, fee=299)]))
    await tablet.put_menu(store.id, MENU)
    return Shop(operator, tablet, store.id)


async def new_customer(api: Client, card: str = CARD_OK) -> tuple[Client, str]:
    me = await api.register(Register(email=f"{uuid.uuid4().hex[:12]}@example.com", password=PASSWORD))
    customer = api.with_token(me.token)
    method = await customer.add_payment_method(CreatePaymentMethod(
        card=CardDetails(number=card, exp_month=12, exp_year=2034, cvc="123")))
    return customer, method.id


def cart(store_id: str, **kw) -> QuoteRequest:
    return QuoteRequest(store_id=store_id, dropoff=Point(lat=52.53, lng=13.41), address="Torstr. 1, Berlin",
                        lines=[CartLineInput(item_id="itm_burger", quantity=2)], **kw)


async def test_a_customer_orders_through_the_client_from_discovery_to_rating(api, make_principal) -> None:
    shop = await open_shop(api, make_principal)
    customer, card = await new_customer(api)
    cards = await customer.discover(DiscoveryQuery(lat=52.53, lng=13.41))
    assert [c.id for c in cards.items] == [shop.store_id] and cards.items[0].open_now
    menu = await customer.customer_menu(shop.store_id)
    assert [i.id for i in menu.categories[0].items] == ["itm_burger", "itm_fries"]
    quote = await customer.quote(cart(shop.store_id, tip=100))
    assert quote.subtotal.amount == 2000 and quote.tip.amount == 100
    order = await customer.checkout(CheckoutRequest(quote_id=quote.id, payment_method_id=card))
    assert isinstance(order, OrderOut) and order.status == "placed" and order.total == quote.total

    incoming = await shop.tablet.store_orders(shop.store_id, OrderListQuery(status="placed"))
    assert [o.id for o in incoming.items] == [order.id]
    assert (await shop.tablet.accept_order(order.id, AcceptRequest(prep_time_s=600))).status == "accepted"
    assert (await shop.tablet.ready_order(order.id)).status == "ready"

    await shop.operator.create_account(CreateAccount(role="courier", email="rider@example.com", password=PASSWORD))
    rider = await api.login(Login(email="rider@example.com", password=PASSWORD))
    courier = api.with_token(rider.token)
    assert (await shop.operator.assign_courier(order.id, AssignRequest(courier_id=rider.account_id))).courier_id
    assert (await courier.pickup_order(order.id, CourierStepRequest())).status == "picked_up"
    done = await courier.deliver_order(order.id, CourierStepRequest(proof=Proof(code="1234")))
    assert done.status == "delivered" and done.captured == quote.total

    assert (await customer.tip_order(order.id, TipRequest(tip=300))).fees[-1].amount.amount >= 300
    assert (await customer.rate_order(order.id, RatingRequest(stars=5))).rating == 5
    mine = await customer.list_orders()
    assert [o.id for o in mine.items] == [order.id] and mine.items[0].status == "delivered"


async def test_refusals_are_api_errors_with_the_servers_code_status_message_and_param(api, make_principal) -> None:
    shop = await open_shop(api, make_principal)
    with pytest.raises(ApiError) as anonymous:
        await api.quote(cart(shop.store_id))
    assert (anonymous.value.status, anonymous.value.code) == (401, "unauthenticated")
    customer, card = await new_customer(api, CARD_DECLINE)
    with pytest.raises(ApiError) as invalid:
        await customer.quote(cart(shop.store_id, tip=-5))  # a Struct is validated where it is decoded: the server
    assert (invalid.value.status, invalid.value.code, invalid.value.param) == (422, "validation_error", "tip")
    assert invalid.value.message
    with pytest.raises(ApiError) as missing:
        await customer.get_order("ord_00000000000000000000000000")
    assert (missing.value.status, missing.value.code) == (404, "resource_missing")
    quote = await customer.quote(cart(shop.store_id))
    with pytest.raises(ApiError) as declined:
        await customer.checkout(CheckoutRequest(quote_id=quote.id, payment_method_id=card))
    assert declined.value.status == 402 and declined.value.code == "card_declined"


async def test_a_card_asking_for_3ds_names_its_intent_in_the_error_and_checks_out_once_confirmed(
        api, make_principal) -> None:
    shop = await open_shop(api, make_principal)
    customer, card = await new_customer(api, CARD_3DS)
    quote = await customer.quote(cart(shop.store_id))
    with pytest.raises(ApiError) as challenge:
        await customer.checkout(CheckoutRequest(quote_id=quote.id, payment_method_id=card))
    assert (challenge.value.status, challenge.value.code) == (402, "authentication_required")
    intent_id = challenge.value.extra["payment_intent"]
    confirmed = await customer.confirm_payment_intent(intent_id, ConfirmPaymentIntent(authentication="succeeded"))
    assert confirmed.status == "requires_capture"
    order = await customer.checkout(CheckoutRequest(quote_id=quote.id, payment_intent=intent_id))
    assert order.status == "placed"


class Flaky:
    """The outermost middleware: remembers every attempt's Idempotency-Key, and loses the answer of the first
    checkout on the way back (a proxy's 503, after the order was placed) or refuses reads with 503 `times` times."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self.attempts: Counter[str] = Counter()
        self.lose_checkout_answers = 0
        self.refuse_reads = 0

    async def handle(self, request: web.Request, handler) -> web.StreamResponse:
        self.attempts[f"{request.method} {request.path}"] += 1
        if request.method == "POST" and request.path == "/v1/orders":
            self.keys.append(request.headers.get("Idempotency-Key"))
            response = await handler(request)
            if self.lose_checkout_answers:
                self.lose_checkout_answers -= 1
                return web.json_response({"error": {"code": "upstream_unavailable", "message": "lost"}},
                                         status=503, headers={"Retry-After": "1"})
            return response
        if request.method == "GET" and self.refuse_reads:
            self.refuse_reads -= 1
            return web.json_response({"error": {"code": "database_unavailable", "message": "down"}}, status=503)
        return await handler(request)


@pytest.fixture
def flaky(app) -> Flaky:
    flaky = Flaky()

    @web.middleware
    async def outermost(request: web.Request, handler) -> web.StreamResponse:
        return await flaky.handle(request, handler)

    app.middlewares.insert(0, outermost)
    return flaky


async def test_a_write_retried_after_a_lost_answer_returns_the_same_order_and_places_one(
        flaky, api, make_principal, db, delays) -> None:
    shop = await open_shop(api, make_principal)
    customer, card = await new_customer(api)
    quote = await customer.quote(cart(shop.store_id))
    request = CheckoutRequest(quote_id=quote.id, payment_method_id=card)
    flaky.lose_checkout_answers = 1
    order = await customer.checkout(request)
    assert len(flaky.keys) == 2 and flaky.keys[0] == flaky.keys[1] and flaky.keys[0]  # one key for the call
    assert delays == [1.0]  # the server's Retry-After, not a guess
    # The phone lost the answer and sends the call again on purpose, with the first call's key.
    again = await customer.checkout(request, idempotency_key=flaky.keys[0])
    assert again.id == order.id and again == order
    with pytest.raises(ApiError) as second:  # a new call gets a new key: a second checkout of the same quote
        await customer.checkout(request)
    assert flaky.keys[-1] != flaky.keys[0] and second.value.status == 409, second.value
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders WHERE customer_id = $1", order.customer_id) == 1


async def test_reads_are_retried_on_503_with_backoff_and_refusals_are_not_retried(flaky, api, delays) -> None:
    flaky.refuse_reads = 2
    cards = await api.discover(DiscoveryQuery(lat=52.53, lng=13.41))
    assert cards.items == [] and flaky.attempts["GET /v1/stores"] == 3
    assert delays == [0.2, 0.4]  # no Retry-After: doubling from the policy's base delay
    flaky.refuse_reads = 10
    with pytest.raises(ApiError) as down:
        await api.discover(DiscoveryQuery(lat=52.53, lng=13.41))
    assert (down.value.status, down.value.code) == (503, "database_unavailable")
    assert flaky.attempts["GET /v1/stores"] == 3 + 4  # the policy's attempts, then the last answer is raised
    flaky.refuse_reads = 0
    with pytest.raises(ApiError) as refused:
        await api.get_order("ord_00000000000000000000000000")
    assert refused.value.status == 401 and flaky.attempts["GET /v1/orders/ord_00000000000000000000000000"] == 1


async def test_the_client_reads_the_newest_shapes_even_with_a_key_pinned_to_an_older_version(
        api, make_principal, db) -> None:
    shop = await open_shop(api, make_principal)
    customer, card = await new_customer(api)
    for _ in range(2):
        quote = await customer.quote(cart(shop.store_id))
        await customer.checkout(CheckoutRequest(quote_id=quote.id, payment_method_id=card))
    async with db.acquire() as conn:  # a tablet's key made before order pages said `has_more`
        await conn.execute("UPDATE api_keys SET api_version = '2026-11-01'")
    page = await shop.tablet.store_orders(shop.store_id, OrderListQuery(status="placed", limit=1))
    assert len(page.items) == 1 and page.has_more and page.next_cursor  # the Structs' version, not the key's
