"""Fixtures for the live tracking e2e tests: the real app with short tracking timeouts
and couriers with tokens (helpers are in tracking_helpers.py)."""

from __future__ import annotations

import pytest
from aiohttp import web
from tracking_helpers import tracking_app

from fooddispatch.config import Settings


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return tracking_app(settings)


@pytest.fixture
def make_courier(make_principal):
    async def make(name: str = "Ada Lovelace") -> tuple[str, dict[str, str]]:
        who, headers = await make_principal("courier", name=name)
        return who.account_id, headers

    return make
