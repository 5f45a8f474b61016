"""Simulated customers: find a store that delivers to them, build a valid cart from the menu
the customer sees, quote, check out with an Idempotency-Key (some retry the same request, as a
phone on a flaky network does), sometimes cancel, sometimes tip, and watch the order to its end.
A card that asks for 3-D Secure is authenticated and the checkout retried with that hold.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime

from catalog.messages import CartLineInput, CustomerGroup, CustomerMenu, DiscoveryQuery, SelectedOption
from fooddispatch.client import ApiError, Client, new_idempotency_key
from fooddispatch.demo.city import CustomerSpec
from fooddispatch.demo.seed import SeededCity
from fooddispatch.demo.world import OrderTrack, World
from orders.messages import CancelRequest, CheckoutRequest, OrderOut, Point, QuoteOut, QuoteRequest, TipRequest
from payments.messages import CancelPaymentIntent, ConfirmPaymentIntent

log = logging.getLogger("fooddispatch.demo")
FINAL = {"delivered", "cancelled", "rejected", "expired"}
# Codes a customer may legitimately get; anything else is counted as unexpected.
EXPECTED_CODES = {
    "store_closed", "store_paused", "store_unavailable", "closed", "outside_zone", "out_of_zone", "not_deliverable",
    "card_declined", "insufficient_funds", "expired_card", "incorrect_cvc", "processing_error", "fraudulent",
    "payment_declined", "authentication_required", "requires_action", "payment_requires_action", "quote_expired",
    "price_changed", "item_unavailable", "out_of_stock", "invalid_transition", "cancel_not_allowed",
}


def choose_options(rng: random.Random, groups: list[CustomerGroup]) -> list[SelectedOption]:
    """Selections that satisfy every group's min/max, recursing into the chosen options' groups."""
    chosen: list[SelectedOption] = []
    for group in groups:
        available = [o for o in group.options if o.available]
        lo, hi = group.min, group.max
        if not available or hi <= 0:
            continue
        count = rng.randint(lo, min(hi, max(lo, 1), len(available))) if lo or rng.random() < 0.5 else 0
        for option in rng.sample(available, min(count, len(available))):
            chosen.append(SelectedOption(option_id=option.id, quantity=1,
                                         options=choose_options(rng, option.modifier_groups)))
    return chosen


def build_cart(rng: random.Random, menu: CustomerMenu) -> list[CartLineInput]:
    items = [item for cat in menu.categories for item in cat.items if not item.sold_out]
    if not items:
        return []
    lines = []
    for item in rng.sample(items, min(len(items), rng.choice([1, 1, 2, 2, 3]))):
        lines.append(CartLineInput(item_id=item.id, quantity=rng.choice([1, 1, 1, 2]),
                                   options=choose_options(rng, item.modifier_groups)))
    return lines


def _timestamp(value: datetime | None) -> float:
    """A time from the API as unix seconds (0.0 when absent)."""
    return value.timestamp() if value is not None else 0.0


class Customers:
    def __init__(self, client: Client, seeded: SeededCity, world: World, rng: random.Random,
                 orders_per_minute: float) -> None:
        self.client, self.seeded, self.world, self.rng = client, seeded, world, rng
        self.rate = orders_per_minute
        self.busy: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def missing(self) -> str | None:
        if not self.seeded.store_ids():
            return "no stores were seeded"
        if not any(card for _s, _t, card in self.seeded.customers.values()):
            return "no customer has a saved card"
        return None

    async def run(self) -> None:
        why = self.missing()
        if why:
            self.world.skip("customers ordering", why)
            return
        while True:
            # Poisson arrivals in simulated time.
            await asyncio.sleep(self.world.clock.real(self.rng.expovariate(self.rate / 60.0)))
            if not self.world.accepting_orders:
                return
            idle = [key for key in self.seeded.customers if key not in self.busy]
            if not idle:
                continue
            key = self.rng.choice(idle)
            self.busy.add(key)
            task = asyncio.create_task(self.journey(key, random.Random(self.rng.random())))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def journey(self, key: str, rng: random.Random) -> None:
        try:
            await self._journey(key, rng)
        except ApiError as exc:
            self._unexpected(f"{exc.status} {exc.code}")
        except Exception as exc:
            log.exception("customer journey failed")
            self._unexpected(type(exc).__name__)
        finally:
            self.busy.discard(key)

    def _unexpected(self, what: str) -> None:
        self.world.tally.unexpected[f"customer {what}"] += 1

    async def _pick_store(self, spec: CustomerSpec, phone: Client, rng: random.Random) -> str | None:
        ours = self.seeded.store_ids()
        closed = [sid for sid, s in ours.items() if s.spec.closed_today]
        if closed and rng.random() < 0.06:
            return rng.choice(closed)  # this customer tries the closed place and gets its error
        page = await phone.discover(DiscoveryQuery(lat=spec.lat, lng=spec.lng, limit=20))
        open_ids = [card.id for card in page.items if card.id in ours and card.open_now]
        return rng.choice(open_ids[:8]) if open_ids else None

    async def _journey(self, key: str, rng: random.Random) -> None:
        spec, token, card_id = self.seeded.customers[key]
        if card_id is None:
            return
        phone = self.client.with_token(token)
        store_id = await self._pick_store(spec, phone, rng)
        if store_id is None:
            self.world.tally.outcomes["no store delivers here"] += 1
            return
        lines = build_cart(rng, await phone.customer_menu(store_id))
        if not lines:
            return
        tip = rng.choice([100, 150, 200, 300]) if spec.tips else 0
        self.world.tally.quotes += 1
        try:
            quote = await phone.quote(QuoteRequest(store_id=store_id, dropoff=Point(lat=spec.lat, lng=spec.lng),
                                                   address=spec.address, lines=lines, tip=tip))
            order = await self._checkout(phone, quote, card_id, rng)
        except ApiError as exc:
            self._count_refusal(exc, store_id)
            return
        await self._follow(order, phone, rng, spec)

    async def _checkout(self, phone: Client, quote: QuoteOut, card_id: str, rng: random.Random) -> OrderOut:
        idem = new_idempotency_key()
        body = CheckoutRequest(quote_id=quote.id, payment_method_id=card_id)
        try:
            order = await phone.checkout(body, idempotency_key=idem)
        except ApiError as exc:
            intent_id = self._needs_authentication(exc)
            if intent_id is None:
                raise
            # The card asks for 3-D Secure: pass the challenge, then check out with that hold.
            # A new key: the first one's 402 is a stored response, a retry would replay it.
            await self._authenticate(intent_id, phone)
            idem = new_idempotency_key()
            body = CheckoutRequest(quote_id=quote.id, payment_intent=intent_id)
            try:
                order = await phone.checkout(body, idempotency_key=idem)
            except ApiError:
                # Not placed after all (the quote expired, a price moved...): release the hold.
                await phone.cancel_payment_intent(intent_id, CancelPaymentIntent(cancellation_reason="abandoned"))
                raise
            self.world.tally.outcomes["3-D Secure passed, order placed"] += 1
        if rng.random() < 0.1:  # the phone lost the response and retries: same order, one charge
            again = await phone.checkout(body, idempotency_key=idem)
            if again.id != order.id:
                self._unexpected("idempotent replay returned another order")
        return order

    @staticmethod
    def _needs_authentication(exc: ApiError) -> str | None:
        """The PaymentIntent a 402 `authentication_required` names."""
        if exc.status != 402 or exc.code != "authentication_required":
            return None
        intent_id = exc.extra.get("payment_intent")
        return intent_id if isinstance(intent_id, str) else None

    @staticmethod
    async def _authenticate(intent_id: str, phone: Client) -> None:
        """The customer passes the challenge (test mode stands in for the bank's page). A risk review
        followed by the card's own challenge takes two rounds."""
        for _ in range(2):
            intent = await phone.confirm_payment_intent(intent_id, ConfirmPaymentIntent(authentication="succeeded"))
            if intent.status != "requires_action":
                return

    def _count_refusal(self, exc: ApiError, store_id: str) -> None:
        tally = self.world.tally
        store = self.seeded.store_ids().get(store_id)
        tally.outcomes[exc.code] += 1
        if exc.status == 402 or "decline" in exc.code or exc.code in {"fraudulent", "authentication_required"}:
            tally.declined_payments += 1
        elif store is not None and store.spec.closed_today and exc.status in {409, 422}:
            tally.closed_store_errors += 1
        elif exc.code not in EXPECTED_CODES:
            self._unexpected(f"{exc.status} {exc.code}")

    async def _follow(self, order: OrderOut, phone: Client, rng: random.Random, spec: CustomerSpec) -> None:
        world = self.world
        placed_at = _timestamp(order.placed_at)
        world.placed(OrderTrack(order.id, spec.key, order.store_id, placed_at, _timestamp(order.promised_window.end),
                                pickup={"lat": order.pickup.lat, "lng": order.pickup.lng},
                                dropoff={"lat": order.dropoff.lat, "lng": order.dropoff.lng}))
        cancel_at = world.clock.now() + rng.uniform(60, 240) if rng.random() < spec.cancels else None
        current = order
        while current.status not in FINAL:
            await asyncio.sleep(1.0)
            if cancel_at is not None and world.clock.now() >= cancel_at:
                cancel_at = None
                try:
                    await phone.cancel_order(order.id, CancelRequest(reason="changed my mind"))
                except ApiError as exc:
                    world.tally.outcomes[f"cancel refused: {exc.code}"] += 1
            current = await phone.get_order(order.id)
        await self._ended(current, phone, rng, spec)

    async def _ended(self, order: OrderOut, phone: Client, rng: random.Random, spec: CustomerSpec) -> None:
        world, status = self.world, order.status
        if status == "delivered":
            world.delivered(order.id, _timestamp(order.delivered_at) or time.time())
            if spec.tips and rng.random() < 0.5:
                try:
                    await phone.tip_order(order.id, TipRequest(tip=rng.choice([200, 300, 500])))
                    world.tally.outcomes["tip raised after delivery"] += 1
                except ApiError as exc:
                    world.tally.outcomes[f"tip refused: {exc.code}"] += 1
            return
        world.orders[order.id].outcome = status
        if status == "cancelled":
            world.tally.cancelled += 1
        else:
            world.tally.outcomes[f"order {status}"] += 1
            if status == "rejected":
                world.tally.rejected += 1
