"""The orders service: a small facade that builds the package's collaborators and holds them.

Each collaborator gets the narrow dependencies it needs as constructor arguments (the pool, the
clock, the ports, a policy), never the facade itself, so each can be read, built and tested on its
own. Callers (the handlers in `web.py`, the event consumer, the composition root) reach a use case
through the collaborator that owns it:

- `checkout` (`checkout.py`, with the rules over the ports in `checkout_rules.py`): quote, place;
- `lifecycle` (`lifecycle.py`): accept, reject, cancel, tip, rate, the accept-window sweep...;
- `money` (`money.py`): what an ending, a delivery and a refund do to the order's money;
- `queries` (`queries.py`): the read side, an order as its viewer sees it and the lists;
- `stores` (`tenancy.py`): which stores a caller may act for.

Promo creation, one INSERT behind a tenancy check, is the facade's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from kernel.clientip import Network
from kernel.clock import Clock
from kernel.errors import Forbidden
from kernel.ids import new_id
from orders import store
from orders.checkout import Checkout
from orders.checkout_rules import CheckoutRules
from orders.errors import PromoCodeTaken
from orders.lifecycle import OrderLifecycle, StorePauser
from orders.merchant_refunds import MerchantRefunds, RefundLimits
from orders.money import OrderMoney
from orders.ports import Catalog, Memberships, NoSurge, Payments, SplitFactory, SurgeSource
from orders.pricing import FeePolicy, Promo, check_promo_currency
from orders.queries import OrderQueries
from orders.statements import Statements
from orders.tenancy import StoreAccess


@dataclass
class OrdersConfig:
    policy: FeePolicy = field(default_factory=FeePolicy)
    pause_after_expired: int = 3  # consecutive expired orders that pause a store (0: never)
    trusted_proxies: tuple[Network, ...] = ()  # may name the client in X-Forwarded-For (kernel.clientip)
    refund_limits: RefundLimits = field(default_factory=RefundLimits)  # of merchant refunds


class OrdersService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        catalog: Catalog,
        payments: Payments,
        split: SplitFactory,
        *,
        surge: SurgeSource | None = None,
        config: OrdersConfig | None = None,
        pause_store: StorePauser | None = None,
        memberships: Memberships | None = None,
    ) -> None:
        self.config = config or OrdersConfig()
        fees = self.config.policy
        self.pool = pool  # the pool and clock the collaborators below share (promo creation uses the pool too)
        self.clock = clock
        self.stores = StoreAccess(pool, catalog)
        self.checkout = Checkout(pool, clock, CheckoutRules(catalog, payments, surge or NoSurge(), fees,
                                                                 memberships), fees)
        self.money = OrderMoney(pool, clock, catalog, payments, split, fees)
        self.lifecycle = OrderLifecycle(pool, clock, payments, self.money, fees,
                                        pause_after_expired=self.config.pause_after_expired, pause_store=pause_store)
        self.queries = OrderQueries(pool, fees)
        self.statements = Statements(pool, payments)
        self.merchant_refunds = MerchantRefunds(pool, clock, payments, self.money, self.config.refund_limits)

    async def create_promo(self, scope: str | None, values: dict[str, Any]) -> Promo:
        """A store's promo belongs to the store's tenant (its code unique within that tenant); a
        platform-wide one (no store, operators only) to none. `scope`: `tenancy.tenant_scope`."""
        if scope is not None and values.get("store_id") is None:
            raise Forbidden("restaurants create promos for one of their stores; platform-wide promos are operators'")
        check_promo_currency(values["kind"], values.get("currency"), amount=values.get("amount") or 0,
                             max_discount=values.get("max_discount"), min_subtotal=values.get("min_subtotal") or 0,
                             budget=values.get("budget"))
        try:
            async with self.pool.acquire() as conn:
                owner = None
                if values.get("store_id") is not None:
                    owner = await self.stores.owner_on(conn, values["store_id"], scope)
                return await store.insert_promo(conn, {"id": new_id("pro"), **values, "tenant_id": owner})
        except asyncpg.UniqueViolationError:
            raise PromoCodeTaken("a promo with this code exists", param="code") from None
