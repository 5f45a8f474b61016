"""Fixtures for payments against real PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from kernel.clock import SystemClock
from payments import PaymentsService
from payments.live import FraudScreen
from payments.model import CardInput
from payments.processor import CircuitBreaker, ResilientProcessor, TestModeProcessor
from payments.vault import Vault


@pytest.fixture
def test_processor() -> TestModeProcessor:
    return TestModeProcessor()


@pytest.fixture
def payments(db, redis, settings, test_processor: TestModeProcessor) -> PaymentsService:
    clock = SystemClock()
    processor = ResilientProcessor(test_processor, CircuitBreaker(clock.monotonic, threshold=3, cooldown=0.05),
                                   timeout=1.0, retries=1, backoff=0.001)
    return PaymentsService(db, vault=Vault(settings.vault_key), processor=processor,
                           fraud=FraudScreen(redis, settings.redis_prefix, clock), clock=clock)


@pytest.fixture
def add_card(payments: PaymentsService):
    async def add(customer_id: str, number: str = "4242424242424242") -> str:
        cvc = "1234" if number.startswith(("34", "37")) else "123"
        row = await payments.add_card(customer_id, CardInput(number, 12, 2034, cvc), "Test Holder")
        return str(row["id"])

    return add


