"""Simulated restaurant tablets: each store's tablet (the store's own API key) polls its incoming
orders, accepts most with a prep time (some are rejected for capacity), and marks each ready when
the kitchen is done; the bag then sits on the counter for the courier (`world.bags_ready`).

Prep times are simulated minutes. The server's clock is the wall clock, so the prep time sent
with the acceptance is the real duration (at least the API's minimum of 60 s); the kitchen may
finish before its estimate, and then marks the order ready early, as real kitchens do.
"""

from __future__ import annotations

import asyncio
import logging
import random

from fooddispatch.client import ApiError, Client
from fooddispatch.demo.seed import SeededCity, SeededStore
from fooddispatch.demo.world import World
from orders.messages import AcceptRequest, OrderListQuery, RejectRequest

log = logging.getLogger("fooddispatch.demo")
POLL_SECONDS = 1.0


class Restaurants:
    def __init__(self, client: Client, seeded: SeededCity, world: World, rng: random.Random) -> None:
        self.client, self.seeded, self.world, self.rng = client, seeded, world, rng
        self.seen: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        await asyncio.gather(*(self.tablet(store) for store in self.seeded.stores if store.id and store.tablet_key))

    async def tablet(self, store: SeededStore) -> None:
        """A store's tablet, signed in with the store's own key (as `/tablet#key=` opens it)."""
        tablet = self.client.with_token(store.tablet_key or "")
        waiting = OrderListQuery(status="placed", limit=50)
        while True:
            try:
                page = await tablet.store_orders(store.id or "", waiting)
            except ApiError as exc:
                self.world.tally.unexpected[f"tablet list {exc.status} {exc.code}"] += 1
                page = None
            for summary in page.items if page else []:
                if summary.id not in self.seen and summary.status == "placed":
                    self.seen.add(summary.id)
                    task = asyncio.create_task(self.cook(store, tablet, summary.id))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
            await asyncio.sleep(POLL_SECONDS)

    async def cook(self, store: SeededStore, tablet: Client, order_id: str) -> None:
        world, rng = self.world, self.rng
        await asyncio.sleep(world.clock.real(rng.uniform(20, 90)))  # someone looks at the tablet
        if rng.random() > store.spec.accept_rate:
            try:
                await tablet.reject_order(order_id, RejectRequest(reason="capacity"))
            except ApiError as exc:
                world.tally.outcomes[f"reject refused: {exc.code}"] += 1
            return
        prep_sim = store.spec.prep_time_s * rng.uniform(0.6, 1.1)
        prep_real = max(60, min(4 * 3600, round(world.clock.real(prep_sim))))
        try:
            await tablet.accept_order(order_id, AcceptRequest(prep_time_s=prep_real))
        except ApiError as exc:
            if exc.status != 409:  # cancelled meanwhile: nothing to cook
                world.tally.unexpected[f"tablet accept {exc.status} {exc.code}"] += 1
            return
        await asyncio.sleep(world.clock.real(prep_sim))
        try:
            await tablet.ready_order(order_id)
        except ApiError as exc:
            if exc.status != 409:
                world.tally.unexpected[f"tablet ready {exc.status} {exc.code}"] += 1
            return
        world.bags_ready.add(order_id)
