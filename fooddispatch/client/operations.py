"""The public operations the client calls, declared once: method, path and the very msgspec Structs
the server's handlers declared for body, query and answer (imported from each package's wire-format
module, never redeclared). tests/e2e/test_client_coverage.py checks every entry against the app's
route table, so a route that moves or changes its types fails there, not in the demo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from catalog import messages as catalog
from dispatch import messages as dispatch
from fooddispatch import auth
from orders import messages as orders
from payments import messages as payments
from tracking import messages as tracking

R = TypeVar("R")
READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Operation(Generic[R]):
    """One route. `body` and `query` are the Structs the handler decodes, `response` the one it answers."""

    method: str
    path: str  # with {placeholders}
    response: type[R]
    body: type[Any] | None = None
    query: type[Any] | None = None
    status: int = 200

    @property
    def writes(self) -> bool:
        """Every write sends an Idempotency-Key (fooddispatch/idempotency.py honours it on all of them)."""
        return self.method not in READS


# ---- accounts ------------------------------------------------------------------------------------
REGISTER = Operation("POST", "/v1/auth/register", auth.TokenResponse, auth.Register, status=201)
LOGIN = Operation("POST", "/v1/auth/login", auth.TokenResponse, auth.Login)
CREATE_ACCOUNT = Operation("POST", "/v1/accounts", auth.AccountResponse, auth.CreateAccount, status=201)
CREATE_API_KEY = Operation("POST", "/v1/tenants/{tenant_id}/api_keys", auth.ApiKeyCreated, auth.CreateApiKey,
                           status=201)

# ---- catalog: merchants --------------------------------------------------------------------------
CREATE_TENANT = Operation("POST", "/v1/tenants", catalog.TenantOut, catalog.TenantCreate, status=201)
CREATE_STORE = Operation("POST", "/v1/tenants/{tenant_id}/stores", catalog.StoreOut, catalog.StoreCreate,
                         status=201)
LIST_STORES = Operation("GET", "/v1/tenants/{tenant_id}/stores", catalog.StorePage, query=catalog.StorePageQuery)
GET_STORE = Operation("GET", "/v1/merchant/stores/{store_id}", catalog.StoreOut)
PUT_HOURS = Operation("PUT", "/v1/merchant/stores/{store_id}/hours", catalog.StoreOut, catalog.HoursIn)
PUT_ZONES = Operation("PUT", "/v1/merchant/stores/{store_id}/zones", catalog.StoreOut, catalog.ZonesIn)
PUT_MENU = Operation("PUT", "/v1/merchant/stores/{store_id}/menu", catalog.MenuOut, catalog.MenuIn)
PUT_SPECIAL_DAY = Operation("PUT", "/v1/merchant/stores/{store_id}/special_days/{day}", catalog.SpecialDayOut,
                            catalog.SpecialDayIn)
PAUSE_STORE = Operation("POST", "/v1/merchant/stores/{store_id}/pause", catalog.StoreOut, catalog.PauseIn)
OPEN_STORE = Operation("POST", "/v1/merchant/stores/{store_id}/open", catalog.StoreOut)

# ---- catalog: customers --------------------------------------------------------------------------
DISCOVER = Operation("GET", "/v1/stores", catalog.StoreCards, query=catalog.DiscoveryQuery)
CUSTOMER_MENU = Operation("GET", "/v1/stores/{store_id}/menu", catalog.CustomerMenu)

# ---- payments ------------------------------------------------------------------------------------
ADD_PAYMENT_METHOD = Operation("POST", "/v1/payment_methods", payments.PaymentMethodView,
                               payments.CreatePaymentMethod)
LIST_PAYMENT_METHODS = Operation("GET", "/v1/payment_methods", payments.PaymentMethodList)
DETACH_PAYMENT_METHOD = Operation("POST", "/v1/payment_methods/{id}/detach", payments.PaymentMethodView)
CONFIRM_PAYMENT_INTENT = Operation("POST", "/v1/payment_intents/{id}/confirm", payments.PaymentIntentView,
                                   payments.ConfirmPaymentIntent)
CANCEL_PAYMENT_INTENT = Operation("POST", "/v1/payment_intents/{id}/cancel", payments.PaymentIntentView,
                                  payments.CancelPaymentIntent)

# ---- orders: customers ---------------------------------------------------------------------------
QUOTE = Operation("POST", "/v1/quotes", orders.QuoteOut, orders.QuoteRequest, status=201)
CHECKOUT = Operation("POST", "/v1/orders", orders.OrderOut, orders.CheckoutRequest, status=201)
LIST_ORDERS = Operation("GET", "/v1/orders", orders.OrderPage, query=orders.OrderListQuery)
GET_ORDER = Operation("GET", "/v1/orders/{order_id}", orders.OrderOut)
CANCEL_ORDER = Operation("POST", "/v1/orders/{order_id}/cancel", orders.OrderOut, orders.CancelRequest)
TIP_ORDER = Operation("POST", "/v1/orders/{order_id}/tip", orders.OrderOut, orders.TipRequest)
RATE_ORDER = Operation("POST", "/v1/orders/{order_id}/rating", orders.OrderOut, orders.RatingRequest)

# ---- orders: restaurants -------------------------------------------------------------------------
STORE_ORDERS = Operation("GET", "/v1/stores/{store_id}/orders", orders.OrderPage, query=orders.OrderListQuery)
ACCEPT_ORDER = Operation("POST", "/v1/orders/{order_id}/accept", orders.OrderOut, orders.AcceptRequest)
REJECT_ORDER = Operation("POST", "/v1/orders/{order_id}/reject", orders.OrderOut, orders.RejectRequest)
PREPARING_ORDER = Operation("POST", "/v1/orders/{order_id}/preparing", orders.OrderOut)
READY_ORDER = Operation("POST", "/v1/orders/{order_id}/ready", orders.OrderOut)

# ---- couriers, operators and dispatch ------------------------------------------------------------
PICKUP_ORDER = Operation("POST", "/v1/orders/{order_id}/pickup", orders.OrderOut, orders.CourierStepRequest)
DELIVER_ORDER = Operation("POST", "/v1/orders/{order_id}/deliver", orders.OrderOut, orders.CourierStepRequest)
ASSIGN_COURIER = Operation("POST", "/v1/orders/{order_id}/courier", orders.OrderOut, orders.AssignRequest)
COURIER_OFFLINE = Operation("POST", "/v1/couriers/{courier_id}/offline", tracking.CourierStatusOut)
SURGE = Operation("GET", "/v1/dispatch/regions/{region}/surge", dispatch.SurgeMap)
COURIER_SOCKET_PATH = "/v1/courier/ws"  # the courier app's websocket (client/courier.py)

OPERATIONS: dict[str, Operation[Any]] = {
    name.lower(): value for name, value in dict(globals()).items() if isinstance(value, Operation)
}
