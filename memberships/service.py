"""Memberships' use cases: one async method per command, one transaction each.

- plans: an operator creates them (price, interval, trial, benefits, region) and retires them;
- subscriptions: a customer subscribes with a saved card (the first period is charged at once, or at
  the trial's end), changes the card or `cancel_at_period_end`, cancels now (with a pro-rata refund of
  the current period on request), pays an open invoice;
- `run_due`, the renewal job: renewals, dunning retries, ends at period end and expiries, each in a
  transaction of its own on a subscription locked `FOR UPDATE SKIP LOCKED`, so any number of
  processes run it and each due subscription is handled once; a period's invoice is unique per
  (subscription, period start), so it is never made, nor charged, twice;
- `benefits`: what a customer's live subscription gives at quote time (orders' pricing, through the port
  the composition root fills).

`customer` arguments: the calling customer, whose own subscriptions and invoices alone exist for them
(others' are 404); None: an operator, who sees every one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import structlog

from kernel.clock import Clock
from kernel.errors import ValidationFailed
from kernel.ids import new_id
from kernel.money import Money, is_known_currency
from kernel.outbox import MoneyData
from memberships import event_types as ev
from memberships import messages, model, store
from memberships.charges import Attempt, Charges, failed_attempt, invoice_facts, subscription_facts
from memberships.errors import (
    AlreadySubscribed,
    InvoiceMissing,
    InvoiceNotOpen,
    PaymentMethodUnusable,
    PlanInactive,
    PlanMissing,
    SubscriptionEnded,
    SubscriptionMissing,
)
from memberships.messages import CreatePlan
from memberships.model import Benefits, Due, Interval, Invoice, InvoiceStatus, Plan, Status, Subscription
from memberships.ports import Billing
from payments import PaymentDeclined, PaymentRequiresAction, ProcessorUnavailable

log = structlog.get_logger("memberships")


class MembershipsService:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, billing: Billing) -> None:
        self.pool = pool
        self.clock = clock
        self.billing = billing
        self.charges = Charges(billing)

    # ------------------------------------------------------------ plans

    async def create_plan(self, body: CreatePlan, actor: str) -> Plan:
        if not is_known_currency(body.currency):
            raise ValidationFailed(f"unknown currency {body.currency}", param="currency", code="invalid_currency")
        price = Money(body.amount, body.currency)
        benefits = Benefits(body.currency, body.benefits.free_delivery_min_subtotal,
                            body.benefits.service_fee_discount_bps)
        model.check_plan(price, body.trial_days, benefits)
        plan = Plan(id=new_id("plan"), name=body.name, region=body.region, price=price,
                    interval=Interval(body.interval), trial_days=body.trial_days, benefits=benefits, active=True,
                    created_at=self.clock.now())
        async with self.pool.acquire() as conn:
            return await store.insert_plan(conn, plan, actor)

    async def plans(self, *, region: str | None, currency: str | None, include_inactive: bool,
                    limit: int, starting_after: str | None = None) -> list[Plan]:
        """Newest first, at most `limit`, after the plan `starting_after`."""
        async with self.pool.acquire() as conn:
            return await store.list_plans(conn, region=region, currency=currency, active_only=not include_inactive,
                                          starting_after=starting_after, limit=limit)

    async def plan(self, plan_id: str) -> Plan:
        async with self.pool.acquire() as conn:
            found = await store.get_plan(conn, plan_id)
        if found is None:
            raise PlanMissing(f"No such plan: '{plan_id}'", param="id")
        return found

    async def set_plan_active(self, plan_id: str, active: bool) -> Plan:
        """Retire a plan (no new subscriptions; those it has renew on) or offer it again."""
        async with self.pool.acquire() as conn:
            found = await store.set_plan_active(conn, plan_id, active)
        if found is None:
            raise PlanMissing(f"No such plan: '{plan_id}'", param="id")
        return found

    # ------------------------------------------------------------ subscribing

    async def subscribe(self, customer_id: str, plan_id: str, payment_method_id: str) -> Subscription:
        """Subscribe with a saved card: a trial first when the plan has one and the customer has never had
        one (the card is checked, and charged when the trial ends), else the first period charged now (a
        decline or a 3-D Secure challenge is payments' 402, and nothing is kept)."""
        async with self.pool.acquire() as conn, conn.transaction():
            plan = await store.get_plan(conn, plan_id)
            if plan is None:
                raise PlanMissing(f"No such plan: '{plan_id}'", param="plan")
            if not plan.active:
                raise PlanInactive("this plan takes no new subscriptions", param="plan")
            if not await self.billing.payment_method_usable(conn, customer_id, payment_method_id):
                raise PaymentMethodUnusable(f"No such payment_method: '{payment_method_id}'", param="payment_method")
            now, sub_id = self.clock.now(), new_id("sub")
            # One trial per customer: claimed on a row keyed by the customer (race-safe; rolled back with
            # the rest when this subscribe fails).
            had_trial = plan.trial_days > 0 and not await store.claim_trial(conn, customer_id, sub_id, now)
            days = model.trial_days(had_trial, plan.trial_days)
            trial_end = now + timedelta(days=days) if days else None
            anchor = trial_end or now
            index = 0 if trial_end else 1
            start, end = (now, anchor) if trial_end else model.period(anchor, plan.interval, 1)
            sub = await store.insert_subscription(conn, Subscription(
                id=sub_id, customer_id=customer_id, plan_id=plan.id,
                status=Status.TRIALING if trial_end else Status.ACTIVE, payment_method_id=payment_method_id,
                anchor=anchor, period_index=index, current_period_start=start, current_period_end=end,
                trial_end=trial_end, cancel_at_period_end=False, canceled_at=None, cancel_reason=None,
                next_action_at=end, open_invoice_id=None, dunning_attempts=0, created_at=now))
            if sub is None:
                raise AlreadySubscribed("this customer has a subscription already; cancel it first")
            await self.charges.tell(conn, ev.SubscriptionCreated(**subscription_facts(sub)),
                                    messages.subscription_view(sub), sub.id)
            if trial_end is None:
                inv = await self._new_invoice(conn, sub, plan)
                intent = await self.charges.charge(conn, sub, inv, 1)  # raises the 402: all rolls back
                sub = await self.charges.record(conn, sub, inv, Attempt(1, intent, None), now)
        log.info("subscription.created", subscription=sub.id, customer=customer_id, plan=plan.id,
                 status=sub.status.value)
        return sub

    async def _new_invoice(self, conn: asyncpg.Connection, sub: Subscription, plan: Plan) -> Invoice:
        """The invoice of the subscription's current period (unique per period: a second is refused)."""
        inv = await store.insert_invoice(conn, Invoice(
            id=new_id("in"), subscription_id=sub.id, customer_id=sub.customer_id, period_index=sub.period_index,
            period_start=sub.current_period_start, period_end=sub.current_period_end, amount=plan.price,
            status=InvoiceStatus.OPEN, attempts=0, payment_intent_id=None, last_error=None, amount_refunded=0,
            refund_id=None, created_at=self.clock.now(), paid_at=None))
        if inv is None:
            raise RuntimeError(f"subscription {sub.id} has an invoice for the period from "
                               f"{sub.current_period_start.isoformat()} already")
        return inv

    # ------------------------------------------------------------ reading

    async def subscription(self, customer: str | None, sub_id: str) -> Subscription:
        async with self.pool.acquire() as conn:
            return await self._visible(conn, customer, sub_id)

    async def subscriptions(self, customer: str | None, limit: int, *,
                            starting_after: str | None = None) -> list[Subscription]:
        """Newest first (a customer's own, or all for None), at most `limit`, after `starting_after`."""
        async with self.pool.acquire() as conn:
            return await store.list_subscriptions(conn, customer, limit, starting_after=starting_after)

    async def invoice(self, customer: str | None, invoice_id: str) -> Invoice:
        async with self.pool.acquire() as conn:
            inv = await store.get_invoice(conn, invoice_id)
        if inv is None or (customer is not None and inv.customer_id != customer):
            raise InvoiceMissing(f"No such invoice: '{invoice_id}'", param="id")
        return inv

    async def invoices(self, customer: str | None, subscription_id: str | None, limit: int, *,
                       starting_after: str | None = None) -> list[Invoice]:
        """Newest first (a customer's own, or all for None), at most `limit`, after `starting_after`."""
        async with self.pool.acquire() as conn:
            return await store.list_invoices(conn, customer_id=customer, subscription_id=subscription_id,
                                             starting_after=starting_after, limit=limit)

    async def _visible(self, conn: asyncpg.Connection, customer: str | None, sub_id: str, *,
                       lock: bool = False) -> Subscription:
        sub = await store.get_subscription(conn, sub_id, lock=lock)
        if sub is None or (customer is not None and sub.customer_id != customer):
            raise SubscriptionMissing(f"No such subscription: '{sub_id}'", param="id")
        return sub

    # ------------------------------------------------------------ changing and ending

    async def update(self, customer: str | None, sub_id: str, *, cancel_at_period_end: bool | None,
                     payment_method_id: str | None) -> Subscription:
        """Set or clear `cancel_at_period_end`; change the card the next charges use."""
        async with self.pool.acquire() as conn, conn.transaction():
            sub = await self._visible(conn, customer, sub_id, lock=True)
            if sub.status is Status.CANCELED:
                raise SubscriptionEnded("this subscription was canceled")
            changes: dict[str, object] = {}
            if cancel_at_period_end is not None:
                changes["cancel_at_period_end"] = cancel_at_period_end
            if payment_method_id is not None:
                if not await self.billing.payment_method_usable(conn, sub.customer_id, payment_method_id):
                    raise PaymentMethodUnusable(f"No such payment_method: '{payment_method_id}'",
                                                param="payment_method")
                changes["payment_method_id"] = payment_method_id
            if not changes:
                return sub
            after = await store.update_subscription(conn, sub.id, self.clock.now(), **changes)
            await self.charges.updated(conn, sub, after)
        return after

    async def cancel(self, customer: str | None, sub_id: str, *, refund: bool) -> Subscription:
        """Cancel now; benefits stop. `refund`: give back the unused share of the paid current period
        (`model.unused_share`: pro rata by seconds left, floored), borne by the platform."""
        async with self.pool.acquire() as conn, conn.transaction():
            sub = await self._visible(conn, customer, sub_id, lock=True)
            if sub.status is Status.CANCELED:
                raise SubscriptionEnded("this subscription was canceled already")
            now = self.clock.now()
            if refund and sub.open_invoice_id is None and sub.period_index >= 1:
                await self._refund_rest(conn, sub, now)
            sub = await self.charges.canceled(conn, sub, "requested", now)
        log.info("subscription.canceled", subscription=sub.id, reason="requested", refund=refund)
        return sub

    async def _refund_rest(self, conn: asyncpg.Connection, sub: Subscription, now: datetime) -> None:
        inv = await store.paid_invoice_of_period(conn, sub.id, sub.current_period_start)
        if inv is None or inv.payment_intent_id is None or inv.amount_refunded:
            return
        amount = model.unused_share(inv.amount.amount, inv.period_start, inv.period_end, now)
        if amount <= 0:
            return
        refunded = Money(amount, inv.amount.currency)
        refund_id = await self.billing.refund(conn, inv.payment_intent_id, refunded, "subscription_canceled",
                                              idempotency_key=f"membership-cancel:{inv.id}")
        inv = await store.update_invoice(conn, inv.id, amount_refunded=amount, refund_id=refund_id)
        await self.charges.tell(conn, ev.InvoiceRefunded(
            **invoice_facts(inv), refunded=MoneyData(amount, inv.amount.currency), refund_id=refund_id),
            messages.invoice_view(inv), inv.id)

    async def pay_invoice(self, customer: str | None, invoice_id: str, payment_method_id: str | None) -> Invoice:
        """Pay an open invoice now (the customer, on-session: a new card, or the old one again). Paid,
        the subscription is active again; a decline is payments' 402 and changes nothing."""
        async with self.pool.acquire() as conn, conn.transaction():
            found = await store.get_invoice(conn, invoice_id)
            if found is None or (customer is not None and found.customer_id != customer):
                raise InvoiceMissing(f"No such invoice: '{invoice_id}'", param="id")
            sub = await self._visible(conn, None, found.subscription_id, lock=True)
            inv = await store.get_invoice(conn, invoice_id, lock=True)
            assert inv is not None
            if inv.status is not InvoiceStatus.OPEN or sub.open_invoice_id != inv.id:
                raise InvoiceNotOpen(f"this invoice is {inv.status.value}; only an open invoice can be paid")
            if payment_method_id is not None:
                sub = await self._use_card(conn, sub, payment_method_id)
            number = inv.attempts + 1
            failure: PaymentDeclined | PaymentRequiresAction | None = None
            try:
                intent = await self.charges.charge(conn, sub, inv, number)
            except (PaymentDeclined, PaymentRequiresAction) as exc:
                # Counted (the next attempt is a new charge), but the dunning schedule is left as it was.
                failure = exc
                await store.update_invoice(conn, inv.id, attempts=number, payment_intent_id=exc.payment_intent,
                                           last_error=failed_attempt(exc))
            else:
                await self.charges.record(conn, sub, inv, Attempt(number, intent, None), self.clock.now())
            paid = await store.get_invoice(conn, invoice_id)
        if failure is not None:
            raise failure
        assert paid is not None
        return paid

    async def _use_card(self, conn: asyncpg.Connection, sub: Subscription, payment_method_id: str) -> Subscription:
        if not await self.billing.payment_method_usable(conn, sub.customer_id, payment_method_id):
            raise PaymentMethodUnusable(f"No such payment_method: '{payment_method_id}'", param="payment_method")
        return await store.update_subscription(conn, sub.id, self.clock.now(), payment_method_id=payment_method_id)

    # ------------------------------------------------------------ the renewal job

    async def run_due(self, limit: int = 50) -> int:
        """Act on up to `limit` subscriptions whose next action is due; returns how many. Each is its own
        transaction on a row no other worker holds (`store.claim_due`)."""
        done = 0
        broken: list[str] = []  # failed in this run for a reason of their own: the others go on
        while done < limit:
            async with self.pool.acquire() as conn:
                sub = None
                try:
                    async with conn.transaction():
                        sub = await store.claim_due(conn, self.clock.now(), skip=broken)
                        if sub is None:
                            break
                        await self._act(conn, sub)
                except ProcessorUnavailable:
                    raise  # everyone's charges would fail alike: the job backs off and tries again
                except Exception:
                    if sub is None:
                        raise
                    log.exception("subscription.due_failed", subscription=sub.id)
                    broken.append(sub.id)
                    continue
            done += 1
        return done

    async def _act(self, conn: asyncpg.Connection, sub: Subscription) -> None:
        now = self.clock.now()
        action = model.due_action(sub.status, sub.open_invoice_id is not None, sub.cancel_at_period_end)
        if action is Due.END:
            await self.charges.canceled(conn, sub, "period_end", now)
        elif action is Due.EXPIRE:
            await self.charges.canceled(conn, sub, "payment_failed", now)
        elif action is Due.RETRY:
            inv = await store.get_invoice(conn, sub.open_invoice_id or "", lock=True)
            assert inv is not None and inv.status is InvoiceStatus.OPEN
            await self.charges.record(conn, sub, inv, await self.charges.attempt(conn, sub, inv, inv.attempts + 1),
                                      now)
        else:
            plan = await store.get_plan(conn, sub.plan_id)
            assert plan is not None
            index = sub.period_index + 1
            start, end = model.period(sub.anchor, plan.interval, index)
            before = sub
            sub = await store.update_subscription(conn, sub.id, now, period_index=index, current_period_start=start,
                                                  current_period_end=end)
            inv = await self._new_invoice(conn, sub, plan)
            await self.charges.record(conn, sub, inv, await self.charges.attempt(conn, sub, inv, 1), now,
                                      before=before)
            if before.status is Status.TRIALING:
                log.info("subscription.trial_ended", subscription=sub.id)
        log.info("subscription.due", subscription=sub.id, action=action.value)

    # ------------------------------------------------------------ benefits (orders' pricing)

    async def benefits(self, conn: asyncpg.Connection, customer_id: str, region: str,
                       currency: str) -> Benefits | None:
        """The benefits of the customer's trialing or active subscription to a plan of this region and
        currency (None: none; a past_due or canceled subscription gives nothing)."""
        return await store.live_benefits(conn, customer_id, region, currency, model.BENEFITS)
