"""The foundation over HTTP: health, readiness, every error shape, auth roles, API keys."""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from kernel.http import OPERATOR, STAFF, endpoint, json_response
from kernel.ids import new_id


async def test_healthz_and_readyz_answer_when_servers_are_up(client) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"postgres": "ok", "redis": "ok", "consumers": "ok"}


async def test_unknown_route_is_404_resource_missing(client) -> None:
    resp = await client.get("/v1/does-not-exist")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "resource_missing"


async def test_wrong_method_is_405_with_allow_header(client) -> None:
    resp = await client.delete("/v1/auth/login")
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"]


async def test_malformed_json_is_400_invalid_json(client) -> None:
    resp = await client.post("/v1/auth/register", data=b"{not json")
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "invalid_json"
    assert set(body["error"]) >= {"code", "message", "param"}


async def test_schema_violation_is_422_with_field_path(client) -> None:
    resp = await client.post("/v1/auth/register", json={"email": "a@example.com", "password": 12345678})
    assert resp.status == 422
    err = (await resp.json())["error"]
    assert err["code"] == "validation_error"
    assert err["param"] == "password"


async def test_unknown_field_is_rejected_with_its_name(client) -> None:
    resp = await client.post("/v1/auth/login", json={"email": "a@example.com", "password": "x", "admin": True})
    assert resp.status == 422
    assert "admin" in (await resp.json())["error"]["message"]


async def test_body_over_limit_is_413(aiohttp_client, settings) -> None:
    from fooddispatch.app import create_app

    client = await aiohttp_client(create_app(settings.replace(max_body_bytes=2048)))
    resp = await client.post("/v1/auth/login", data=b"x" * 10_000)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"


async def test_register_then_login_gives_a_working_token(client) -> None:
    resp = await client.post("/v1/auth/register", json={"email": "Ana@Example.com", "password": "correct horse"})
    assert resp.status == 201
    resp = await client.post("/v1/auth/login", json={"email": "ana@example.com", "password": "correct horse"})
    assert resp.status == 200
    token = (await resp.json())["token"]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200
    assert (await me.json())["role"] == "customer"


async def test_wrong_password_is_401_and_duplicate_email_409(client) -> None:
    await client.post("/v1/auth/register", json={"email": "b@example.com", "password": "password1"})
    again = await client.post("/v1/auth/register", json={"email": "B@example.com", "password": "password2"})
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "email_taken"
    bad = await client.post("/v1/auth/login", json={"email": "b@example.com", "password": "nope-nope"})
    assert bad.status == 401
    assert (await bad.json())["error"]["code"] == "invalid_credentials"


async def test_missing_invalid_and_expired_tokens_are_401(client, settings) -> None:
    from fooddispatch.identity import Tokens
    from kernel.http import Principal

    assert (await client.get("/v1/me")).status == 401
    resp = await client.get("/v1/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "invalid_token"
    tokens = Tokens({"k1": settings.jwt_secret}, "k1", 3600)
    expired = tokens.issue(Principal("cus_x", "customer"), ttl_seconds=-10)
    resp = await client.get("/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "token_expired"
    forged = Tokens({"k1": "another-secret-0123456789abcdefghijk"}, "k1", 3600).issue(Principal("opr_x", "operator"))
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})).status == 401


async def test_wrong_role_is_403(client, make_principal) -> None:
    _, customer = await make_principal("customer")
    resp = await client.post("/v1/accounts", json={"role": "courier"}, headers=customer)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    _, operator = await make_principal(OPERATOR)
    resp = await client.post("/v1/accounts", json={"role": "courier", "name": "Kim"}, headers=operator)
    assert resp.status == 201


