"""Fixtures for the orders e2e tests; helpers live in orders_helpers.py (a unique module name)."""

from __future__ import annotations

import pytest
from orders_helpers import (
    VISA_OK,
    Shop,
    make_customer,
    make_shop,
)


@pytest.fixture
def app(settings):
    """Only the packages orders talks to: keeps these tests independent of other components' loops."""
    from fooddispatch.app import create_app

    return create_app(settings, components=("catalog", "payments", "orders"))


@pytest.fixture
def shop_factory(client, make_principal):
    async def build(**kw) -> Shop:
        return await make_shop(client, make_principal, **kw)
    return build


@pytest.fixture
def customer_factory(client, make_principal):
    async def build(card: str = VISA_OK) -> tuple[str, dict, str]:
        return await make_customer(client, make_principal, card)
    return build
