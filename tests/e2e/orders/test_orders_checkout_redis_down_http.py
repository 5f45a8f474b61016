"""Checkout needs only PostgreSQL: with Redis down (a server this test starts and kills) a quote
and an order still go through (the surge reader answers level 1), and the fraud decision says
the velocity windows were not checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from orders_helpers import place

from fooddispatch.config import Settings
from tests.outage_servers import OwnRedis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    rd = OwnRedis(tmp_path)
    rd.start()
    yield rd
    rd.kill()


@pytest.fixture
def settings(settings: Settings, own_redis: OwnRedis) -> Settings:
    return settings.replace(redis_url=own_redis.url)


async def test_checkout_goes_through_with_redis_down(client, shop_factory, customer_factory, own_redis, db) -> None:
    shop = await shop_factory()
    _, customer, pm = await customer_factory()
    own_redis.kill()
    order = await place(client, customer, pm, shop.store_id, key="redis-down")
    assert order["status"] == "placed"
    reasons = await db.fetchval("SELECT reasons FROM fraud_decisions ORDER BY id DESC LIMIT 1")
    assert "velocity_unchecked" in str(reasons)
