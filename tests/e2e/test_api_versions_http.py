"""Dated API versions (fooddispatch/versions.py): an API key keeps the version it was made under, a
`FoodDispatch-Version` header chooses another, an unknown one is 400 `api_version_unknown`, every
answer says its version, and the changelog is generated from the one table of versions.

The one shape change so far: 2026-12-07 added `has_more` to order lists; 2026-11-01 has no such field."""

from __future__ import annotations

from edge_world import World, build_world

from fooddispatch.versions import CURRENT, HEADER, KNOWN

OLD, NEW = "2026-11-01", "2026-12-07"


async def _key(client, world: World, name: str) -> dict:
    resp = await client.post(f"/v1/tenants/{world.ids['tenant_id']}/api_keys", headers=world.headers["staff"],
                             json={"name": name})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _orders(client, world: World, headers: dict[str, str]) -> tuple[str | None, dict]:
    resp = await client.get(f"/v1/stores/{world.ids['store_id']}/orders", headers=headers, params={"limit": "1"})
    assert resp.status == 200, await resp.text()
    return resp.headers.get(HEADER), await resp.json()


async def test_an_old_key_keeps_its_versions_shape_and_a_new_key_gets_the_new_one(client, make_principal, db) -> None:
    assert (OLD, NEW) == KNOWN[:2] and CURRENT == NEW
    world = await build_world(client, make_principal)
    new_key, old_key = await _key(client, world, "new pos"), await _key(client, world, "old pos")
    assert new_key["api_version"] == NEW  # pinned to the version current when it was made
    # A key made while 2026-11-01 was current (as every key made before versions existed is, by the migration).
    await db.execute("UPDATE api_keys SET api_version = $1 WHERE id = $2", OLD, old_key["id"])
    new, old = {"X-Api-Key": new_key["key"]}, {"X-Api-Key": old_key["key"]}

    version, page = await _orders(client, world, new)
    assert version == NEW and page["has_more"] is False and page["next_cursor"] is None and len(page["items"]) == 1
    version, old_page = await _orders(client, world, old)
    assert version == OLD and "has_more" not in old_page
    assert old_page == {k: v for k, v in page.items() if k != "has_more"}  # only the versioned field differs

    # The header overrides the pin, both ways; a bearer token without one gets the current version.
    assert await _orders(client, world, {**old, HEADER: NEW}) == (NEW, page)
    assert await _orders(client, world, {**new, HEADER: OLD}) == (OLD, old_page)
    assert await _orders(client, world, world.headers["staff"]) == (NEW, page)
    assert await _orders(client, world, {**world.headers["staff"], HEADER: OLD}) == (OLD, old_page)


async def test_has_more_is_true_when_a_page_follows(client, make_principal) -> None:
    world = await build_world(client, make_principal)
    customer = world.headers["customer"]
    quote = await (await client.post("/v1/quotes", headers=customer, json={
        "store_id": world.ids["store_id"], "dropoff": {"lat": 52.53, "lng": 13.41}, "address": "Torstr. 1",
        "lines": [{"item_id": "itm_fries", "quantity": 1}]})).json()
    placed = await client.post("/v1/orders", headers={**customer, "Idempotency-Key": "second"},
                               json={"quote_id": quote["id"], "payment_method_id": world.ids["payment_method_id"]})
    assert placed.status == 201, await placed.text()
    _, page = await _orders(client, world, world.headers["staff"])
    assert page["has_more"] is True and page["next_cursor"] == page["items"][0]["id"]
    _, old_page = await _orders(client, world, {**world.headers["staff"], HEADER: OLD})
    assert "has_more" not in old_page and old_page["next_cursor"] == page["next_cursor"]


async def test_an_unknown_version_is_refused_naming_the_known_ones(client, make_principal) -> None:
    world = await build_world(client, make_principal)
    for unknown in ("2027-01-01", "latest", ""):
        resp = await client.get("/v1/me", headers={**world.headers["staff"], HEADER: unknown})
        assert resp.status == 400
        error = (await resp.json())["error"]
        assert (error["code"], error["param"], error["known_versions"]) == ("api_version_unknown", HEADER, list(KNOWN))
        assert all(v in error["message"] for v in KNOWN)
    resp = await client.get("/v1/me", headers={**world.headers["staff"], HEADER: OLD})
    assert resp.status == 200 and resp.headers[HEADER] == OLD
    missing = await client.get("/v1/orders/ord_01J0000000000000000000000Z", headers=world.headers["customer"])
    assert missing.status == 404 and missing.headers[HEADER] == NEW  # errors say their version too


async def test_the_changelog_and_the_openapi_document_come_from_the_one_table(client) -> None:
    log = await (await client.get("/v1/changelog")).json()
    assert log["current"] == CURRENT and log["header"] == HEADER
    assert [v["version"] for v in log["versions"]] == list(reversed(KNOWN))
    newest = log["versions"][0]
    assert [c["affects"] for c in newest["changes"]] == [["GET /v1/orders", "GET /v1/stores/{store_id}/orders"],
                                                         ["GET /v1/wallets/me/transactions",
                                                          "GET /v1/wallets/{owner}/transactions"]]
    assert "has_more" in newest["changes"][0]["description"]
    doc = await (await client.get("/openapi.json")).json()
    description = doc["info"]["description"]
    assert "## API versions" in description and all(f"**{v}**" in description for v in KNOWN)
    assert newest["changes"][0]["description"] in description
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            header = [p for p in op["parameters"] if p["name"] == HEADER]
            assert header and header[0]["schema"]["enum"] == list(KNOWN), (method, path)
