"""Checkout's rules through in-memory fakes of its ports (catalog, payments, surge) and a manual
clock: no servers. What the store adds (the quote's claim, promo redemption, the insert, the
transaction that undoes a refused checkout) is covered by tests/e2e/orders/."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from orders_fakes import FakeCatalog, FakePayments, FakeSurge, store_context

from catalog import CartLineInput, ItemUnavailable, OutOfStock, SelectedOption
from catalog.errors import StoreNotFound
from kernel.clock import ManualClock
from kernel.errors import ValidationFailed
from kernel.money import Money
from orders.checkout_rules import (
    CheckoutRules,
    ClientContext,
    check_payment_choice,
    new_order,
    risk_context,
)
from orders.errors import NotDeliverable, PromoRejected, StoreUnavailable
from orders.messages import CheckoutRequest, Point, QuoteRequest
from orders.pricing import FeePolicy, Promo, PromoKind, PromoUsage
from orders.quote import Priced
from payments import PaymentDeclined, PaymentRequiresAction
from payments.errors import IntentAmountMismatch

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BURGER_WITH_CHEESE = CartLineInput("itm_burger", 2, [SelectedOption("opt_cheese")])
FRIES = CartLineInput("itm_fries", 1)


def request(*lines: CartLineInput, **kw: object) -> QuoteRequest:
    return QuoteRequest(store_id="sto_1", dropoff=Point(52.53, 13.41), address="Torstr. 1",
                        lines=list(lines) or [BURGER_WITH_CHEESE, FRIES], **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def catalog() -> FakeCatalog:
    fake = FakeCatalog()
    fake.add_store()
    return fake


@pytest.fixture
def payments() -> FakePayments:
    return FakePayments(declined={"pm_declined"}, challenged={"pm_3ds"})


@pytest.fixture
def surge() -> FakeSurge:
    return FakeSurge()


@pytest.fixture
def rules(catalog: FakeCatalog, payments: FakePayments, surge: FakeSurge) -> CheckoutRules:
    return CheckoutRules(catalog, payments, surge, FeePolicy())


async def priced(rules: CheckoutRules, req: QuoteRequest, now: datetime, *,
                 promo: tuple[Promo, PromoUsage] | None = None, surge: Fraction | None = None) -> Priced:
    return await rules.price(await rules.cart(None, req, now), req, now, promo, surge=surge)


# ---- which stores take an order ---------------------------------------------------------------------

async def test_a_paused_store_is_reported_before_the_carts_own_problems(rules, catalog, clock) -> None:
    catalog.add_store(store_context(status="paused"))
    unknown_item = CartLineInput("itm_gone", 1)
    with pytest.raises(StoreUnavailable) as refused:
        await rules.cart(None, request(unknown_item), clock.now())
    assert refused.value.param == "store_id" and "paused" in refused.value.message
    catalog.add_store(store_context())
    with pytest.raises(ItemUnavailable):  # the same cart at an online store: now the cart is the problem
        await rules.cart(None, request(unknown_item), clock.now())


async def test_a_paused_store_takes_a_scheduled_order_for_when_it_is_open(rules, catalog, clock) -> None:
    catalog.add_store(store_context(status="paused"))
    later = clock.now() + timedelta(hours=2)
    cart = await rules.cart(None, request(scheduled_for=later), clock.now())
    assert cart.at == later
    assert catalog.calls[-1] == ("cart_quote", ("sto_1", later))  # the menu and hours as they read then
    catalog.add_store(store_context(status="paused", open_at_time=False))
    with pytest.raises(StoreUnavailable) as refused:
        await rules.cart(None, request(scheduled_for=later), clock.now())
    assert refused.value.param == "scheduled_for"


async def test_a_closed_store_and_a_drop_off_outside_the_area_are_refused(rules, catalog, clock) -> None:
    catalog.add_store(store_context(open_at_time=False))
    with pytest.raises(StoreUnavailable, match="closed now"):
        await rules.cart(None, request(), clock.now())
    catalog.add_store(store_context(deliverable=False))
    with pytest.raises(NotDeliverable) as refused:
        await rules.cart(None, request(), clock.now())
    assert refused.value.param == "dropoff"


async def test_an_unknown_store_is_catalogs_404(rules, clock) -> None:
    with pytest.raises(StoreNotFound):
        await rules.cart(None, replace_store(request(), "sto_nope"), clock.now())


def replace_store(req: QuoteRequest, store_id: str) -> QuoteRequest:
    return QuoteRequest(store_id=store_id, dropoff=req.dropoff, address=req.address, lines=req.lines)


@pytest.mark.parametrize("ahead", [timedelta(minutes=14), timedelta(days=7, minutes=1)])
async def test_a_scheduled_time_must_be_15_minutes_to_7_days_ahead(rules, catalog, clock, ahead) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await rules.cart(None, request(scheduled_for=clock.now() + ahead), clock.now())
    assert refused.value.param == "scheduled_for"
    assert catalog.calls == []  # refused before the catalog is asked
    await rules.cart(None, request(scheduled_for=clock.now() + timedelta(minutes=15)), clock.now())


async def test_a_scheduled_time_without_a_zone_is_refused(rules, clock) -> None:
    naive = (clock.now() + timedelta(hours=1)).replace(tzinfo=None)
    with pytest.raises(ValidationFailed, match="time zone"):
        await rules.cart(None, request(scheduled_for=naive), clock.now())


# ---- pricing ----------------------------------------------------------------------------------------

async def test_the_bill_adds_the_menu_lines_options_fees_tax_and_tip(rules, clock) -> None:
    p = await priced(rules, request(tip=150), clock.now())
    b = p.breakdown
    assert [line.line_total.amount for line in p.lines] == [2300, 400]  # (1000 + 150 cheese) x 2, fries
    assert b.subtotal == Money(2700, "EUR")
    assert b.delivery_fee == Money(299, "EUR") and b.busy_area_fee == Money(0, "EUR")
    assert b.service_fee == Money(270, "EUR") and b.small_order_fee == Money(0, "EUR")
    assert b.tax == Money(189, "EUR")  # 7 % of the food, on top
    assert b.total == Money(2700 + 299 + 270 + 189 + 150, "EUR")
    assert p.window[0] < p.window[1] and p.window[0] > clock.now() + timedelta(seconds=600)


async def test_a_quote_reads_the_live_surge_and_checkout_keeps_the_quoted_level(rules, surge, clock) -> None:
    surge.level = Fraction(3, 2)
    quoted = await priced(rules, request(), clock.now())
    # 2.99 x 1.5 = 4.485, rounded half to even: 4.48, the 1.49 above the band fee shown as its own line
    assert surge.reads == 1 and quoted.breakdown.busy_area_fee == Money(149, "EUR")
    surge.level = Fraction(3)  # the area got busier since the quote
    again = await priced(rules, request(), clock.now(), surge=quoted.breakdown.surge_multiplier)
    assert surge.reads == 1  # checkout did not read the live level
    assert again.breakdown.total == quoted.breakdown.total


def promo(**kw: object) -> Promo:
    base = {"id": "pro_1", "code": "SAVE10", "kind": PromoKind.PERCENT, "percent_bps": 1000, "tenant_id": "ten_1"}
    return Promo(**(base | kw))  # type: ignore[arg-type]


async def test_a_promo_code_needs_a_promo_of_this_stores_tenant_or_the_platform(rules, clock) -> None:
    req = request(promo_code="save10")
    with pytest.raises(PromoRejected) as unknown:
        await priced(rules, req, clock.now(), promo=None)
    assert unknown.value.code == "promo_unknown"
    with pytest.raises(PromoRejected) as elsewhere:
        await priced(rules, req, clock.now(), promo=(promo(tenant_id="ten_other"), PromoUsage()))
    assert elsewhere.value.code == "promo_wrong_store"
    platform = await priced(rules, req, clock.now(), promo=(promo(tenant_id=None), PromoUsage()))
    own = await priced(rules, req, clock.now(), promo=(promo(), PromoUsage()))
    assert platform.breakdown.discount == own.breakdown.discount == Money(270, "EUR")
    assert own.promo is not None and own.promo.id == "pro_1"


async def test_a_promo_is_checked_against_the_customers_use_of_it(rules, clock) -> None:
    with pytest.raises(PromoRejected) as used_up:
        await priced(rules, request(promo_code="SAVE10"), clock.now(),
                     promo=(promo(per_customer_limit=1), PromoUsage(redemptions_by_customer=1)))
    assert used_up.value.code == "promo_limit_reached"


async def test_a_request_without_a_code_ignores_any_promo(rules, clock) -> None:
    p = await priced(rules, request(), clock.now(), promo=(promo(), PromoUsage()))
    assert p.promo is None and p.breakdown.discount == Money(0, "EUR")


# ---- stock and the payment hold ---------------------------------------------------------------------

def body(**kw: str) -> CheckoutRequest:
    return CheckoutRequest(quote_id="quo_1", **kw)


async def test_stock_is_reserved_per_item_summed_over_lines_before_the_hold(rules, catalog, payments,
                                                                          clock) -> None:
    req = request(CartLineInput("itm_fries", 2), BURGER_WITH_CHEESE, CartLineInput("itm_fries", 1))
    p = await priced(rules, req, clock.now())
    hold = await rules.reserve_and_hold(None, p, body(payment_method_id="pm_ok"), order_id="ord_1",
                                        customer_id="cus_1", key="K1", risk=risk_context(None, first_order=True,
                                                                                         promo=None))
    assert catalog.calls[-1] == ("reserve", ("ord_1", [("itm_burger", 2), ("itm_fries", 3)]))
    assert hold.amount == p.breakdown.total


async def test_out_of_stock_never_reaches_the_card(rules, catalog, payments, clock) -> None:
    catalog.stock["itm_fries"] = 1
    p = await priced(rules, request(CartLineInput("itm_fries", 1), CartLineInput("itm_fries", 1)), clock.now())
    with pytest.raises(OutOfStock) as short:
        await rules.reserve_and_hold(None, p, body(payment_method_id="pm_ok"), order_id="ord_1",
                                     customer_id="cus_1", key="K1", risk=risk_context(None, first_order=True,
                                                                                      promo=None))
    assert short.value.param == "itm_fries"
    assert payments.calls == [] and catalog.stock["itm_fries"] == 1


async def test_a_new_hold_is_keyed_by_the_checkout_and_tells_the_fraud_screen_where_it_comes_from(
        rules, payments, clock) -> None:
    p = await priced(rules, request(promo_code="SAVE10"), clock.now(), promo=(promo(), PromoUsage()))
    risk = risk_context(ClientContext(ip="203.0.113.9", device_id="dev-1"), first_order=True, promo=p.promo)
    await rules.reserve_and_hold(None, p, body(payment_method_id="pm_ok"), order_id="ord_1", customer_id="cus_1",
                                 key="K1", risk=risk)
    [call] = payments.called("authorize")
    assert call["idempotency_key"] == "checkout:cus_1:K1" and call["reference"] == "ord_1"
    assert call["amount"] == p.breakdown.total
    assert call["metadata"] == {"order_id": "ord_1", "store_id": "sto_1", "tenant_id": "ten_1"}
    assert (call["risk"].ip, call["risk"].device_id, call["risk"].first_order, call["risk"].promo_code) == (
        "203.0.113.9", "dev-1", True, "pro_1")  # the promo by its id, whatever spelling was typed


async def test_a_retry_with_the_same_key_reaches_the_same_hold(rules, payments, clock) -> None:
    p = await priced(rules, request(), clock.now())
    risk = risk_context(None, first_order=False, promo=None)
    first = await rules.reserve_and_hold(None, p, body(payment_method_id="pm_ok"), order_id="ord_1",
                                         customer_id="cus_1", key="K1", risk=risk)
    again = await rules.reserve_and_hold(None, p, body(payment_method_id="pm_ok"), order_id="ord_2",
                                         customer_id="cus_1", key="K1", risk=risk)
    assert again.intent_id == first.intent_id and len(payments.holds) == 1


@pytest.mark.parametrize(("method", "error"), [("pm_declined", PaymentDeclined), ("pm_3ds", PaymentRequiresAction)])
async def test_a_decline_or_a_challenge_is_payments_402(rules, clock, method, error) -> None:
    p = await priced(rules, request(), clock.now())
    with pytest.raises(error) as refused:
        await rules.reserve_and_hold(None, p, body(payment_method_id=method), order_id="ord_1",
                                     customer_id="cus_1", key="K1", risk=risk_context(None, first_order=True,
                                                                                      promo=None))
    assert refused.value.status == 402


async def test_an_intent_authorized_apart_is_attached_instead_of_a_new_hold(rules, payments, clock) -> None:
    p = await priced(rules, request(), clock.now())
    payments.authorized_apart["pi_3ds"] = ("cus_1", p.breakdown.total)
    hold = await rules.reserve_and_hold(None, p, body(payment_intent="pi_3ds"), order_id="ord_1",
                                        customer_id="cus_1", key="K2", risk=risk_context(None, first_order=True,
                                                                                         promo=None))
    assert hold.intent_id == "pi_3ds"
    assert payments.called("authorize") == []
    [call] = payments.called("attach_authorized")
    assert call["reference"] == "ord_1" and call["amount"] == p.breakdown.total


async def test_an_intent_for_another_amount_is_refused(rules, payments, clock) -> None:
    p = await priced(rules, request(), clock.now())
    payments.authorized_apart["pi_3ds"] = ("cus_1", p.breakdown.total - Money(1, "EUR"))
    with pytest.raises(IntentAmountMismatch):
        await rules.reserve_and_hold(None, p, body(payment_intent="pi_3ds"), order_id="ord_1",
                                     customer_id="cus_1", key="K2", risk=risk_context(None, first_order=True,
                                                                                      promo=None))


@pytest.mark.parametrize("kw", [{}, {"payment_method_id": "pm_ok", "payment_intent": "pi_1"}])
def test_a_checkout_pays_with_exactly_one_of_a_method_and_an_intent(kw) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_payment_choice(body(**kw))
    assert refused.value.param in ("payment_method_id", "payment_intent")
    check_payment_choice(body(payment_method_id="pm_ok"))
    check_payment_choice(body(payment_intent="pi_1"))


# ---- the order written ------------------------------------------------------------------------------

async def test_the_new_order_is_due_for_acceptance_and_ready_from_when_the_kitchen_can_start(rules, clock) -> None:
    later = clock.now() + timedelta(hours=3)
    p = await priced(rules, request(scheduled_for=later, tip=100), clock.now())
    hold = await rules.reserve_and_hold(None, p, body(payment_method_id="pm_ok"), order_id="ord_1",
                                        customer_id="cus_1", key="K1", risk=risk_context(None, first_order=True,
                                                                                         promo=None))
    new = new_order(p, order_id="ord_1", customer_id="cus_1", key="K1", quote_id="quo_1", hold=hold,
                    payment_method_id="pm_ok")
    row = new.columns
    assert row["accept_by"] == clock.now() + timedelta(seconds=300)  # the store's accept window, from now
    assert row["ready_at"] == later + timedelta(seconds=600)  # prep time from the scheduled time
    assert row["status"] == "placed" and row["intent_id"] == hold.intent_id and row["promo_id"] is None
    pricing = json.loads(row["pricing"])
    assert pricing["hold"] == pricing["total"] == p.breakdown.total.amount and pricing["tip"] == 100
    assert [line[:6] for line in new.lines] == [(1, "itm_burger", "Burger", 2, 1150, 2300),
                                                (2, "itm_fries", "Fries", 1, 400, 400)]
    assert json.loads(new.lines[0][6])[0]["option_id"] == "opt_cheese"
    event = new.event
    assert event.type == "order.placed" and event.aggregate_id == "ord_1"
    assert event.data["total"] == {"amount": p.breakdown.total.amount, "currency": "EUR"}
    assert event.data["scheduled_for"] == later.isoformat() and event.data["promised_at"] == p.window[1].isoformat()


async def test_an_order_names_its_promo_only_when_the_promo_took_something_off(rules, clock) -> None:
    p = await priced(rules, request(promo_code="SAVE10"), clock.now(), promo=(promo(), PromoUsage()))
    hold = await rules.reserve_and_hold(None, p, body(payment_method_id="pm_ok"), order_id="ord_1",
                                        customer_id="cus_1", key="K1", risk=risk_context(None, first_order=True,
                                                                                         promo=None))
    kept = new_order(p, order_id="ord_1", customer_id="cus_1", key="K1", quote_id="quo_1", hold=hold,
                     payment_method_id="pm_ok")
    assert kept.columns["promo_id"] == "pro_1"
    nothing_off = replace(p, breakdown=replace(p.breakdown, discount=Money(0, "EUR")))
    assert new_order(nothing_off, order_id="ord_1", customer_id="cus_1", key="K1", quote_id="quo_1", hold=hold,
                     payment_method_id="pm_ok").columns["promo_id"] is None
