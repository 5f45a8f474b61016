"""The test-mode processor's records in PostgreSQL outlive the processor object that wrote them, as a
real processor's outlive our process: two processor objects on two pools (two app processes, or one
before and after a restart) see the same charges, answer a retried idempotency key the same way, and
refuse what they do not know."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg
import pytest

from kernel.money import Money
from payments.processor import CardForProcessor, ProcessorRefusedError, TestModeProcessor
from payments.processor_store import PostgresChargeBook

CARD = CardForProcessor("4242424242424242", 12, 2034)
DAY = date(2026, 12, 7)
EUR = Money(2500, "EUR")


@pytest.fixture
async def two_processors(database_url: str):
    pools = [await asyncpg.create_pool(database_url, min_size=1, max_size=2) for _ in range(2)]
    yield [TestModeProcessor(PostgresChargeBook(pool), today=lambda: DAY) for pool in pools]
    for pool in pools:
        await pool.close()


async def test_a_second_processor_object_knows_the_first_ones_charges_and_keys(two_processors) -> None:
    before, after = two_processors
    held = await before.authorize(CARD, EUR, "auth:cus_1:k1")
    assert held.outcome == "authorized"
    assert await after.authorize(CARD, EUR, "auth:cus_1:k1") == held  # the key's first answer, no second hold
    assert await after.retrieve("auth:cus_1:k1") == held
    captured = await after.capture(held.charge_id, Money(2000, "EUR"), "pi_1:capture")
    assert await before.capture(held.charge_id, Money(2000, "EUR"), "pi_1:capture") == captured
    refunded = await before.refund(held.charge_id, Money(500, "EUR"), "refund:pi_1:r1")
    assert await after.refund(held.charge_id, Money(500, "EUR"), "refund:pi_1:r1") == refunded
    charge = await after.charge(held.charge_id)
    assert charge is not None and (charge.status, charge.captured, charge.refunded) == ("captured", 2000, 500)
    assert [(line.ref, line.type, line.amount.amount) for line in await after.settlement_report(DAY)] == [
        (captured, "capture", 2000), (refunded, "refund", 500)]
    assert await before.authorizations() == 1


async def test_three_d_secure_started_before_a_restart_completes_after_it(two_processors) -> None:
    before, after = two_processors
    pending = await before.authorize(CardForProcessor("4000002500003155", 12, 2034), EUR, "auth:cus_1:3ds")
    assert pending.outcome == "requires_action" and pending.next_action is not None
    done = await after.complete_authentication(pending.charge_id, True)
    assert (done.outcome, done.next_action) == ("authorized", None)
    assert (await before.retrieve("auth:cus_1:3ds")) == done


async def test_twin_calls_from_two_processes_capture_once(two_processors) -> None:
    a, b = two_processors
    held = await a.authorize(CARD, EUR, "auth:cus_2:k1")
    refs = await asyncio.gather(a.capture(held.charge_id, EUR, "pi_2:capture"),
                                b.capture(held.charge_id, EUR, "pi_2:capture"))
    assert refs[0] == refs[1]
    assert len(await a.settlement_report(DAY)) == 1
    twins = await asyncio.gather(a.authorize(CARD, EUR, "auth:cus_2:k2"), b.authorize(CARD, EUR, "auth:cus_2:k2"))
    assert twins[0] == twins[1] and await a.authorizations() == 2


@pytest.mark.parametrize("call,code", [
    (lambda p: p.capture("ch_never_made", EUR, "x:capture"), "resource_missing"),
    (lambda p: p.refund("ch_never_made", EUR, "x:refund"), "resource_missing"),
    (lambda p: p.void("ch_never_made", "x:void"), "resource_missing"),
    (lambda p: p.complete_authentication("ch_never_made", True), "resource_missing"),
])
async def test_a_charge_it_does_not_know_is_refused_not_a_crash(two_processors, call, code) -> None:
    with pytest.raises(ProcessorRefusedError) as refused:
        await call(two_processors[0])
    assert refused.value.code == code


async def test_what_a_charge_cannot_do_is_refused_with_a_code(two_processors) -> None:
    p = two_processors[0]
    held = await p.authorize(CARD, EUR, "auth:cus_3:k1")
    with pytest.raises(ProcessorRefusedError) as early:
        await p.refund(held.charge_id, Money(1, "EUR"), "r0")
    assert early.value.code == "charge_not_refundable"
    with pytest.raises(ProcessorRefusedError) as too_much:
        await p.capture(held.charge_id, Money(2501, "EUR"), "c0")
    assert too_much.value.code == "amount_too_large"
    await p.capture(held.charge_id, EUR, "c1")
    with pytest.raises(ProcessorRefusedError) as again:
        await p.capture(held.charge_id, EUR, "c2")  # another key: a second capture, not a replay
    assert again.value.code == "charge_not_capturable"
    with pytest.raises(ProcessorRefusedError) as over:
        await p.refund(held.charge_id, Money(2501, "EUR"), "r1")
    assert over.value.code == "amount_too_large"
    charge = await p.charge(held.charge_id)
    assert charge is not None and (charge.captured, charge.refunded) == (2500, 0)
