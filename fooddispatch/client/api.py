"""`Client`: the public API as typed async methods. Requests and answers are the server's own
msgspec Structs (catalog/orders/payments/tracking/dispatch `messages.py`, `fooddispatch.auth`).

A `Client` speaks for one caller: `client.with_token(token)` gives the same client (same session,
same retry policy) for another one, as each simulated phone, tablet and courier app holds its own
token. Every write sends an `Idempotency-Key`: a fresh one per call, kept across that call's retries;
a caller that repeats a call on purpose (a phone that lost the answer) passes the first call's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date

import aiohttp
import msgspec

from catalog import messages as catalog
from dispatch import messages as dispatch
from fooddispatch import auth, versions
from fooddispatch.client import operations as ops
from fooddispatch.client.courier import CourierSocket
from fooddispatch.client.transport import API_VERSION, RetryPolicy, Sleep, Transport
from orders import messages as orders
from payments import messages as payments
from tracking import messages as tracking


@dataclass(frozen=True, slots=True)
class Probe:
    """The answer of a probe (`/readyz`): its status and headers (which server answered)."""

    status: int
    headers: Mapping[str, str]


class Client:
    def __init__(self, base_url: str, session: aiohttp.ClientSession, *, token: str | None = None,
                 retry: RetryPolicy | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.transport = Transport(base_url, session, retry=retry, sleep=sleep)
        self.token = token

    def with_token(self, token: str | None) -> Client:
        """This client (same session, same retry policy), calling as whoever `token` (a JWT or a tenant's
        API key) belongs to."""
        other = copy.copy(self)
        other.token = token
        return other

    # ---- accounts --------------------------------------------------------------------------------
    async def register(self, request: auth.Register, *, idempotency_key: str | None = None) -> auth.TokenResponse:
        return await self.transport.call(ops.REGISTER, token=None, body=request, idempotency_key=idempotency_key)

    async def login(self, request: auth.Login) -> auth.TokenResponse:
        return await self.transport.call(ops.LOGIN, token=None, body=request)

    async def create_account(self, request: auth.CreateAccount) -> auth.AccountResponse:
        return await self._write(ops.CREATE_ACCOUNT, request)

    async def create_api_key(self, tenant_id: str, request: auth.CreateApiKey) -> auth.ApiKeyCreated:
        return await self._write(ops.CREATE_API_KEY, request, tenant_id=tenant_id)

    # ---- catalog: merchants ----------------------------------------------------------------------
    async def create_tenant(self, request: catalog.TenantCreate) -> catalog.TenantOut:
        return await self._write(ops.CREATE_TENANT, request)

    async def create_store(self, tenant_id: str, request: catalog.StoreCreate) -> catalog.StoreOut:
        return await self._write(ops.CREATE_STORE, request, tenant_id=tenant_id)

    async def list_stores(self, tenant_id: str, query: catalog.StorePageQuery | None = None) -> catalog.StorePage:
        return await self.transport.call(ops.LIST_STORES, token=self.token, path={"tenant_id": tenant_id},
                                         query=query)

    async def get_store(self, store_id: str) -> catalog.StoreOut:
        return await self._read(ops.GET_STORE, store_id=store_id)

    async def put_hours(self, store_id: str, request: catalog.HoursIn) -> catalog.StoreOut:
        return await self._write(ops.PUT_HOURS, request, store_id=store_id)

    async def put_zones(self, store_id: str, request: catalog.ZonesIn) -> catalog.StoreOut:
        return await self._write(ops.PUT_ZONES, request, store_id=store_id)

    async def put_menu(self, store_id: str, request: catalog.MenuIn) -> catalog.MenuOut:
        return await self._write(ops.PUT_MENU, request, store_id=store_id)

    async def put_special_day(self, store_id: str, day: date, request: catalog.SpecialDayIn) -> catalog.SpecialDayOut:
        return await self.transport.call(ops.PUT_SPECIAL_DAY, token=self.token,
                                         path={"store_id": store_id, "day": day}, body=request)

    async def pause_store(self, store_id: str, request: catalog.PauseIn) -> catalog.StoreOut:
        return await self._write(ops.PAUSE_STORE, request, store_id=store_id)

    async def open_store(self, store_id: str) -> catalog.StoreOut:
        return await self._write(ops.OPEN_STORE, None, store_id=store_id)

    # ---- catalog: customers ----------------------------------------------------------------------
    async def discover(self, query: catalog.DiscoveryQuery) -> catalog.StoreCards:
        return await self.transport.call(ops.DISCOVER, token=self.token, query=query)

    async def customer_menu(self, store_id: str) -> catalog.CustomerMenu:
        return await self._read(ops.CUSTOMER_MENU, store_id=store_id)

    # ---- payments --------------------------------------------------------------------------------
    async def add_payment_method(self, request: payments.CreatePaymentMethod, *,
                                 idempotency_key: str | None = None) -> payments.PaymentMethodView:
        return await self._write(ops.ADD_PAYMENT_METHOD, request, idempotency_key=idempotency_key)

    async def list_payment_methods(self) -> payments.PaymentMethodList:
        return await self._read(ops.LIST_PAYMENT_METHODS)

    async def detach_payment_method(self, payment_method_id: str) -> payments.PaymentMethodView:
        return await self._write(ops.DETACH_PAYMENT_METHOD, None, id=payment_method_id)

    async def confirm_payment_intent(self, intent_id: str,
                                     request: payments.ConfirmPaymentIntent) -> payments.PaymentIntentView:
        return await self._write(ops.CONFIRM_PAYMENT_INTENT, request, id=intent_id)

    async def cancel_payment_intent(self, intent_id: str,
                                    request: payments.CancelPaymentIntent) -> payments.PaymentIntentView:
        return await self._write(ops.CANCEL_PAYMENT_INTENT, request, id=intent_id)

    # ---- orders: customers -----------------------------------------------------------------------
    async def quote(self, request: orders.QuoteRequest) -> orders.QuoteOut:
        return await self._write(ops.QUOTE, request)

    async def checkout(self, request: orders.CheckoutRequest, *, idempotency_key: str | None = None) -> orders.OrderOut:
        """Places the order. Pass the key of an earlier call to get that call's order back (no second one)."""
        return await self._write(ops.CHECKOUT, request, idempotency_key=idempotency_key)

    async def list_orders(self, query: orders.OrderListQuery | None = None) -> orders.OrderPage:
        return await self.transport.call(ops.LIST_ORDERS, token=self.token, query=query)

    async def get_order(self, order_id: str) -> orders.OrderOut:
        return await self._read(ops.GET_ORDER, order_id=order_id)

    async def cancel_order(self, order_id: str, request: orders.CancelRequest) -> orders.OrderOut:
        return await self._write(ops.CANCEL_ORDER, request, order_id=order_id)

    async def tip_order(self, order_id: str, request: orders.TipRequest) -> orders.OrderOut:
        return await self._write(ops.TIP_ORDER, request, order_id=order_id)

    async def rate_order(self, order_id: str, request: orders.RatingRequest) -> orders.OrderOut:
        return await self._write(ops.RATE_ORDER, request, order_id=order_id)

    # ---- orders: restaurants ---------------------------------------------------------------------
    async def store_orders(self, store_id: str, query: orders.OrderListQuery | None = None) -> orders.OrderPage:
        return await self.transport.call(ops.STORE_ORDERS, token=self.token, path={"store_id": store_id},
                                         query=query)

    async def accept_order(self, order_id: str, request: orders.AcceptRequest) -> orders.OrderOut:
        return await self._write(ops.ACCEPT_ORDER, request, order_id=order_id)

    async def reject_order(self, order_id: str, request: orders.RejectRequest) -> orders.OrderOut:
        return await self._write(ops.REJECT_ORDER, request, order_id=order_id)

    async def preparing_order(self, order_id: str) -> orders.OrderOut:
        return await self._write(ops.PREPARING_ORDER, None, order_id=order_id)

    async def ready_order(self, order_id: str) -> orders.OrderOut:
        return await self._write(ops.READY_ORDER, None, order_id=order_id)

    # ---- couriers, operators and dispatch --------------------------------------------------------
    async def pickup_order(self, order_id: str, request: orders.CourierStepRequest) -> orders.OrderOut:
        return await self._write(ops.PICKUP_ORDER, request, order_id=order_id)

    async def deliver_order(self, order_id: str, request: orders.CourierStepRequest) -> orders.OrderOut:
        return await self._write(ops.DELIVER_ORDER, request, order_id=order_id)

    async def assign_courier(self, order_id: str, request: orders.AssignRequest) -> orders.OrderOut:
        """An operator gives the order to a courier by hand."""
        return await self._write(ops.ASSIGN_COURIER, request, order_id=order_id)

    async def courier_offline(self, courier_id: str) -> tracking.CourierStatusOut:
        return await self._write(ops.COURIER_OFFLINE, None, courier_id=courier_id)

    async def surge(self, region: str) -> dispatch.SurgeMap:
        return await self._read(ops.SURGE, region=region)

    @contextlib.asynccontextmanager
    async def courier_socket(self, *, heartbeat: float | None = 20.0) -> AsyncIterator[CourierSocket]:
        """The courier app's websocket, opened with this client's (courier's) token."""
        url = self.transport.url(ops.COURIER_SOCKET_PATH).replace("http", "ws", 1)
        headers = {versions.HEADER: API_VERSION}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.transport.session.ws_connect(url, headers=headers, heartbeat=heartbeat) as ws:
            yield CourierSocket(ws)

    # ---- probes (not under /v1: no retries, no decoding) -------------------------------------------
    async def readiness(self) -> Probe:
        async with self.transport.session.get(self.transport.url("/readyz")) as response:
            await response.read()
            return Probe(response.status, response.headers)

    async def metrics_text(self) -> str:
        """The Prometheus exposition at /metrics."""
        async with self.transport.session.get(self.transport.url("/metrics")) as response:
            return await response.text()

    # ---- helpers ---------------------------------------------------------------------------------
    async def _read(self, op: ops.Operation[ops.R], **path: str) -> ops.R:
        return await self.transport.call(op, token=self.token, path=path)

    async def _write(self, op: ops.Operation[ops.R], body: msgspec.Struct | None, *, idempotency_key: str | None = None,
                     **path: str) -> ops.R:
        return await self.transport.call(op, token=self.token, path=path, body=body,
                                         idempotency_key=idempotency_key)
