"""Idempotency-Key on a write route: replay, reuse with another body, in-progress, scoping."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from aiohttp import web

from fooddispatch.app import create_app
from kernel.errors import Conflict
from kernel.http import CUSTOMER, endpoint, idempotency_key, json_response
from kernel.ids import new_id


class Tip(msgspec.Struct, forbid_unknown_fields=True):
    amount: int


class TipCreated(msgspec.Struct):
    id: str
    amount: int
    key: str


@pytest.fixture
async def tip_client(aiohttp_client, settings):
    app = create_app(settings)
    calls: list[int] = []
    gate = asyncio.Event()
    gate.set()
    entered = asyncio.Event()

    @endpoint(roles={CUSTOMER}, idempotent=True, body=Tip, response=TipCreated, status=201)
    async def create_tip(request: web.Request) -> web.Response:
        from kernel.http import decode_body

        body = await decode_body(request, Tip)
        calls.append(body.amount)
        entered.set()
        await gate.wait()
        if body.amount == 13:
            raise Conflict("unlucky amount", code="unlucky")
        return json_response(TipCreated(new_id("tip"), body.amount, idempotency_key(request) or ""), status=201)

    app.router.add_post("/v1/tips", create_tip)
    client = await aiohttp_client(app)
    return client, calls, gate, entered


async def test_replay_with_same_key_returns_identical_bytes_without_running_again(tip_client, make_principal):
    client, calls, _, _ = tip_client
    _, headers = await make_principal(CUSTOMER)
    headers = {**headers, "Idempotency-Key": "k-1"}
    first = await client.post("/v1/tips", json={"amount": 5}, headers=headers)
    second = await client.post("/v1/tips", json={"amount": 5}, headers=headers)
    assert first.status == second.status == 201
    assert await first.read() == await second.read()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert calls == [5]


async def test_missing_key_is_400(tip_client, make_principal):
    client, calls, _, _ = tip_client
    _, headers = await make_principal(CUSTOMER)
    resp = await client.post("/v1/tips", json={"amount": 5}, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "idempotency_key_missing"
    assert calls == []


async def test_same_key_with_different_body_is_400_reused(tip_client, make_principal):
    client, calls, _, _ = tip_client
    _, headers = await make_principal(CUSTOMER)
    headers = {**headers, "Idempotency-Key": "k-2"}
    assert (await client.post("/v1/tips", json={"amount": 5}, headers=headers)).status == 201
    resp = await client.post("/v1/tips", json={"amount": 6}, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "idempotency_key_reused"
    assert calls == [5]


async def test_second_request_while_first_runs_is_409_in_progress(tip_client, make_principal):
    client, calls, gate, entered = tip_client
    _, headers = await make_principal(CUSTOMER)
    headers = {**headers, "Idempotency-Key": "k-3"}
    gate.clear()
    first = asyncio.create_task(client.post("/v1/tips", json={"amount": 7}, headers=headers))
    await entered.wait()
    second = await client.post("/v1/tips", json={"amount": 7}, headers=headers)
    assert second.status == 409
    assert (await second.json())["error"]["code"] == "idempotency_in_progress"
    gate.set()
    assert (await first).status == 201
    assert calls == [7]


async def test_keys_are_scoped_per_principal(tip_client, make_principal):
    client, calls, _, _ = tip_client
    _, alice = await make_principal(CUSTOMER)
    _, bob = await make_principal(CUSTOMER)
    a = await client.post("/v1/tips", json={"amount": 1}, headers={**alice, "Idempotency-Key": "same"})
    b = await client.post("/v1/tips", json={"amount": 1}, headers={**bob, "Idempotency-Key": "same"})
    assert a.status == b.status == 201
    assert (await a.json())["id"] != (await b.json())["id"]
    assert calls == [1, 1]


async def test_domain_error_outcome_is_replayed_too(tip_client, make_principal):
    client, calls, _, _ = tip_client
    _, headers = await make_principal(CUSTOMER)
    headers = {**headers, "Idempotency-Key": "k-4"}
    first = await client.post("/v1/tips", json={"amount": 13}, headers=headers)
    second = await client.post("/v1/tips", json={"amount": 13}, headers=headers)
    assert first.status == second.status == 409
    assert await first.read() == await second.read()
    assert calls == [13]


async def test_a_burst_of_the_same_key_runs_the_handler_once(tip_client, make_principal):
    client, calls, _, _ = tip_client
    _, headers = await make_principal(CUSTOMER)
    same = {**headers, "Idempotency-Key": "burst"}
    others = [{**headers, "Idempotency-Key": f"other-{i}"} for i in range(6)]
    responses = await asyncio.gather(
        *(client.post("/v1/tips", json={"amount": 7}, headers=same) for _ in range(8)),
        *(client.post("/v1/tips", json={"amount": 8}, headers=h) for h in others),
    )
    burst, rest = responses[:8], responses[8:]
    assert sorted(calls) == [7] + [8] * 6  # the burst ran once, every other key once
    assert all(r.status == 201 for r in rest)
    created = [r for r in burst if r.status == 201]
    assert created and all(r.status in (201, 409) for r in burst)
    assert len({await r.read() for r in created}) == 1  # replays carry the first run's bytes
    for r in burst:
        if r.status == 409:
            assert (await r.json())["error"]["code"] == "idempotency_in_progress"
