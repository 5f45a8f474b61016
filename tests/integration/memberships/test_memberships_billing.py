"""Memberships' billing on the injected clock, against real PostgreSQL: a year of monthly renewals, a
renewal that fails and recovers in dunning, one that ends canceled, a cancellation with its pro-rata
refund, and two workers running the renewal job at once without charging anything twice."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import asyncpg
import pytest
from memberships_world import DECLINED_CARD, OK_CARD, THREE_D_SECURE_CARD, World, make_payments

from memberships import model, store
from memberships.model import InvoiceStatus, Status
from memberships.service import MembershipsService
from payments import PaymentDeclined, ProcessorUnavailable
from payments import store as payments_store


async def events(db: asyncpg.Pool, aggregate_id: str) -> list[tuple[str, dict]]:
    rows = await db.fetch("SELECT type, payload FROM outbox WHERE aggregate_id = $1 ORDER BY seq", aggregate_id)
    return [(r["type"], json.loads(r["payload"])["data"]) for r in rows]


async def types_for_customer(db: asyncpg.Pool, customer_id: str) -> list[str]:
    rows = await db.fetch("SELECT type FROM outbox WHERE payload->'data'->>'customer_id' = $1 ORDER BY seq",
                          customer_id)
    return [r["type"] for r in rows]


async def test_a_year_of_monthly_renewals_charges_each_period_once_and_the_ledger_balances(world: World) -> None:
    plan = await world.plan(amount=999)
    async with world.db.acquire() as conn:
        await payments_store.insert_webhook_endpoint(conn, url="http://127.0.0.1:9/hooks", secret="whsec_test",
                                                     event_types=["subscription.*", "invoice.paid"],
                                                     created_by="usr_operator")
    card = await world.add_card("cus_year", OK_CARD)
    sub = await world.memberships.subscribe("cus_year", plan.id, card)
    assert sub.status is Status.ACTIVE and sub.period_index == 1
    for _ in range(12):
        await world.advance_to(sub.current_period_end)
        assert await world.memberships.run_due() == 1
        assert await world.memberships.run_due() == 0  # nothing is due twice
        sub = await world.memberships.subscription("cus_year", sub.id)
    assert sub.status is Status.ACTIVE and sub.period_index == 13
    assert sub.current_period_start == model.period_end(sub.anchor, model.Interval.MONTH, 12)
    invoices = await world.memberships.invoices("cus_year", sub.id, 100)
    assert len(invoices) == 13 and {i.status for i in invoices} == {InvoiceStatus.PAID}
    assert len({i.period_start for i in invoices}) == 13
    assert await world.processor.authorizations() == 13
    assert await world.ledger_sums() == {"USD": 0}
    assert await world.balance("platform_revenue:USD") == 13 * 999
    assert await world.balance("customer_card_clearing:USD") == 0
    kinds = await types_for_customer(world.db, "cus_year")
    assert kinds.count("invoice.paid") == 13 and kinds[0] == "subscription.created"
    hooks = await world.db.fetch("SELECT event_type, payload->'data'->'object' AS obj FROM payment_webhook_deliveries")
    assert [h["event_type"] for h in hooks].count("invoice.paid") == 13
    assert all(json.loads(h["obj"])["object"] == "invoice" for h in hooks)


async def test_a_failed_renewal_is_retried_after_one_and_three_days_and_recovers_with_a_new_card(
        world: World) -> None:
    plan = await world.plan(amount=1200)
    good = await world.add_card("cus_rec", OK_CARD)
    sub = await world.memberships.subscribe("cus_rec", plan.id, good)
    bad = await world.add_card("cus_rec", DECLINED_CARD)
    await world.memberships.update("cus_rec", sub.id, cancel_at_period_end=None, payment_method_id=bad)
    due = sub.current_period_end
    await world.advance_to(due)
    assert await world.memberships.run_due() == 1
    sub = await world.memberships.subscription("cus_rec", sub.id)
    assert sub.status is Status.ACTIVE and sub.open_invoice_id is not None  # grace: benefits go on
    assert sub.next_action_at == due + timedelta(days=1)
    assert await world.benefits_for("cus_rec") is not None
    await world.advance_to(sub.next_action_at)
    assert await world.memberships.run_due() == 1
    sub = await world.memberships.subscription("cus_rec", sub.id)
    assert sub.next_action_at == due + timedelta(days=3) and sub.dunning_attempts == 2
    await world.memberships.update("cus_rec", sub.id, cancel_at_period_end=None, payment_method_id=good)
    await world.advance_to(sub.next_action_at)
    assert await world.memberships.run_due() == 1
    sub = await world.memberships.subscription("cus_rec", sub.id)
    assert sub.status is Status.ACTIVE and sub.open_invoice_id is None and sub.next_action_at == sub.current_period_end
    inv = (await world.memberships.invoices("cus_rec", sub.id, 1))[0]
    assert inv.status is InvoiceStatus.PAID and inv.attempts == 3 and inv.period_start == due
    failed = [e for t, e in await events(world.db, inv.id) if t == "invoice.payment_failed"]
    assert [(f["attempt"], f["code"]) for f in failed] == [(1, "card_declined"), (2, "card_declined")]
    assert await world.ledger_sums() == {"USD": 0}
    assert await world.balance("platform_revenue:USD") == 2 * 1200


async def test_a_trial_ending_on_a_card_that_needs_3ds_runs_dunning_then_past_due_then_canceled(
        world: World) -> None:
    plan = await world.plan(amount=500, trial_days=7)
    card = await world.add_card("cus_3ds", THREE_D_SECURE_CARD)
    sub = await world.memberships.subscribe("cus_3ds", plan.id, card)
    assert sub.status is Status.TRIALING and await world.benefits_for("cus_3ds") is not None
    assert await world.processor.authorizations() == 0  # a trial charges nothing until it ends
    statuses = []
    for _ in range(6):
        await world.advance_to(sub.next_action_at)
        assert await world.memberships.run_due() == 1
        sub = await world.memberships.subscription("cus_3ds", sub.id)
        statuses.append(sub.status)
    assert statuses == [Status.ACTIVE] * 4 + [Status.PAST_DUE, Status.CANCELED]
    assert sub.cancel_reason == "payment_failed" and sub.next_action_at is None
    assert await world.benefits_for("cus_3ds") is None
    inv = (await world.memberships.invoices("cus_3ds", sub.id, 10))[0]
    assert inv.status is InvoiceStatus.UNCOLLECTIBLE and inv.attempts == 5
    assert inv.last_error is not None and inv.last_error["code"] == "authentication_required"
    assert await world.balance("platform_revenue:USD") == 0
    kinds = await types_for_customer(world.db, "cus_3ds")
    assert kinds.count("invoice.payment_failed") == 5
    assert kinds[-2:] == ["invoice.uncollectible", "subscription.canceled"]


async def test_past_due_stops_benefits_and_paying_the_invoice_reactivates(world: World) -> None:
    plan = await world.plan(amount=500, trial_days=1)
    bad = await world.add_card("cus_pd", DECLINED_CARD)
    sub = await world.memberships.subscribe("cus_pd", plan.id, bad)
    for _ in range(5):
        await world.advance_to(sub.next_action_at)
        await world.memberships.run_due()
        sub = await world.memberships.subscription("cus_pd", sub.id)
    assert sub.status is Status.PAST_DUE and await world.benefits_for("cus_pd") is None
    assert sub.open_invoice_id is not None
    with pytest.raises(PaymentDeclined):
        await world.memberships.pay_invoice("cus_pd", sub.open_invoice_id, None)
    good = await world.add_card("cus_pd", OK_CARD)
    inv = await world.memberships.pay_invoice("cus_pd", sub.open_invoice_id, good)
    assert inv.status is InvoiceStatus.PAID
    sub = await world.memberships.subscription("cus_pd", sub.id)
    assert sub.status is Status.ACTIVE and sub.payment_method_id == good
    assert await world.benefits_for("cus_pd") is not None


async def test_cancel_now_refunds_the_unused_share_floored_and_the_ledger_balances(world: World) -> None:
    plan = await world.plan(amount=1000)
    card = await world.add_card("cus_cancel", OK_CARD)
    sub = await world.memberships.subscribe("cus_cancel", plan.id, card)
    world.clock.advance(10 * 86400 + 7)
    expected = model.unused_share(1000, sub.current_period_start, sub.current_period_end, world.clock.now())
    assert 0 < expected < 1000
    sub = await world.memberships.cancel("cus_cancel", sub.id, refund=True)
    assert sub.status is Status.CANCELED and sub.cancel_reason == "requested"
    inv = (await world.memberships.invoices("cus_cancel", sub.id, 1))[0]
    assert inv.amount_refunded == expected and inv.refund_id is not None
    assert await world.balance("platform_refunds:USD") == expected
    assert await world.ledger_sums() == {"USD": 0}
    assert await world.benefits_for("cus_cancel") is None
    await world.advance_to(sub.current_period_end)
    assert await world.memberships.run_due() == 0  # a canceled subscription never renews


async def test_cancel_at_period_end_ends_without_charging_again(world: World) -> None:
    plan = await world.plan(amount=1000)
    card = await world.add_card("cus_end", OK_CARD)
    sub = await world.memberships.subscribe("cus_end", plan.id, card)
    sub = await world.memberships.update("cus_end", sub.id, cancel_at_period_end=True, payment_method_id=None)
    assert sub.status is Status.ACTIVE and await world.benefits_for("cus_end") is not None
    await world.advance_to(sub.current_period_end)
    assert await world.memberships.run_due() == 1
    sub = await world.memberships.subscription("cus_end", sub.id)
    assert sub.status is Status.CANCELED and sub.cancel_reason == "period_end"
    assert await world.processor.authorizations() == 1
    # ended, the customer may subscribe again
    again = await world.memberships.subscribe("cus_end", plan.id, card)
    assert again.id != sub.id


async def test_two_workers_renewing_at_once_charge_each_period_once(world: World, redis, settings,
                                                                    database_url: str) -> None:
    plan = await world.plan(amount=700)
    subs = []
    for n in range(12):
        card = await world.add_card(f"cus_c{n}", OK_CARD)
        subs.append(await world.memberships.subscribe(f"cus_c{n}", plan.id, card))
    world.processor.latency = 0.005  # each charge takes a while: the workers overlap
    other_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        other = MembershipsService(other_pool, world.clock, make_payments(
            other_pool, redis, settings, world.processor, world.clock))
        for _ in range(2):
            await world.advance_to(max(s.current_period_end for s in subs))
            subs = [await world.memberships.subscription(None, s.id) for s in subs]
            await world.advance_to(max(s.next_action_at for s in subs if s.next_action_at))
            done = await asyncio.gather(world.memberships.run_due(limit=5), other.run_due(limit=5),
                                        world.memberships.run_due(limit=5), other.run_due(limit=5))
            assert sum(done) == 12
            subs = [await world.memberships.subscription(None, s.id) for s in subs]
    finally:
        await other_pool.close()
    invoices = await world.db.fetch("SELECT subscription_id, period_start, status FROM membership_invoices")
    assert len(invoices) == 12 * 3 and {r["status"] for r in invoices} == {"paid"}
    assert await world.processor.authorizations() == 12 * 3
    assert await world.balance("platform_revenue:USD") == 12 * 3 * 700
    assert await world.ledger_sums() == {"USD": 0}


async def test_a_period_has_one_invoice_whatever_inserts_it(world: World) -> None:
    plan = await world.plan()
    card = await world.add_card("cus_uni", OK_CARD)
    sub = await world.memberships.subscribe("cus_uni", plan.id, card)
    async with world.db.acquire() as conn:
        with pytest.raises(RuntimeError, match="has an invoice"):
            await world.memberships._new_invoice(conn, sub, plan)


async def test_a_renewal_whose_answer_was_lost_is_charged_once_when_the_job_tries_again(world: World) -> None:
    plan = await world.plan(amount=900)
    card = await world.add_card("cus_lost", OK_CARD)
    sub = await world.memberships.subscribe("cus_lost", plan.id, card)
    await world.advance_to(sub.current_period_end)
    world.processor.lose_responses = True  # the processor charges, its answer never arrives
    with pytest.raises(ProcessorUnavailable):
        await world.memberships.run_due()
    world.processor.lose_responses = False
    world.clock.advance(60)  # the circuit breaker's cooldown
    assert await world.memberships.run_due() == 1
    assert await world.processor.authorizations() == 2  # the first period's and this renewal's: not three
    invoices = await world.memberships.invoices("cus_lost", sub.id, 10)
    assert [i.status for i in invoices] == [InvoiceStatus.PAID, InvoiceStatus.PAID]
    assert await world.balance("platform_revenue:USD") == 2 * 900
    assert await world.ledger_sums() == {"USD": 0}


async def test_a_detached_card_is_a_failed_attempt_and_a_broken_subscription_holds_up_no_other(world: World) -> None:
    plan = await world.plan(amount=900)
    detached = await world.add_card("cus_gone", OK_CARD)
    gone = await world.memberships.subscribe("cus_gone", plan.id, detached)
    async with world.db.acquire() as conn:
        await payments_store.detach_payment_method(conn, detached, "cus_gone")
    broken = await world.memberships.subscribe("cus_broken", plan.id, await world.add_card("cus_broken", OK_CARD))
    fine = await world.memberships.subscribe("cus_fine", plan.id, await world.add_card("cus_fine", OK_CARD))
    start, end = model.period(broken.anchor, plan.interval, 2)
    async with world.db.acquire() as conn:  # a row in the way of the next invoice: this one cannot renew
        await conn.execute(
            """INSERT INTO membership_invoices (id, subscription_id, customer_id, period_index, period_start,
                                                period_end, currency, amount, status, created_at)
               VALUES ('in_blocker', $1, 'cus_broken', 2, $2, $3, 'USD', 900, 'void', $2)""", broken.id, start, end)
    await world.advance_to(max(gone.current_period_end, broken.current_period_end, fine.current_period_end))
    assert await world.memberships.run_due() == 2
    gone = await world.memberships.subscription(None, gone.id)
    assert gone.status is Status.ACTIVE and gone.dunning_attempts == 1 and gone.open_invoice_id is not None
    fine = await world.memberships.subscription(None, fine.id)
    assert fine.period_index == 2 and fine.open_invoice_id is None
    assert (await world.memberships.subscription(None, broken.id)).period_index == 1  # left as it was


async def test_one_trial_per_customer_cancel_and_subscribe_again_is_charged_at_once(world: World) -> None:
    plan = await world.plan(amount=800, trial_days=14)
    other_plan = await world.plan(amount=900, trial_days=30)
    card = await world.add_card("cus_twice", OK_CARD)
    first = await world.memberships.subscribe("cus_twice", plan.id, card)
    assert first.status is Status.TRIALING and first.trial_end is not None
    assert await world.processor.authorizations() == 0
    await world.memberships.cancel("cus_twice", first.id, refund=False)
    # again, on any plan with a trial: no second trial, the first period is charged now
    again = await world.memberships.subscribe("cus_twice", other_plan.id, card)
    assert (again.status, again.trial_end, again.period_index) == (Status.ACTIVE, None, 1)
    assert again.current_period_start == world.clock.now() and again.next_action_at == again.current_period_end
    invoices = await world.memberships.invoices("cus_twice", again.id, 10)
    assert [(i.status, i.amount.amount) for i in invoices] == [(InvoiceStatus.PAID, 900)]
    assert await world.processor.authorizations() == 1
    # a customer who never trialed still gets the plan's trial
    fresh = await world.memberships.subscribe("cus_fresh", plan.id, await world.add_card("cus_fresh", OK_CARD))
    assert fresh.status is Status.TRIALING and fresh.trial_end == world.clock.now() + timedelta(days=14)
    assert await world.processor.authorizations() == 1


async def test_a_subscribe_racing_a_trial_that_starts_and_ends_meanwhile_gets_no_second_trial(world: World) -> None:
    """Another transaction of the same customer takes the trial, and that subscription is canceled before it
    commits (so the one-live index no longer stops this one): the subscribe waiting on the trial's row
    finds it taken and is charged at once."""
    plan = await world.plan(amount=600, trial_days=7)
    card = await world.add_card("cus_race", OK_CARD)
    now = world.clock.now()
    async with world.db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        assert await store.claim_trial(conn, "cus_race", "sub_other", now)
        await conn.execute(
            """INSERT INTO membership_subscriptions (id, customer_id, plan_id, status, payment_method_id, anchor,
                   period_index, current_period_start, current_period_end, trial_end, canceled_at, created_at,
                   updated_at)
               VALUES ('sub_other', 'cus_race', $1, 'canceled', $2, $3, 0, $3, $3, $3, $3, $3, $3)""",
            plan.id, card, now)
        racing = asyncio.create_task(world.memberships.subscribe("cus_race", plan.id, card))
        for _ in range(500):  # until the subscribe waits on the customer's trial row
            if await world.db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND datname = current_database()"):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the subscribe never waited for the other transaction's trial")
        assert not racing.done()
        await tx.commit()
    sub = await racing
    assert (sub.status, sub.trial_end) == (Status.ACTIVE, None)
    assert await world.processor.authorizations() == 1
    assert await world.db.fetchval("SELECT subscription_id FROM membership_trials WHERE customer_id = 'cus_race'") \
        == "sub_other"


async def test_two_concurrent_first_subscribes_make_one_trial_and_one_409(world: World) -> None:
    plan = await world.plan(amount=600, trial_days=7)
    card = await world.add_card("cus_pair", OK_CARD)
    results = await asyncio.gather(*(world.memberships.subscribe("cus_pair", plan.id, card) for _ in range(2)),
                                   return_exceptions=True)
    subs = [r for r in results if not isinstance(r, BaseException)]
    assert len(subs) == 1 and subs[0].status is Status.TRIALING
    assert [type(r).__name__ for r in results if isinstance(r, BaseException)] == ["AlreadySubscribed"]
    assert await world.processor.authorizations() == 0
    assert await world.db.fetchval("SELECT count(*) FROM membership_trials WHERE customer_id = 'cus_pair'") == 1
