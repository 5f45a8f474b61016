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
import uuid
from datetime import datetime
from typing import Any

from fooddispatch.demo.api import Api, ApiError, Missing
from fooddispatch.demo.seed import SeededCity
from fooddispatch.demo.world import OrderTrack, World
from fooddispatch.ops.discovery import Want, find_routes

log = logging.getLogger("fooddispatch.demo")
FINAL = {"delivered", "cancelled", "rejected", "expired"}
# Codes a customer may legitimately get; anything else is counted as unexpected.
EXPECTED_CODES = {
    "store_closed", "store_paused", "store_unavailable", "closed", "outside_zone", "out_of_zone", "not_deliverable",
    "card_declined", "insufficient_funds", "expired_card", "incorrect_cvc", "processing_error", "fraudulent",
    "payment_declined", "authentication_required", "requires_action", "payment_requires_action", "quote_expired",
    "price_changed", "item_unavailable", "out_of_stock", "invalid_transition", "cancel_not_allowed",
}
# The payments routes a customer needs for 3-D Secure, found like the rest by their wire types.
PAYMENT_WANTS = {"confirm_payment": Want("POST", body="ConfirmPaymentIntent"),
                 "cancel_payment": Want("POST", body="CancelPaymentIntent")}


def choose_options(rng: random.Random, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Selections that satisfy every group's min/max, recursing into the chosen options' groups."""
    chosen: list[dict[str, Any]] = []
    for group in groups:
        available = [o for o in group.get("options", []) if o.get("available", True)]
        lo, hi = int(group.get("min", 0)), int(group.get("max", 1))
        if not available or hi <= 0:
            continue
        count = rng.randint(lo, min(hi, max(lo, 1), len(available))) if lo or rng.random() < 0.5 else 0
        for option in rng.sample(available, min(count, len(available))):
            chosen.append({"option_id": option["id"], "quantity": 1,
                           "options": choose_options(rng, option.get("modifier_groups", []))})
    return chosen


def build_cart(rng: random.Random, menu: dict[str, Any]) -> list[dict[str, Any]]:
    items = [item for cat in menu.get("categories", []) for item in cat.get("items", []) if not item.get("sold_out")]
    if not items:
        return []
    lines = []
    for item in rng.sample(items, min(len(items), rng.choice([1, 1, 2, 2, 3]))):
        lines.append({"item_id": item["id"], "quantity": rng.choice([1, 1, 1, 2]),
                      "options": choose_options(rng, item.get("modifier_groups", []))})
    return lines


def _timestamp(value: Any) -> float:
    """An ISO-8601 time from the API as unix seconds (0.0 when absent)."""
    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else 0.0


class Customers:
    def __init__(self, api: Api, seeded: SeededCity, world: World, rng: random.Random,
                 orders_per_minute: float) -> None:
        self.api, self.seeded, self.world, self.rng = api, seeded, world, rng
        self.rate = orders_per_minute
        self.busy: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def missing(self) -> str | None:
        needed = ["quote", "checkout", "customer_menu"]
        absent = [name for name in needed if not self.api.has(name)]
        if absent:
            return f"orders/catalog have no {', '.join(absent)} route yet"
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
        await self._find_payment_routes()
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
        except Missing as exc:
            self.world.skip(f"customer step {exc}", "route not in the API yet")
        except Exception as exc:
            log.exception("customer journey failed")
            self._unexpected(type(exc).__name__)
        finally:
            self.busy.discard(key)

    async def _find_payment_routes(self) -> None:
        if self.api.has(*PAYMENT_WANTS):
            return
        async with self.api.session.get(f"{self.api.base_url}/openapi.json") as response:
            response.raise_for_status()
            spec = await response.json()
        self.api.routes.update(find_routes(spec, PAYMENT_WANTS))

    def _unexpected(self, what: str) -> None:
        self.world.tally.unexpected[f"customer {what}"] += 1

    async def _pick_store(self, spec: Any, token: str, rng: random.Random) -> str | None:
        ours = self.seeded.store_ids()
        closed = [sid for sid, s in ours.items() if s.spec.closed_today]
        if closed and rng.random() < 0.06:
            return rng.choice(closed)  # this customer tries the closed place and gets its error
        if self.api.has("discover"):
            page = await self.api.call("discover", token=token, query={"lat": spec.lat, "lng": spec.lng, "limit": 20})
            open_ids = [card["id"] for card in page.get("items", []) if card["id"] in ours and card.get("open_now")]
            return rng.choice(open_ids[:8]) if open_ids else None
        return rng.choice([sid for sid in ours if sid not in closed] or list(ours))

    async def _journey(self, key: str, rng: random.Random) -> None:
        spec, token, card_id = self.seeded.customers[key]
        if card_id is None:
            return
        store_id = await self._pick_store(spec, token, rng)
        if store_id is None:
            self.world.tally.outcomes["no store delivers here"] += 1
            return
        menu = await self.api.call("customer_menu", store_id, token=token)
        lines = build_cart(rng, menu)
        if not lines:
            return
        tip = rng.choice([100, 150, 200, 300]) if spec.tips else 0
        self.world.tally.quotes += 1
        try:
            quote = await self.api.call("quote", token=token, json={
                "store_id": store_id, "dropoff": {"lat": spec.lat, "lng": spec.lng}, "address": spec.address,
                "lines": lines, "tip": tip})
        except ApiError as exc:
            self._count_refusal(exc, store_id)
            return
        idem = uuid.uuid4().hex
        body = {"quote_id": quote["id"], "payment_method_id": card_id}
        try:
            try:
                order = await self.api.call("checkout", token=token, json=body, idempotency_key=idem)
            except ApiError as exc:
                intent_id = self._needs_authentication(exc)
                if intent_id is None:
                    raise
                # The card asks for 3-D Secure: pass the challenge, then check out with that hold.
                # A new key: the first one's 402 is a stored response, a retry would replay it.
                await self._authenticate(intent_id, token)
                idem = uuid.uuid4().hex
                body = {"quote_id": quote["id"], "payment_intent": intent_id}
                try:
                    order = await self.api.call("checkout", token=token, json=body, idempotency_key=idem)
                except ApiError:
                    # Not placed after all (the quote expired, a price moved...): release the hold.
                    await self.api.call("cancel_payment", intent_id, token=token,
                                        json={"cancellation_reason": "abandoned"})
                    raise
                self.world.tally.outcomes["3-D Secure passed, order placed"] += 1
            if rng.random() < 0.1:  # the phone lost the response and retries: same order, one charge
                again = await self.api.call("checkout", token=token, json=body, idempotency_key=idem)
                if again.get("id") != order.get("id"):
                    self._unexpected("idempotent replay returned another order")
        except ApiError as exc:
            self._count_refusal(exc, store_id)
            return
        await self._follow(order, token, rng, spec)

    def _needs_authentication(self, exc: ApiError) -> str | None:
        """The PaymentIntent a 402 `authentication_required` names, when this app can confirm it."""
        if exc.status != 402 or exc.code != "authentication_required" or not self.api.has(*PAYMENT_WANTS):
            return None
        error = exc.body.get("error", {}) if isinstance(exc.body, dict) else {}
        intent_id = error.get("payment_intent")
        return intent_id if isinstance(intent_id, str) else None

    async def _authenticate(self, intent_id: str, token: str) -> None:
        """The customer passes the challenge (test mode stands in for the bank's page). A risk review
        followed by the card's own challenge takes two rounds."""
        for _ in range(2):
            intent = await self.api.call("confirm_payment", intent_id, token=token,
                                         json={"authentication": "succeeded"})
            if intent.get("status") != "requires_action":
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

    async def _follow(self, order: dict[str, Any], token: str, rng: random.Random, spec: Any) -> None:
        world = self.world
        order_id = order["id"]
        placed_at = _timestamp(order["placed_at"])
        window = order.get("promised_window") or {}
        promised_at = _timestamp(window["end"]) if window.get("end") else placed_at + 45 * 60
        world.placed(OrderTrack(order_id, spec.key, order["store_id"], placed_at, promised_at,
                                pickup=order.get("pickup"), dropoff=order.get("dropoff")))
        cancel_at = world.clock.now() + rng.uniform(60, 240) if rng.random() < spec.cancels else None
        current = order
        while current.get("status", "placed") not in FINAL:
            await asyncio.sleep(1.0)
            if cancel_at is not None and world.clock.now() >= cancel_at and self.api.has("cancel_order"):
                cancel_at = None
                try:
                    await self.api.call("cancel_order", order_id, token=token, json={"reason": "changed my mind"})
                except ApiError as exc:
                    world.tally.outcomes[f"cancel refused: {exc.code}"] += 1
            if not self.api.has("get_order"):
                return
            current = await self.api.call("get_order", order_id, token=token)
        await self._ended(order_id, current, token, rng, spec)

    async def _ended(self, order_id: str, order: dict[str, Any], token: str, rng: random.Random, spec: Any) -> None:
        world, status = self.world, order["status"]
        if status == "delivered":
            world.delivered(order_id, _timestamp(order.get("delivered_at")) or time.time())
            if spec.tips and rng.random() < 0.5 and self.api.has("tip_order"):
                try:
                    await self.api.call("tip_order", order_id, token=token, json={"tip": rng.choice([200, 300, 500])})
                    world.tally.outcomes["tip raised after delivery"] += 1
                except ApiError as exc:
                    world.tally.outcomes[f"tip refused: {exc.code}"] += 1
            return
        world.orders[order_id].outcome = status
        if status == "cancelled":
            world.tally.cancelled += 1
        else:
            world.tally.outcomes[f"order {status}"] += 1
            if status == "rejected":
                world.tally.rejected += 1
