"""Privacy use cases: a person's export, their erasure, the access log, and retention.

Each package's part comes through its `privacy_store` (`export_person` / `erase_person`): this module
decides who may ask for what, runs the parts in one transaction, and records the access or the erasure.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from dispatch import privacy_store as dispatch_privacy
from fooddispatch import idempotency
from fooddispatch.identity import IdentityService
from fooddispatch.privacy import store
from fooddispatch.privacy.messages import AccessLogPage, AccessLogQuery, ErasureOut, PrivacyExport
from kernel.clock import Clock
from kernel.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kernel.http import COURIER, CUSTOMER, OPERATOR, Principal
from memberships import privacy_store as memberships_privacy
from orders import privacy_store as orders_privacy
from payments import privacy_store as payments_privacy
from tracking import privacy_store as tracking_privacy

PEOPLE = (CUSTOMER, COURIER)  # whose data these rights cover
SELF = "the person's own request"
# Forgets a courier in the live state (sockets, live index): tracking's, where tracking runs.
ForgetCourier = Callable[[str], Awaitable[object]]
# Closes a customer's order-tracking sockets (theirs and their links') on every process: tracking's.
ForgetCustomer = Callable[[str], Awaitable[object]]


class OrdersInProgress(Conflict):
    code = "orders_in_progress"


class MembershipActive(Conflict):
    code = "membership_active"


@dataclass(frozen=True)
class Retention:
    """How long what is kept only for a while is kept (docs/PRIVACY.md; settings)."""

    location_history: timedelta = timedelta(days=30)
    idempotency: timedelta = timedelta(hours=24)
    webhook_deliveries: timedelta = timedelta(days=30)


class PrivacyService:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, identity: IdentityService, *,
                 retention: Retention | None = None, forget_courier: ForgetCourier | None = None,
                 forget_customer: ForgetCustomer | None = None) -> None:
        self.pool = pool
        self.clock = clock
        self.identity = identity
        self.retention = retention or Retention()
        self.forget_courier = forget_courier
        self.forget_customer = forget_customer  # closes their order-tracking sockets on every process

    # -- whose data --------------------------------------------------------------------------

    @staticmethod
    def subject_of(who: Principal, account_id: str | None, reason: str | None) -> tuple[str, str]:
        """(whose data, why): a customer or courier asks about themselves; an operator names the person
        and says why. Anyone else may not (their route roles keep them out before this)."""
        if who.role in PEOPLE:
            if account_id is not None and account_id != who.account_id:
                raise Forbidden("a customer or courier may ask only about their own data", param="account_id")
            return who.account_id, reason or SELF
        if who.role != OPERATOR:
            raise Forbidden(f"role {who.role!r} may not read or erase a person's data")
        if account_id is None:
            raise ValidationFailed("name the person: account_id is required of operators", param="account_id")
        if reason is None:
            raise ValidationFailed("say why: reason is required of operators", param="reason")
        return account_id, reason

    async def _person(self, conn: asyncpg.Connection, account_id: str) -> tuple[Principal, dict[str, Any]]:
        account = await self.identity.export_account(conn, account_id)
        if account is None or account["role"] not in PEOPLE:
            raise NotFound("no such customer or courier", param="account_id")
        return Principal(account_id, str(account["role"])), account

    # -- export -----------------------------------------------------------------------------

    async def export(self, who: Principal, account_id: str | None, reason: str | None,
                     request_id: str | None = None) -> PrivacyExport:
        """Everything held about the person, read in one snapshot; the read is logged (who, what, when, why)."""
        subject_id, why = self.subject_of(who, account_id, reason)
        async with self.pool.acquire() as conn:
            # The parts' jsonb columns (prices, options, offers) as JSON, not as text holding JSON: on this
            # connection for the export only (the rest of the app reads jsonb as text).
            await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
            try:
                return await self._export(conn, who, subject_id, why, request_id)
            finally:
                await conn.reset_type_codec("jsonb", schema="pg_catalog")

    async def _export(self, conn: asyncpg.Connection, who: Principal, subject_id: str, why: str,
                      request_id: str | None) -> PrivacyExport:
        now = self.clock.now()
        async with conn.transaction(isolation="repeatable_read"):
            person, account = await self._person(conn, subject_id)
            await store.record_accesses(conn, actor_id=who.account_id, actor_role=who.role, subject_ids=[subject_id],
                                        what="privacy.export", reason=why, at=now, request_id=request_id)
            parts: dict[str, Any] = {"account": account}
            parts["orders"] = await orders_privacy.export_person(conn, person)
            parts["payments"] = await payments_privacy.export_person(conn, person)
            parts["tracking"] = await tracking_privacy.export_person(conn, person)
            parts["dispatch"] = await dispatch_privacy.export_person(conn, person)
            parts["memberships"] = await memberships_privacy.export_person(conn, person)
            erasure = await store.erasure(conn, subject_id)
            parts["erasure"] = erasure
            parts["reads_of_your_data"] = await store.reads_of(conn, subject_id)
        return PrivacyExport(subject_id, person.role, now, parts)

    # -- erasure ----------------------------------------------------------------------------

    async def erase(self, who: Principal, account_id: str | None, reason: str | None) -> ErasureOut:
        """Erase the person's personal data everywhere it lives; financial records stay under the bare
        account id. Recorded (who asked, when, why); a second request returns the first's record."""
        subject_id, why = self.subject_of(who, account_id, reason)
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            done = await store.erasure(conn, subject_id)
            if done is not None and done.completed_at is not None:
                return done
            person, _ = await self._person(conn, subject_id)
            if await orders_privacy.orders_in_progress(conn, person):
                raise OrdersInProgress("the person has orders in progress: erase once they have ended")
            if await memberships_privacy.live_subscriptions(conn, person):
                raise MembershipActive("the person's membership has not ended: cancel it first")
            await store.request_erasure(conn, subject_id, person.role, who.account_id, who.role, why, now)
        # Tokens stop here at once (other processes within their refresh); live state before the rows, so
        # what a courier's socket still sends is written, then deleted with the rest.
        self.identity.tokens.revoke({subject_id})
        if person.role == COURIER and self.forget_courier is not None:
            await self.forget_courier(subject_id)
        if person.role == CUSTOMER and self.forget_customer is not None:
            await self.forget_customer(subject_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await store.erasure(conn, subject_id, lock=True)
            summary: dict[str, Any] = {"account": await self.identity.erase_account(conn, subject_id, now)}
            erased = await orders_privacy.erase_person(conn, person, now)
            summary["orders"] = erased["orders"]
            summary["dispatch_orders"] = await dispatch_privacy.erase_orders(conn, erased["order_ids"])
            summary["payments"] = await payments_privacy.erase_person(conn, person, now)
            summary["tracking"] = await tracking_privacy.erase_person(conn, person, now)
            summary["memberships"] = await memberships_privacy.erase_person(conn, person, now)
            summary["idempotency_records"] = await idempotency.forget_principal(conn, subject_id)
            return await store.complete_erasure(conn, subject_id, summary, now)

    # -- access log --------------------------------------------------------------------------

    async def is_person(self, account_id: str) -> bool:
        """Whether the id is a customer's or courier's account (an operator's view of it is logged)."""
        async with self.pool.acquire() as conn:
            account = await self.identity.export_account(conn, account_id)
        return account is not None and account["role"] in PEOPLE

    async def record_reads(self, who: Principal, subject_ids: list[str], what: str, reason: str,
                           request_id: str | None = None) -> None:
        """One read of one or several people's data (an order: its customer and courier), one row each."""
        async with self.pool.acquire() as conn:
            await store.record_accesses(conn, actor_id=who.account_id, actor_role=who.role, subject_ids=subject_ids,
                                        what=what, reason=reason, at=self.clock.now(), request_id=request_id)

    async def access_log(self, query: AccessLogQuery) -> AccessLogPage:
        async with self.pool.acquire() as conn:
            found = await store.access_log(conn, subject_id=query.subject_id, actor_id=query.actor_id,
                                           after=query.cursor, limit=query.limit + 1)
        items = found[:query.limit]
        return AccessLogPage(items, items[-1].id if len(found) > query.limit else None)

    # -- retention ---------------------------------------------------------------------------

    async def purge_expired(self) -> dict[str, int]:
        """One retention pass (run by one process at a time, under a job lease): location history,
        finished webhook deliveries and Idempotency-Key records older than their periods go."""
        now = self.clock.now()
        history_before = now - self.retention.location_history
        gone = {"location_fixes": await tracking_privacy.purge_history(self.pool, history_before)}
        webhooks_before = now - self.retention.webhook_deliveries
        async with self.pool.acquire() as conn:
            gone["merchant_webhook_deliveries"] = await orders_privacy.purge_delivered_webhooks(conn, webhooks_before)
            gone["payment_webhook_deliveries"] = await payments_privacy.purge_delivered_webhooks(conn, webhooks_before)
        # On the database's clock, as the keys' replay window is (fooddispatch.idempotency).
        gone["idempotency_records"] = await idempotency.purge_expired(self.pool, self.retention.idempotency)
        return gone
