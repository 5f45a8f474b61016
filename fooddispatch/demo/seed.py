"""Put the generated city into the running app through its public API.

The one thing not done over HTTP is the first operator token, minted the way
`fooddispatch token --role operator` does (every deployment bootstraps its first operator out of
band). Everything else (tenants, their API keys, stores, hours, zones, menus, customers and their
cards, couriers) is created through `fooddispatch.client`, with the calls an operator, a merchant or
an app would make.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from catalog.messages import FeeBand, HoursIn, MenuIn, SpecialDayIn, StoreCreate, TenantCreate, ZonesIn
from fooddispatch.auth import CreateAccount, CreateApiKey, Login, Register
from fooddispatch.client import ApiError, Client
from fooddispatch.config import Settings
from fooddispatch.demo.city import (
    CURRENCY,
    REGION,
    TAX_RATE_BPS,
    TIMEZONE,
    City,
    CourierSpec,
    CustomerSpec,
    StoreSpec,
    TenantSpec,
)
from payments.messages import BillingDetails, CardDetails, CreatePaymentMethod

log = logging.getLogger("fooddispatch.demo")
PASSWORD = "demo-password-1"  # every simulated account's; the city is a demo


@dataclass
class SeededStore:
    spec: StoreSpec
    tenant_key: str
    id: str | None = None
    tablet_key: str | None = None  # the store's own API key: its tablet sees this store only


@dataclass
class SeededCity:
    operator_token: str
    tenant_ids: dict[str, str] = field(default_factory=dict)  # tenant key -> id
    tenant_keys: dict[str, str] = field(default_factory=dict)  # tenant key -> API key (the back office's)
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


async def _account(client: Client, operator: Client, role: str, email: str, name: str) -> tuple[str, str]:
    """Create (or, on a rerun over the same data folder, log into) an account; (token, account id)."""
    try:
        if role == "customer":
            body = await client.register(Register(email=email, password=PASSWORD, name=name))
            return body.token, body.account_id
        await operator.create_account(CreateAccount(role=role, email=email, password=PASSWORD, name=name))
    except ApiError as exc:
        if exc.status != 409:
            raise
    body = await client.login(Login(email=email, password=PASSWORD))
    return body.token, body.account_id


async def seed_city(client: Client, city: City, settings: Settings) -> SeededCity:
    seeded = SeededCity(operator_token=await operator_token(settings))
    operator = client.with_token(seeded.operator_token)
    await _seed_merchants(client, city, seeded)

    async def customer(spec: CustomerSpec) -> None:
        token, _account_id = await _account(client, operator, "customer", spec.email, spec.name)
        card = await client.with_token(token).add_payment_method(CreatePaymentMethod(
            card=CardDetails(number=spec.card, exp_month=12, exp_year=2030, cvc="123"),
            billing_details=BillingDetails(name=spec.name)))
        seeded.customers[spec.key] = (spec, token, card.id)

    async def courier(spec: CourierSpec) -> None:
        token, account_id = await _account(client, operator, "courier", spec.email, spec.name)
        seeded.couriers[spec.key] = (spec, token, account_id)

    await _gather_limited([customer(spec) for spec in city.customers] + [courier(spec) for spec in city.couriers])
    return seeded


async def _seed_merchants(client: Client, city: City, seeded: SeededCity) -> None:
    today = datetime.now(ZoneInfo(TIMEZONE)).date()
    operator = client.with_token(seeded.operator_token)

    async def tenant(spec: TenantSpec) -> None:
        tenant_id = (await operator.create_tenant(TenantCreate(name=spec.name))).id
        seeded.tenant_ids[spec.key] = tenant_id
        token = (await operator.create_api_key(tenant_id, CreateApiKey(name="demo back office"))).key
        seeded.tenant_keys[spec.key] = token
        office = client.with_token(token)
        menu = msgspec.convert(spec.menu, MenuIn)
        for store_spec in spec.stores:
            store = SeededStore(store_spec, spec.key)
            seeded.stores.append(store)
            store.id = store_id = (await office.create_store(tenant_id, StoreCreate(
                name=store_spec.name, lat=store_spec.lat, lng=store_spec.lng, timezone=TIMEZONE, currency=CURRENCY,
                tax_rate_bps=TAX_RATE_BPS, prep_time_default_s=store_spec.prep_time_s, accept_window_s=300,
                region=REGION))).id
            store.tablet_key = (await office.create_api_key(tenant_id, CreateApiKey(
                name=f"{store_spec.name} tablet", store_id=store_id))).key
            await office.put_hours(store_id, msgspec.convert({"periods": store_spec.hours}, HoursIn))
            await office.put_zones(store_id, ZonesIn(
                zones=[store_spec.zone], max_delivery_m=store_spec.max_delivery_m,
                fee_bands=msgspec.convert(store_spec.fee_bands, list[FeeBand])))
            await office.put_menu(store_id, menu)
            if store_spec.closed_today:
                await office.put_special_day(store_id, today, SpecialDayIn(closed=True,
                                                                            note="Closed today: staff outing"))

    await _gather_limited([tenant(spec) for spec in city.tenants], limit=4)
