"""Put the generated city into the running app through its public API.

The one thing not done over HTTP is the first operator token, minted the way
`fooddispatch token --role operator` does (every deployment bootstraps its first operator out of
band). Everything else (tenants, their API keys, stores, hours, zones, menus, customers and their
cards, couriers) is created with the same calls an operator, a merchant or an app would make.
Parts whose route is not in the API yet are recorded in `world.not_simulated`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from fooddispatch.config import Settings
from fooddispatch.demo.api import Api, ApiError, Missing
from fooddispatch.demo.city import CURRENCY, REGION, TAX_RATE_BPS, TIMEZONE, City, CourierSpec, CustomerSpec, StoreSpec
from fooddispatch.demo.world import World

log = logging.getLogger("fooddispatch.demo")
PASSWORD = "demo-password-1"  # every simulated account's; the city is a demo


@dataclass
class SeededStore:
    spec: StoreSpec
    tenant_key: str
    id: str | None = None


@dataclass
class SeededCity:
    operator_token: str
    tenant_ids: dict[str, str] = field(default_factory=dict)  # tenant key -> id
    tenant_keys: dict[str, str] = field(default_factory=dict)  # tenant key -> API key (the tablet's)
    stores: list[SeededStore] = field(default_factory=list)
    customers: dict[str, tuple[CustomerSpec, str, str | None]] = field(default_factory=dict)  # token, card id
    couriers: dict[str, tuple[CourierSpec, str, str]] = field(default_factory=dict)  # token, account id

    def store_ids(self) -> dict[str, SeededStore]:
        return {s.id: s for s in self.stores if s.id}


async def operator_token(settings: Settings) -> str:
    """The bootstrap operator's token, as `fooddispatch token --role operator` mints it."""
    from fooddispatch.identity import IdentityService, Tokens

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        identity = IdentityService(pool, Tokens({settings.jwt_kid: settings.jwt_secret}, settings.jwt_kid,
                                                settings.jwt_ttl_seconds))
        who = await identity.first_account("operator", None)
        if who is None:
            who = await identity.create_account("operator", name="demo operator")
        return identity.tokens.issue(who)
    finally:
        await pool.close()


async def _gather_limited(jobs: list, limit: int = 8) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(job):  # type: ignore[no-untyped-def]
        async with gate:
            await job

    await asyncio.gather(*(run(job) for job in jobs))


async def _account(api: Api, operator: str, role: str, email: str, name: str) -> tuple[str, str]:
    """Create (or, on a rerun over the same data folder, log into) an account; (token, account id)."""
    try:
        if role == "customer":
            body = await api.call("register", json={"email": email, "password": PASSWORD, "name": name})
            return body["token"], body["account_id"]
        await api.call("create_account", token=operator,
                       json={"role": role, "email": email, "password": PASSWORD, "name": name})
    except ApiError as exc:
        if exc.status != 409:
            raise
    body = await api.call("login", json={"email": email, "password": PASSWORD})
    return body["token"], body["account_id"]


async def seed_city(api: Api, city: City, settings: Settings, world: World) -> SeededCity:
    seeded = SeededCity(operator_token=await operator_token(settings))
    op = seeded.operator_token
    await _seed_merchants(api, city, seeded, world)

    async def customer(spec: CustomerSpec) -> None:
        token, _account_id = await _account(api, op, "customer", spec.email, spec.name)
        card_id = None
        if api.has("add_card"):
            body = await api.call("add_card", token=token, json={
                "type": "card", "card": {"number": spec.card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
                "billing_details": {"name": spec.name}})
            card_id = body["id"]
        seeded.customers[spec.key] = (spec, token, card_id)

    async def courier(spec: CourierSpec) -> None:
        token, account_id = await _account(api, op, "courier", spec.email, spec.name)
        seeded.couriers[spec.key] = (spec, token, account_id)

    if not api.has("add_card"):
        world.skip("saved cards", "payments has no POST /v1/payment_methods route yet")
    await _gather_limited([customer(spec) for spec in city.customers] + [courier(spec) for spec in city.couriers])
    return seeded


async def _seed_merchants(api: Api, city: City, seeded: SeededCity, world: World) -> None:
    if not api.has("create_tenant", "create_store"):
        world.skip("restaurants", "catalog has no tenant/store routes yet")
        return
    for part, route in [("opening hours", "put_hours"), ("delivery zones", "put_zones"), ("menus", "put_menu"),
                        ("closed-today special days", "add_special_day")]:
        if not api.has(route):
            world.skip(part, f"catalog has no {route} route yet")
    today = datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
    op = seeded.operator_token

    async def tenant(spec) -> None:  # type: ignore[no-untyped-def]
        body = await api.call("create_tenant", token=op, json={"name": spec.name})
        tenant_id = body["id"]
        seeded.tenant_ids[spec.key] = tenant_id
        try:
            key = await api.call("create_api_key", tenant_id, token=op, json={"name": "demo tablet"})
            token = key["key"]
        except (ApiError, Missing):
            token = op
        seeded.tenant_keys[spec.key] = token
        for store_spec in spec.stores:
            store = SeededStore(store_spec, spec.key)
            seeded.stores.append(store)
            route = api.routes["create_store"]
            values = (tenant_id,) if "{" in route.path else ()
            body = await api.call("create_store", *values, token=token, json={
                "name": store_spec.name, "lat": store_spec.lat, "lng": store_spec.lng, "timezone": TIMEZONE,
                "currency": CURRENCY, "tax_rate_bps": TAX_RATE_BPS, "prep_time_default_s": store_spec.prep_time_s,
                "accept_window_s": 300, "region": REGION})
            store.id = body["id"]
            if api.has("put_hours"):
                await api.call("put_hours", store.id, token=token, json={"periods": store_spec.hours})
            if api.has("put_zones"):
                await api.call("put_zones", store.id, token=token, json={
                    "zones": [store_spec.zone], "max_delivery_m": store_spec.max_delivery_m,
                    "fee_bands": store_spec.fee_bands})
            if api.has("put_menu"):
                await api.call("put_menu", store.id, token=token, json=spec.menu)
            if store_spec.closed_today and api.has("add_special_day"):
                await api.call("add_special_day", store.id, today, token=token,
                               json={"closed": True, "note": "Closed today: staff outing"})

    await _gather_limited([tenant(spec) for spec in city.tenants], limit=4)

