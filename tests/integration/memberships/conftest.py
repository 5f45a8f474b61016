"""Fixtures for memberships against real PostgreSQL and Redis, on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from memberships_world import OK_CARD, World, make_payments

from kernel.clock import ManualClock
from memberships.service import MembershipsService
from payments.model import CardInput
from payments.processor import TestModeProcessor


@pytest.fixture
def world(db, redis, settings) -> World:
    clock = ManualClock(datetime(2027, 1, 31, 9, 0, tzinfo=UTC))
    processor = TestModeProcessor(today=lambda: clock.now().date())
    payments = make_payments(db, redis, settings, processor, clock)

    async def add_card(customer_id: str, number: str = OK_CARD) -> str:
        row = await payments.add_card(customer_id, CardInput(number, 12, 2034, "123"), "Test Holder")
        return str(row["id"])

    return World(clock, processor, payments, MembershipsService(db, clock, payments), db, add_card)