async def test_api_key_authenticates_as_its_tenant_and_stops_after_revocation(client, make_principal) -> None:
    tenant_a, tenant_b = new_id("ten"), new_id("ten")
    _, staff = await make_principal(STAFF, tenant_id=tenant_a)
    created = await client.post(f"/v1/tenants/{tenant_a}/api_keys", json={"name": "pos"}, headers=staff)
    assert created.status == 201
    key = await created.json()
    me = await client.get("/v1/me", headers={"X-Api-Key": key["key"]})
    assert me.status == 200
    assert (await me.json())["tenant_id"] == tenant_a
    other = await client.post(f"/v1/tenants/{tenant_b}/api_keys", json={"name": "x"}, headers=staff)
    assert other.status == 404  # another tenant is never revealed
    assert (await client.delete(f"/v1/api_keys/{key['id']}", headers=staff)).status == 204
    revoked = await client.get("/v1/me", headers={"Authorization": f"Bearer {key['key']}"})
    assert revoked.status == 401
    assert (await revoked.json())["error"]["code"] == "api_key_revoked"


async def test_unexpected_error_is_500_with_request_id_and_no_traceback(aiohttp_client, settings) -> None:
    from fooddispatch.app import create_app

    app = create_app(settings)

    @endpoint(roles=None)
    async def boom(request: web.Request) -> web.Response:
        raise ZeroDivisionError("secret internals")

    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    resp = await client.get("/boom")
    assert resp.status == 500
    body = await resp.json()
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["request_id"] == resp.headers["X-Request-Id"]
    assert "secret internals" not in await resp.text()
    assert "Traceback" not in await resp.text()


async def test_rate_limit_returns_429_with_retry_after(aiohttp_client, settings) -> None:
    from fooddispatch.app import create_app

    app = create_app(settings.replace(rate_limit_per_minute=60, rate_limit_burst=3))

    class Echo(msgspec.Struct):
        ok: bool

    @endpoint(roles=None, response=Echo)
    async def ping(request: web.Request) -> web.Response:
        return json_response(Echo(True))

    app.router.add_get("/v1/ping", ping)
    client = await aiohttp_client(app)
    statuses = []
    for _ in range(5):
        resp = await client.get("/v1/ping")
        statuses.append(resp.status)
        if resp.status == 200:
            assert int(resp.headers["RateLimit-Remaining"]) >= 0
            assert resp.headers["RateLimit-Limit"] == "3"
        else:
            assert int(resp.headers["Retry-After"]) >= 1
            assert (await resp.json())["error"]["code"] == "rate_limited"
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]


async def test_metrics_count_requests_by_route_template(client) -> None:
    await client.get("/healthz")
    await client.get("/v1/me")
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/me",status="401"' in text
    assert "outbox_lag_events" in text


async def test_tenant_limit_is_shared_by_all_principals_of_the_tenant(aiohttp_client, settings, make_principal):
    from fooddispatch.app import create_app

    client = await aiohttp_client(
        create_app(settings.replace(tenant_rate_limit_per_minute=6, tenant_rate_limit_burst=4))
    )
    _, first = await make_principal(STAFF, tenant_id="ten_busy")
    _, second = await make_principal(STAFF, tenant_id="ten_busy")
    _, elsewhere = await make_principal(STAFF, tenant_id="ten_quiet")
    statuses = [(await client.get("/v1/me", headers=first if i % 2 else second)).status for i in range(6)]
    assert statuses[:4] == [200] * 4
    assert statuses[4:] == [429, 429]
    assert (await client.get("/v1/me", headers=second)).status == 429
    assert (await client.get("/v1/me", headers=elsewhere)).status == 200


async def test_concurrent_requests_are_limited_exactly_when_checked_in_one_batch(aiohttp_client, settings) -> None:
    from fooddispatch.app import create_app
    from fooddispatch.ratelimit import RATE_LIMITER

    app = create_app(settings.replace(rate_limit_per_minute=60, rate_limit_burst=5))

    @endpoint(roles=None)
    async def ping(request: web.Request) -> web.Response:
        return json_response({"ok": True})

    app.router.add_get("/v1/ping", ping)
    client = await aiohttp_client(app)
    statuses = [r.status for r in await asyncio.gather(*(client.get("/v1/ping") for _ in range(12)))]
    assert sorted(statuses) == [200] * 5 + [429] * 7
    batches = app[RATE_LIMITER]._batches
    assert batches.items == 12 and batches.batches < 12  # they shared round trips
