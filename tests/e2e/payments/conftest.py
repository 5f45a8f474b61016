"""Helpers for payments over HTTP."""

from __future__ import annotations

import itertools

import pytest

_keys = itertools.count(1)


def key_headers(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or f"k-{next(_keys)}"}


@pytest.fixture
def add_card(client):
    async def add(headers: dict[str, str], number: str = "4242424242424242") -> str:
        resp = await client.post("/v1/payment_methods", headers=key_headers(headers), json={
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            "billing_details": {"name": "Ana Test"}})
        assert resp.status == 200, await resp.text()
        return (await resp.json())["id"]

    return add


@pytest.fixture
def pay(client):
    async def create(headers: dict[str, str], pm: str, amount: int = 2500, key: str | None = None, **extra):
        return await client.post("/v1/payment_intents", headers=key_headers(headers, key), json={
            "amount": amount, "currency": "EUR", "payment_method": pm, "confirm": True, **extra})

    return create


@pytest.fixture
def manual_resolver(monkeypatch):
    """The app's own resolver loop leaves `processing` intents alone, so a test that drives
    recovery by hand is the only one to resolve them. (Otherwise, on a loaded machine where
    the test outlives the loop's interval, the loop can settle the intent first, and the
    test's own `resolve_processing()` finds nothing left.)"""
    from fooddispatch.components import payments as component

    monkeypatch.setattr(component, "RESOLVE_EVERY_SECONDS", 3600.0)


