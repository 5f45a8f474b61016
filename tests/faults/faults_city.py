"""A small city on the real server, and the scenario's timeline of faults.

`FaultCity.open(...)` starts the app as a child process on its own database (cloned from the
migrated template) and Redis, seeds one restaurant through the public API (tenant, store,
hours, delivery zone, menu, a webhook endpoint pointing at our receiver), customers with saved
test cards and couriers, then starts the actors: couriers online streaming GPS, the tablet feed,
the kitchen, and (when the scenario says so) the checkout load.

Accounts are created and their tokens minted the way `fooddispatch token --role ...` does (the
identity service on the same database and JWT secret): the demo's seeding registers everyone
with a password (an argon2 hash each, seconds of CPU we keep for the faults) and gives some
customers declining or 3-D Secure cards, which would blur "every acknowledged order".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from faults_actors import Call, Http, TabletFeed, WebhookReceiver, now, until
from faults_couriers import Courier
from faults_load import Checkouts, Customer, Kitchen
from faults_servers import App, Postgres, Redis, tail

from fooddispatch.identity import IdentityService, Tokens

JWT_SECRET = "faults-secret-0123456789abcdefghijklmnop"
VAULT_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
STORE = (52.5200, 13.4050)  # Berlin Mitte
ZONE = {"type": "Polygon", "coordinates": [[[13.35, 52.48], [13.46, 52.48], [13.46, 52.56], [13.35, 52.56],
                                            [13.35, 52.48]]]}
ITEM = "itm_currywurst"
MENU = {"categories": [{"name": "Mains", "id": "cat_mains", "items": [
    {"id": ITEM, "name": "Currywurst", "price": 690}, {"id": "itm_fries", "name": "Pommes", "price": 350}]}]}
WEBHOOK_EVENTS = ["order.placed", "order.accepted"]
# Events whose consumers could have run a side effect and then not committed: a crash of the app,
# or PostgreSQL going away under the commit. A Redis fault cannot (the commit is in PostgreSQL).
COMMIT_BREAKING = ("app", "postgres")


def app_env(pg: Postgres, redis: Redis, database: str, folder: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": pg.url(database), "REDIS_URL": redis.url, "FOODDISPATCH_DATA_DIR": str(folder),
        "FOODDISPATCH_JWT_SECRET": JWT_SECRET, "FOODDISPATCH_VAULT_KEY": VAULT_KEY,
        "FOODDISPATCH_REDIS_PREFIX": f"{database}:", "FOODDISPATCH_LOG_LEVEL": "warning",
        "FOODDISPATCH_LOG_JSON": "true", "FOODDISPATCH_DB_POOL_MAX": "20",
        "FOODDISPATCH_RATE_LIMIT_PER_MINUTE": "1000000", "FOODDISPATCH_RATE_LIMIT_BURST": "100000",
        "FOODDISPATCH_TENANT_RATE_LIMIT_PER_MINUTE": "10000000", "FOODDISPATCH_TENANT_RATE_LIMIT_BURST": "1000000",
        "FOODDISPATCH_DISPATCH_INTERVAL": "0.5", "FOODDISPATCH_OFFER_TTL_SECONDS": "10",
        "FOODDISPATCH_REGION": "demo", "FOODDISPATCH_REGION_TIMEZONE": "Europe/Berlin",
        # Our webhook receiver listens on loopback (a setting the tenant-isolation work adds).
        "FOODDISPATCH_WEBHOOKS_ALLOW_PRIVATE": "true",
    }


@dataclass
class Fault:
    label: str
    kind: str  # "redis", "postgres", "app", "event"
    start: float
    end: float | None = None


@dataclass
class FaultCity:
    name: str
    pg: Postgres
    redis: Redis
    app: App
    database: str
    calls: list[Call] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # problems a scenario found itself (readyz too slow...)
    figures: dict[str, object] = field(default_factory=dict)  # what it measured, printed with the verdict
    opened: float = field(default_factory=now)
    receiver: WebhookReceiver = field(default_factory=WebhookReceiver)
    http: Http | None = None
    tablet: TabletFeed | None = None
    kitchen: Kitchen | None = None
    load: Checkouts | None = None
    couriers: list[Courier] = field(default_factory=list)
    operator_token: str = ""
    staff_token: str = ""
    tenant_id: str = ""
    store_id: str = ""
    customers: list[Customer] = field(default_factory=list)

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self, *, couriers: int = 16, customers: int = 8, rate: float = 2.0, workers: int = 4,
                    redeployed: bool = False) -> None:
        """`redeployed`: the app was stopped and started once before the city opens, as any deployment's
        has been; the dispatch lease has then changed hands once (its fencing token is past 1)."""
        self.app.spawn()
        self.figures["app serving"] = f"{await self.wait_serving(60.0):.1f} s"
        self.http = Http(self.app.base_url, self.calls)
        started = now()
        await self._seed(couriers, customers)
        if redeployed:
            await self.redeploy()
        self.tablet = TabletFeed(self.http, self.store_id, self.staff_token)
        self.tablet.start()
        self.kitchen = Kitchen(self.http, self.store_id, self.staff_token)
        self.kitchen.start()
        for courier in self.couriers:
            courier.start()
        self.load = Checkouts(self.http, self.customers, self.store_id, ITEM, rate=rate, workers=workers)
        await self._couriers_online(20.0)
        self.figures["city seeded, couriers online"] = f"{now() - started:.1f} s"

    async def redeploy(self, within: float = 30.0) -> float:
        """SIGTERM, wait for the exit, start again and wait until ready; returns the seconds it took."""
        started = now()
        self.app.terminate()
        if not await until(lambda: self.app.exit_code() is not None, within):
            self.app.kill()
        self.app.spawn()
        await self.wait_serving(60.0)
        return now() - started

    async def diagnose(self, limit: int = 8) -> list[str]:
        """For a failed verdict: stop the observers, SIGTERM the app (a dead background task is only
        reported when its component stops) and return its distinct warnings and errors, most frequent first."""
        for actor in [self.load, self.kitchen, self.tablet, *self.couriers]:
            if actor is not None:
                await actor.close()
        if self.app.alive():
            self.app.terminate()
            await until(lambda: self.app.exit_code() is not None, 15.0)
        seen: Counter[str] = Counter()
        with contextlib.suppress(OSError), self.app.log.open(errors="replace") as log:
            for line in log:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and entry.get("level") in ("warning", "error", "critical"):
                        text = str(entry.get("event", ""))
                        if entry.get("exception"):
                            text += " | " + str(entry["exception"]).strip().splitlines()[-1]
                        seen[re.sub(r"[0-9A-Z]{20,}|\d+", "#", text)[:200]] += 1
        # A task's death first (it says why nothing flows), then the most frequent.
        ranked = sorted(seen.items(), key=lambda kv: ("ended with" not in kv[0] and "crashed" not in kv[0], -kv[1]))
        return [f"{n} x {text}" for text, n in ranked[:limit]]

    async def close(self) -> None:
        for actor in [self.load, self.kitchen, self.tablet, *self.couriers]:
            if actor is not None:
                await actor.close()
        if self.http is not None:
            await self.http.close()
        await self.receiver.close()
        self.app.close()

    async def wait_serving(self, within: float) -> float:
        """Until the process serves (/healthz 200), or it died; returns the seconds it took. Not /readyz:
        whether it is ready (consumers caught up too) is what the scenario measures afterwards."""
        started = now()
        http = Http(self.app.base_url, [], timeout=3.0)
        try:
            while True:
                if not self.app.alive():
                    raise AssertionError(f"the app exited with {self.app.exit_code()}:\n{tail(self.app.log)}")
                answer = await http.call("GET", "/healthz", "healthz")
                if answer.status == 200:
                    return now() - started
                if now() - started > within:
                    raise AssertionError(f"the app did not serve within {within:.0f} s: {answer.status} {answer.body}"
                                         f"\n{tail(self.app.log)}")
                await asyncio.sleep(0.2)
        finally:
            await http.close()

    async def _couriers_online(self, within: float) -> None:
        deadline = now() + within
        while any(c.acked_seq == 0 for c in self.couriers):
            if now() > deadline:
                raise AssertionError("couriers got no GPS ack at the start: the city never came up")
            await asyncio.sleep(0.1)

    # ---- faults ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def fault(self, label: str, kind: str) -> AsyncIterator[Fault]:
        """The span of one fault, from injecting it to the moment it is repaired."""
        fault = Fault(label, kind, now())
        self.faults.append(fault)
        try:
            yield fault
        finally:
            fault.end = now()

    def commit_breaking_at(self, t: float, slack: float = 2.0) -> bool:
        """Was a fault that can break a consumer's commit going on around `t`?"""
        return any(f.kind in COMMIT_BREAKING and f.start - slack <= t <= (f.end or now()) + slack
                   for f in self.faults)

    async def orders_acknowledged(self, more: int, within: float) -> int:
        """Let the load run until `more` further orders are acknowledged (or `within` passes)."""
        assert self.load is not None
        load = self.load
        target = len(load.placed()) + more
        await until(lambda: len(load.placed()) >= target, within)
        return len(load.placed())

    async def first_checkout_after(self, t: float, within: float) -> float | None:
        """Seconds from `t` to the first 201 for a checkout, waiting up to `within`."""
        deadline = now() + within
        while now() < deadline:
            answered = [c.at for c in self.calls if c.name == "checkout" and c.status == 201 and c.at >= t]
            if answered:
                return min(answered) - t
            await asyncio.sleep(0.05)
        return None

    # ---- the database, for verdicts ----------------------------------------------------------------

    async def query(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.pg.url(self.database), timeout=10)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    # ---- seeding through the public API --------------------------------------------------------------

    async def _ok(self, method: str, path: str, token: str, body: object = None, status: int = 200,
                  headers: dict[str, str] | None = None) -> dict:
        assert self.http is not None
        answer = await self.http.call(method, path, f"seed {path}", token=token, json_body=body, headers=headers)
        assert answer.status == status, f"seeding {method} {path}: {answer.status} {answer.body}"
        return answer.body if isinstance(answer.body, dict) else {}

    async def _seed(self, couriers: int, customers: int) -> None:
        rng = random.Random(self.name)
        pool = await asyncpg.create_pool(self.pg.url(self.database), min_size=1, max_size=2)
        try:
            identity = IdentityService(pool, Tokens({"k1": JWT_SECRET}, "k1", 3 * 3600))

            async def token(role: str, tenant_id: str | None = None) -> tuple[str, str]:
                who = await identity.create_account(role, name=f"faults {role}", tenant_id=tenant_id)
                return who.account_id, identity.tokens.issue(who)

            _, self.operator_token = await token("operator")
            tenant = await self._ok("POST", "/v1/tenants", self.operator_token, {"name": "Imbiss Faults"}, 201)
            self.tenant_id = tenant["id"]
            _, self.staff_token = await token("staff", self.tenant_id)
            await self._seed_store()
            for _ in range(customers):
                account_id, customer_token = await token("customer")
                card = await self._ok("POST", "/v1/payment_methods", customer_token, {
                    "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}},
                    headers={"Idempotency-Key": f"card-{account_id}"})
                lat, lng = STORE[0] + rng.uniform(-0.015, 0.015), STORE[1] + rng.uniform(-0.02, 0.02)
                self.customers.append(Customer(account_id, customer_token, card["id"], round(lat, 6), round(lng, 6)))
            for _ in range(couriers):
                account_id, courier_token = await token("courier")
                self.couriers.append(Courier(self.http, account_id, courier_token,  # type: ignore[arg-type]
                                             STORE[0] + rng.uniform(-0.002, 0.002),
                                             STORE[1] + rng.uniform(-0.003, 0.003), random.Random(account_id)))
        finally:
            await pool.close()
        hook_url = await self.receiver.start()
        endpoint = await self._ok("POST", "/v1/merchant/webhook_endpoints", self.staff_token,
                                  {"url": hook_url, "event_types": WEBHOOK_EVENTS}, 201)
        self.receiver.secret = endpoint["secret"]

    async def _seed_store(self) -> None:
        store = await self._ok("POST", f"/v1/tenants/{self.tenant_id}/stores", self.staff_token, {
            "name": "Imbiss Mitte", "lat": STORE[0], "lng": STORE[1], "timezone": "Europe/Berlin", "currency": "EUR",
            "tax_rate_bps": 700, "prep_time_default_s": 600, "accept_window_s": 600, "region": "demo"}, 201)
        self.store_id = sid = store["id"]
        await self._ok("PUT", f"/v1/merchant/stores/{sid}/hours", self.staff_token, {
            "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]})
        await self._ok("PUT", f"/v1/merchant/stores/{sid}/zones", self.staff_token, {
            "zones": [ZONE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]})
        await self._ok("PUT", f"/v1/merchant/stores/{sid}/menu", self.staff_token, MENU)
