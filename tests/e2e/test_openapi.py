"""The OpenAPI document is valid 3.1 and lists every registered route."""

from __future__ import annotations

from openapi_spec_validator import validate

from fooddispatch.openapi import _operations


async def test_openapi_document_is_valid_and_covers_every_route(client, app) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    routes = {(path, method) for path, method, _spec, _h in _operations(app)}
    documented = {(path, method) for path, methods in spec["paths"].items() for method in methods}
    assert routes and routes <= documented


async def test_every_api_route_declares_its_endpoint_options(app) -> None:
    undeclared = [
        (path, method) for path, method, spec, _h in _operations(app)
        if path.startswith("/v1/") and spec is None
    ]
    assert undeclared == []


async def test_openapi_carries_request_schemas_and_idempotency_headers(client) -> None:
    spec = await (await client.get("/openapi.json")).json()
    register = spec["paths"]["/v1/auth/register"]["post"]
    ref = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(schema["required"]) == {"email", "password"}
    assert "422" in register["responses"]
    for methods in spec["paths"].values():
        for op in methods.values():
            if op.get("x-idempotent"):
                assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])


async def test_docs_page_is_served_without_external_assets(client) -> None:
    resp = await client.get("/docs")
    assert resp.status == 200
    html = await resp.text()
    assert "/openapi.json" in html
    assert "http://" not in html and "https://" not in html
