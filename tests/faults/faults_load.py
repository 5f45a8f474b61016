"""The checkout load and the kitchen of a fault scenario.

`Checkouts` places orders continuously, as phones do: a quote, then a checkout with an
Idempotency-Key; a checkout that got no answer, a 5xx, a 429 or `idempotency_in_progress` is
retried with the SAME key and body (like a real client) until it gets a definite answer or the
client's patience runs out. Every attempt is kept, so the verdict knows which orders were
acknowledged (201) and whether any key was answered with two different orders.

`Kitchen` is the restaurant: it polls its placed orders (REST, independent of the feed under
test), accepts each and marks it ready at once, so dispatch offers it to a courier.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from faults_actors import Answer, Http, backoff, now, retryable, until

PATIENCE_S = 25.0  # a phone gives up on one checkout after this long


@dataclass
class Customer:
    account_id: str
    token: str
    card_id: str
    lat: float
    lng: float


@dataclass
class Checkout:
    key: str
    customer: str
    started: float
    attempts: list[tuple[float, int, str | None]] = field(default_factory=list)  # (when, status, code)
    order_id: str | None = None
    order_ids: set[str] = field(default_factory=set)  # every order id a 201 for this key named
    placed_at: float | None = None  # first 201
    final: str | None = None  # "placed", "refused <status> <code>", "gave up"


class Checkouts:
    """`rate` checkouts a second in total, on `workers` concurrent phones."""

    def __init__(self, http: Http, customers: list[Customer], store_id: str, item_id: str, *,
                 rate: float = 3.0, workers: int = 4, seed: int = 7) -> None:
        self.http, self.customers, self.store_id, self.item_id = http, customers, store_id, item_id
        self.rate, self.workers = rate, workers
        self.rng = random.Random(seed)
        self.checkouts: list[Checkout] = []
        self.in_flight = 0  # checkout requests sent and not answered yet
        self._placing = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._next_at = 0.0

    def start(self) -> None:
        self._placing.set()
        self._tasks = [asyncio.create_task(self._phone(i), name=f"phone-{i}") for i in range(self.workers)]

    def pause(self) -> None:
        """No new checkouts; those started keep retrying until answered (or out of patience)."""
        self._placing.clear()

    def resume(self, rate: float | None = None) -> None:
        if rate is not None:
            self.rate = rate
        self._placing.set()

    async def drain(self, within: float = PATIENCE_S + 5) -> None:
        """Stop placing and wait until every started checkout has its final answer."""
        self.pause()
        await until(lambda: all(c.final is not None for c in self.checkouts), within, every=0.1)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _pace(self) -> None:
        """Share `rate` among the phones: each takes the next free slot."""
        await self._placing.wait()
        slot = max(now(), self._next_at)
        self._next_at = slot + 1.0 / self.rate if self.rate > 0 else slot
        await asyncio.sleep(max(0.0, slot - now()))
        await self._placing.wait()

    async def _phone(self, n: int) -> None:
        rng = random.Random(f"{n}")
        while True:
            await self._pace()
            customer = rng.choice(self.customers)
            quote = await self._quote(customer, rng)
            if quote is None:
                continue
            await self._checkout(customer, quote)

    async def _quote(self, customer: Customer, rng: random.Random) -> str | None:
        body = {"store_id": self.store_id, "dropoff": {"lat": customer.lat, "lng": customer.lng},
                "address": "Torstraße 1, Berlin", "lines": [{"item_id": self.item_id, "quantity": rng.randint(1, 3)}]}
        deadline = now() + PATIENCE_S
        attempt = 0
        while now() < deadline:
            answer = await self.http.call("POST", "/v1/quotes", "quote", token=customer.token, json_body=body)
            if answer.status == 201:
                return str(answer.body["id"])
            if not retryable(answer):
                return None
            await asyncio.sleep(backoff(answer, attempt))
            attempt += 1
        return None

    async def _checkout(self, customer: Customer, quote_id: str) -> Checkout:
        checkout = Checkout(uuid.uuid4().hex, customer.account_id, now())
        self.checkouts.append(checkout)
        body = {"quote_id": quote_id, "payment_method_id": customer.card_id}
        attempt = 0
        while True:
            self.in_flight += 1
            try:
                answer = await self.http.call("POST", "/v1/orders", "checkout", token=customer.token, json_body=body,
                                              headers={"Idempotency-Key": checkout.key})
            finally:
                self.in_flight -= 1
            checkout.attempts.append((now(), answer.status, answer.code))
            if answer.status == 201:
                self._placed(checkout, answer)
                return checkout
            if not retryable(answer):
                checkout.final = f"refused {answer.status} {answer.code}"
                return checkout
            if now() - checkout.started > PATIENCE_S:
                checkout.final = "gave up"
                return checkout
            await asyncio.sleep(backoff(answer, attempt))
            attempt += 1

    def _placed(self, checkout: Checkout, answer: Answer) -> None:
        order_id = str(answer.body["id"])
        checkout.order_ids.add(order_id)
        if checkout.order_id is None:
            checkout.order_id = order_id
            checkout.placed_at = now()
        checkout.final = "placed"

    def placed(self) -> list[Checkout]:
        return [c for c in self.checkouts if c.order_id is not None]


@dataclass
class Kitchen:
    """Accepts every placed order and marks it ready; each step is retried until it sticks."""

    http: Http
    store_id: str
    token: str
    stage: dict[str, str] = field(default_factory=dict)  # order id -> "placed" | "accepted" | "ready"
    poll_s: float = 0.5
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kitchen")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while True:
            answer = await self.http.call("GET", f"/v1/stores/{self.store_id}/orders?status=placed&limit=100",
                                          "kitchen list", token=self.token)
            if answer.status == 200:
                for item in answer.body.get("items", []):
                    self.stage.setdefault(item["id"], "placed")
            for order_id, stage in list(self.stage.items()):
                if stage != "ready":
                    await self._advance(order_id, stage)
            await asyncio.sleep(self.poll_s)

    async def _advance(self, order_id: str, stage: str) -> None:
        if stage == "placed":
            answer = await self._step(order_id, "accept", {"prep_time_s": 60})
            stage = await self._settled(order_id, answer, "accepted") or stage
        if stage == "accepted":
            answer = await self._step(order_id, "ready", None)
            await self._settled(order_id, answer, "ready")

    async def _settled(self, order_id: str, answer: Answer, reached: str) -> str | None:
        """The stage after a step: `reached` on 200; on 409 (an earlier attempt whose answer was lost
        went through) whatever the order's status says; None to try again later."""
        if answer.status == 200:
            self.stage[order_id] = reached
        elif answer.status == 409:
            current = await self.http.call("GET", f"/v1/orders/{order_id}", "kitchen get", token=self.token)
            if current.status != 200:
                return None
            status = current.body.get("status")
            self.stage[order_id] = "accepted" if status in ("accepted", "preparing") else "ready"
        else:
            return None
        return self.stage[order_id]

    async def _step(self, order_id: str, step: str, body: dict[str, Any] | None) -> Answer:
        return await self.http.call("POST", f"/v1/orders/{order_id}/{step}", f"kitchen {step}", token=self.token,
                                    json_body=body)
