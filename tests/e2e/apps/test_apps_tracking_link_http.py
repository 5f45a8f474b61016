"""Tracking links over HTTP: a link opens its own order's view (JSON and live socket) and nothing else, tells
nothing beyond that order, is cached for pollers, expires and can be revoked; the pages are served with
their own assets and a strict content policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from apps_helpers import build_world, eventually, ok, place_order

from dispatch.event_types import DispatchAssigned
from fooddispatch.app import create_app
from fooddispatch.apps.web import LINK_GONE, LINK_RECHECK
from fooddispatch.config import Settings
from kernel.outbox import announce

STATIC = Path(__file__).resolve().parents[3] / "fooddispatch" / "apps" / "static"


@pytest.fixture
def app(settings: Settings) -> web.Application:
    app = create_app(settings.replace(tracking_link_ttl_seconds=3),
                     components=("catalog", "payments", "tracking", "orders", "apps"))
    app[LINK_RECHECK] = 0.2
    return app


async def _link(client, order_id: str, headers: dict) -> dict:
    return await ok(await client.post(f"/v1/orders/{order_id}/tracking_links", headers=headers), 201)


async def _view(client, order_id: str, token: str, **headers: str):
    return await client.get(f"/v1/orders/{order_id}/tracking", headers={"X-Tracking-Token": token, **headers})


async def test_a_link_shows_its_order_and_nothing_else(client, make_principal, db) -> None:
    world = await build_world(client, make_principal)
    order = await place_order(client, world, key="a")
    other = await place_order(client, world, key="b", note=None)
    link = await _link(client, order["id"], world.customer)
    assert link["url"] == f"/t/{link['token']}" and link["order_id"] == order["id"]

    resp = await _view(client, order["id"], link["token"])
    view = await ok(resp)
    assert resp.headers["Cache-Control"] == "private, max-age=2" and resp.headers["ETag"]
    assert view["restaurant"]["name"] == "Burger Bros Mitte" and view["delivery_note"] == "Ring twice, 3rd floor"
    assert [s["status"] for s in view["timeline"]] == ["placed"] and view["courier"] is None
    assert {i["name"]: i["quantity"] for i in view["items"]} == {"Burger": 2, "Fries": 1}
    assert view["eta"] is not None
    assert set(view) == {"order_id", "status", "restaurant", "dropoff", "delivery_note", "items", "timeline",
                         "placed_at", "eta", "eta_source", "courier"}
    text = json.dumps(view)
    for secret in (order["customer_id"], "Torstr", "Carla", world.tenant_id, "total", "amount"):
        assert secret not in text
    # Polling again while nothing changed: 304.
    again = await _view(client, order["id"], link["token"], **{"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304

    # The link opens its own order only; a forged one opens nothing.
    wrong = await _view(client, other["id"], link["token"])
    assert wrong.status == 404 and (await wrong.json())["error"] == {
        "code": "resource_missing", "message": "no such tracking link", "param": "token"}
    body, sig = link["token"].split(".")
    forged = await _view(client, order["id"], f"{body}.{sig[:-2]}AA")
    assert forged.status == 404
    assert (await client.get(f"/v1/orders/{order['id']}/tracking")).status == 401
    # The customer's own bearer works too; another customer sees nothing and gets no link.
    assert (await client.get(f"/v1/orders/{order['id']}/tracking", headers=world.customer)).status == 200
    _, stranger = await make_principal("customer")
    assert (await client.get(f"/v1/orders/{order['id']}/tracking", headers=stranger)).status == 404
    assert (await client.post(f"/v1/orders/{order['id']}/tracking_links", headers=stranger)).status == 404

    # The live socket: the order's status, without account ids.
    async with client.ws_connect(f"/v1/orders/{order['id']}/tracking/ws?token={link['token']}") as ws:
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT
        frame = json.loads(msg.data)
        assert frame["type"] == "status" and frame["status"] == "placed" and "courier_id" not in frame
        # A courier is assigned: the customer's own socket names the courier's account; the link's does not.
        async with db.acquire() as conn, conn.transaction():
            await announce(conn, DispatchAssigned(offer_id="ofr_1", courier_id="cou_secret",
                                                  order_ids=(order["id"],), at=datetime.now(UTC)), "ofr_1")
        while True:
            frame = json.loads((await ws.receive(timeout=10)).data)
            if frame.get("event") == "dispatch.assigned":
                break
        assert "cou_secret" not in json.dumps(frame) and frame["version"] >= 2
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/v1/orders/{other['id']}/tracking/ws?token={link['token']}")
    assert refused.value.status == 404


async def test_a_link_expires_and_can_be_revoked(client, make_principal) -> None:
    world = await build_world(client, make_principal)
    order = await place_order(client, world)
    first, second = await _link(client, order["id"], world.customer), await _link(client, order["id"], world.customer)
    page = await client.ws_connect(f"/v1/orders/{order['id']}/tracking/ws?token={first['token']}")
    await ok(await client.delete(f"/v1/orders/{order['id']}/tracking_links/{first['id']}", headers=world.customer),
             204)
    revoked = await _view(client, order["id"], first["token"])
    assert revoked.status == 410 and (await revoked.json())["error"]["code"] == "tracking_link_revoked"
    while (msg := await page.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
        pass  # frames sent before the revocation
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == LINK_GONE  # an open page stops, too
    await page.close()
    assert (await _view(client, order["id"], second["token"])).status == 200
    await ok(await client.delete(f"/v1/orders/{order['id']}/tracking_links/*", headers=world.customer), 204)
    nope = await client.delete(f"/v1/orders/{order['id']}/tracking_links/nope", headers=world.customer)
    assert nope.status == 404 and (await nope.json())["error"]["param"] == "link_id"
    assert (await _view(client, order["id"], second["token"])).status == 410
    third = await _link(client, order["id"], world.customer)  # issued after "revoke all": it works
    assert (await _view(client, order["id"], third["token"])).status == 200

    async def expired() -> bool:
        resp = await _view(client, order["id"], third["token"])
        return resp.status == 410 and (await resp.json())["error"]["code"] == "tracking_link_expired"

    await eventually(expired, within=20.0, every=0.5)  # the app's links live 3 s


async def test_the_pages_are_served_with_their_assets_and_a_strict_policy(client, make_principal) -> None:
    world = await build_world(client, make_principal)
    order = await place_order(client, world)
    link = await _link(client, order["id"], world.customer)
    page = await client.get(link["url"])
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    for path in ("/tablet", "/courier"):
        assert (await client.get(path)).status == 200
    worker = await client.get("/courier/sw.js")
    assert worker.status == 200 and worker.headers["Service-Worker-Allowed"] == "/courier"
    manifest = await ok(await client.get("/courier/manifest.webmanifest"))
    assert manifest["start_url"] == "/courier" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        resp = await client.get(icon["src"])
        assert resp.status == 200 and (await resp.read())[:8] == b"\x89PNG\r\n\x1a\n"
    for asset in ("/assets/vendor/leaflet/leaflet.js", "/assets/vendor/leaflet/leaflet.css",
                  "/assets/vendor/leaflet/LICENSE", "/assets/apps/map.js"):
        assert (await client.get(asset)).status == 200, asset
    assert (await ok(await client.get("/v1/maps/config"))) == {"tile_url": None, "attribution": None}
    # No page loads anything from another host (no CDN): every src and href is our own.
    for html in STATIC.glob("*/index.html"):
        text = html.read_text()
        assert "http://" not in text and "https://" not in text, html


async def test_a_configured_tile_server_is_named_in_the_maps_config_and_the_policy(
        aiohttp_client, settings: Settings) -> None:
    tiled = settings.replace(map_tile_url="https://{s}.tile.example.org/{z}/{x}/{y}.png", map_attribution="© Example")
    client = await aiohttp_client(create_app(tiled, components=("catalog", "apps")))
    config = await ok(await client.get("/v1/maps/config"))
    assert config == {"tile_url": "https://{s}.tile.example.org/{z}/{x}/{y}.png", "attribution": "© Example"}
    policy = (await client.get("/tablet")).headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://*.tile.example.org;" in policy
