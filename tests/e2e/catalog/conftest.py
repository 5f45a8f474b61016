"""The catalog's e2e tests run the real app with only the catalog component installed: they need no
other package's routes or background loops, and stopping those loops is not what these tests test."""

from __future__ import annotations

import pytest
from aiohttp import web

from fooddispatch.app import create_app
from fooddispatch.config import Settings

CATALOG_ONLY = ("catalog",)


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings, components=CATALOG_ONLY)
