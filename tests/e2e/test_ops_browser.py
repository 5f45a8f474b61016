"""A real browser on the ops console: headless Chromium (Debian's package, driven by Playwright).

1. It opens /ops while a small demo runs, sees couriers drawn (on a Leaflet map) and the KPIs change,
   survives a reload, keeps a drill-down panel in view beside a long list, and saves a screenshot
   to .ci/artifacts/ops.png.
2. On a city the test builds in-process (time read at x600, so orders are late in seconds) an operator
   sees the late-order alert, searches, hovers a courier, assigns and reassigns an order by hand,
   refunds (after a confirmation) and cancels only what can be cancelled, pauses a store, and a
   refused token asks for another instead of reconnecting for ever.

CI installs both (see .ci/run); on a developer machine without them the tests are skipped and say why."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from fooddispatch.app import create_app
from fooddispatch.config import Settings

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT = 30_000  # ms: generous, for a loaded machine; a passing run waits far less


def _chromium() -> str:
    found = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if found is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    return found


def data_dir(tmp_path: Path) -> str:
    """A fresh folder outside pytest's tmp tree: the embedded PostgreSQL runs as its own user,
    which cannot enter pytest's private base folder."""
    del tmp_path
    return tempfile.mkdtemp(prefix="fooddispatch-demo-")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(150)
def test_ops_console_draws_couriers_and_its_kpis_move(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[test]')")
    chromium = _chromium()
    env = {**os.environ, "FOODDISPATCH_DATA_DIR": data_dir(tmp_path), "FOODDISPATCH_LOG_JSON": "true"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    log = (tmp_path / "demo.out").open("w+")
    demo = subprocess.Popen(
        [sys.executable, "-m", "fooddispatch", "demo", "--headless", "--minutes", "1.5", "--speed", "20", "--seed",
         "2", "--restaurants", "6", "--couriers", "10", "--customers", "30", "--port", str(free_port())],
        env=env, stdout=log, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            assert demo.poll() is None, Path(log.name).read_text()[-2000:]
            found = re.search(r"(http://\S+/ops\?token=\S+)", Path(log.name).read_text())
            url = found.group(1) if found else None
            time.sleep(0.3)
        assert url, "the demo never printed the ops console URL"
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=ARGS)
            # Short enough that the orders list outgrows the side panel.
            page = browser.new_page(viewport={"width": 1400, "height": 600})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            assert "token=" not in page.url  # the token left the address bar; the tab keeps it
            page.wait_for_function("window.__ops && window.__ops.couriersDrawn > 0", timeout=45_000)
            first = page.evaluate("JSON.stringify(window.__ops.snap.kpis)")
            page.wait_for_function(f"JSON.stringify(window.__ops.snap.kpis) !== {first!r}", timeout=30_000)
            page.wait_for_function("window.__ops.snap.kpis.open_orders + window.__ops.snap.kpis.delivered > 0",
                                   timeout=30_000)
            assert page.locator("#kpi-couriers").inner_text() != "–"
            assert page.locator("#scale").inner_text() == "simulated time ×20"  # KPIs read at the demo's speed
            # A reload keeps the token for the tab and goes live again.
            page.reload()
            page.wait_for_function("window.__ops && window.__ops.snapshots > 0", timeout=WAIT)
            assert not page.locator("#signin").is_visible()
            # Couriers are listed by the names the demo gave them.
            page.locator(".tabs button[data-tab=couriers]").click()
            page.wait_for_function("Object.keys(window.__ops.names).length > 0", timeout=WAIT)
            names = page.evaluate("Object.values(window.__ops.names)")
            page.wait_for_function(f"{names!r}.some(n => document.querySelector('#rows').textContent.includes(n))",
                                   timeout=WAIT)
            page.locator("#rows li").first.click()
            page.wait_for_selector("#detail h2")
            # With more orders than the panel holds, an order's detail still opens in view.
            page.locator(".tabs button[data-tab=orders]").click()
            page.wait_for_function("document.querySelector('#list').scrollHeight > 1.5 * "
                                   "document.querySelector('#list').clientHeight", timeout=WAIT)
            page.locator("#rows li").last.click()
            page.wait_for_function("window.__ops.detail && !window.__ops.detail.busy", timeout=WAIT)
            detail = page.locator("#detail").bounding_box()
            assert detail is not None and detail["y"] + min(detail["height"], 120) <= 600, detail
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "ops.png"))
            browser.close()
        assert not errors, errors
    finally:
        demo.terminate()
        demo.wait(30)
        log.close()


# ---- the console's operator actions on a city the test builds itself (in-process, a few seconds) ----

POINT = {"lat": 52.5200, "lng": 13.4050}
SQUARE = {"type": "Polygon", "coordinates": [[[13.35, 52.48], [13.46, 52.48], [13.46, 52.56], [13.35, 52.56],
                                              [13.35, 52.48]]]}
MENU = {"categories": [{"name": "Mains", "items": [{"id": "itm_fries", "name": "Fries", "price": 400}]}]}
# Promises are about 40 minutes: at 600 world seconds per real second an open order is late in ~4 s.
TIME_SCALE = 600.0


@pytest.fixture
def app(settings: Settings) -> web.Application:
    # "apps" serves the vendored Leaflet and the map helper the console's map is drawn with.
    return create_app(settings.replace(ops_time_scale=TIME_SCALE),
                      components=("catalog", "payments", "tracking", "orders", "apps", "ops"))


async def _ok(resp: Any, status: int = 200) -> Any:
    body = await resp.json()
    assert resp.status == status, (resp.status, body)
    return body


async def _city(client: Any, make_principal: Any) -> dict[str, Any]:
    """A store, a customer with a card, two named couriers online: what the console needs."""
    _, operator = await make_principal("operator")
    tenant = await _ok(await client.post("/v1/tenants", json={"name": "Burger Bros"}, headers=operator), 201)
    _, staff = await make_principal("staff", tenant_id=tenant["id"])
    store = await _ok(await client.post(f"/v1/tenants/{tenant['id']}/stores", headers=staff, json={
        "name": "Burger Bros Mitte", **POINT, "timezone": "Europe/Berlin", "currency": "EUR",
        "prep_time_default_s": 600}), 201)
    sid = store["id"]
    await _ok(await client.put(f"/v1/merchant/stores/{sid}/hours", headers=staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
    await _ok(await client.put(f"/v1/merchant/stores/{sid}/zones", headers=staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}))
    await _ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json=MENU))
    customer, buyer = await make_principal("customer")
    card = await _ok(await client.post(
        "/v1/payment_methods", headers={**buyer, "Idempotency-Key": f"pm-{customer.account_id}"},
        json={"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}))
    couriers = {name: await make_principal("courier", name=name) for name in ("Anna K.", "Ben L.")}
    return {"operator": operator, "staff": staff, "store": sid, "buyer": buyer, "card": card["id"],
            "couriers": couriers}


async def _order(client: Any, city: dict[str, Any], key: str) -> str:
    quote = await _ok(await client.post("/v1/quotes", headers=city["buyer"], json={
        "store_id": city["store"], "dropoff": {"lat": 52.53, "lng": 13.41}, "address": "Torstr. 1, Berlin",
        "lines": [{"item_id": "itm_fries", "quantity": 1}]}), 201)
    order = await _ok(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": city["card"]},
                                        headers={**city["buyer"], "Idempotency-Key": key}), 201)
    return str(order["id"])


async def _acked(ws: Any, frame: dict[str, Any]) -> None:
    await ws.send_json(frame)
    async with asyncio.timeout(20):
        while True:
            reply = json.loads((await ws.receive()).data)
            if reply.get("id") == frame["id"]:
                assert reply["type"] == "ack", reply
                return


async def _online(ws: Any, name: str, lat: float) -> None:
    await ws.send_json({"type": "hello", "vehicle": "bicycle"})
    await _acked(ws, {"type": "status", "status": "online", "id": f"on-{name}"})
    await ws.send_json({"type": "location", "lat": lat, "lng": 13.41, "ts": time.time(), "seq": 1, "accuracy": 5.0})


async def _in_view(page: Any, selector: str) -> bool:
    box = await page.locator(selector).bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]


@pytest.mark.timeout(120)
async def test_console_operator_actions_late_alert_names_search_and_sign_in(client: Any, make_principal: Any) -> None:
    async_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    chromium = _chromium()
    city = await _city(client, make_principal)
    first, second = await _order(client, city, "o1"), await _order(client, city, "o2")
    await _ok(await client.post(f"/v1/orders/{first}/accept", json={}, headers=city["staff"]))
    (anna, anna_auth), (ben, ben_auth) = city["couriers"]["Anna K."], city["couriers"]["Ben L."]
    operator_token = city["operator"]["Authorization"].split()[1]
    base = str(client.make_url("")).rstrip("/")
    async with client.ws_connect("/v1/courier/ws", headers=anna_auth) as anna_ws, \
            client.ws_connect("/v1/courier/ws", headers=ben_auth) as ben_ws, async_api.async_playwright() as p:
        await _online(anna_ws, "anna", 52.52)
        await _online(ben_ws, "ben", 52.50)
        browser = await p.chromium.launch(executable_path=chromium, args=ARGS)
        page = await browser.new_page(viewport={"width": 1300, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        await page.goto(f"{base}/ops?token={operator_token}")
        assert "token=" not in page.url
        wait = page.wait_for_function

        # Couriers by name, in the list and as the map's hover label.
        await wait("window.__ops.couriersDrawn >= 2 && Object.keys(window.__ops.names).length >= 2", timeout=WAIT)
        await page.locator(".tabs button[data-tab=couriers]").click()
        await wait("document.querySelector('#rows').textContent.includes('Anna K.')", timeout=WAIT)
        # The map is Leaflet's: hovering Anna's marker (where the map has it now) opens its label with her name.
        box = await page.locator("#leaf").bounding_box()
        label = page.locator(".leaflet-tooltip", has_text="Anna K.")
        for _ in range(60):  # the feed moves markers every second: aim at Anna where she is drawn now
            spot = await page.evaluate(f"window.__ops.hits.find(h => h.id === {anna.account_id!r}) || null")
            if spot is not None:
                await page.mouse.move(box["x"] + spot["x"], box["y"] + spot["y"])
            if await label.count():
                break
            await page.mouse.move(0, 0)
            await page.wait_for_timeout(100)  # a loaded CI machine may not have drawn her yet: try again shortly
        assert await label.is_visible() and "Anna K." in await label.inner_text()
        # Zoom and pan are the map's own (Leaflet's controls).
        zoom = await page.evaluate("document.querySelector('#leaf .leaflet-control-zoom-in') !== null")
        assert zoom

        # Both orders pass their promise (in world time): the alert says so and filters the list to them.
        await page.wait_for_selector("#alert:visible", timeout=WAIT)
        await wait("document.querySelector('#alert').textContent.includes('2 late orders')", timeout=WAIT)
        await page.locator("#alert").click()
        assert await page.locator("#f").input_value() == "late"
        await wait("document.querySelectorAll('#rows li.late').length === 2", timeout=WAIT)
        await page.locator("#q").fill(first[-8:])
        await wait("document.querySelectorAll('#rows li').length === 1", timeout=WAIT)
        await page.locator("#q").fill("no such order")
        await wait("document.querySelectorAll('#rows li').length === 0", timeout=WAIT)
        await page.locator("#q").fill("")

        # Assign by hand, then reassign: the panel shows the courier the order has now.
        await page.locator(f"#rows li[data-id='{first}']").click()
        assign = page.locator("#detail button[data-action=assign]")
        await assign.wait_for(timeout=WAIT)
        assert await _in_view(page, "#detail")
        assert await page.locator("#detail button[data-action=cancel]").is_enabled()  # accepted: cancellable
        await page.select_option("#assign-to", anna.account_id)
        await assign.click()
        await wait("document.querySelector('#detail').textContent.includes('courierAnna K.')", timeout=WAIT)
        await page.select_option("#assign-to", ben.account_id)
        await page.locator("#detail button[data-action=reassign]").click()
        await wait("document.querySelector('#detail').textContent.includes('courierBen L.')", timeout=WAIT)

        # Ben carries it; tracking records his pickup arrival twice (two frames): the timeline shows it once.
        for frame in ({"type": "arrived", "order_id": first, "where": "pickup", "id": "b1"},
                      {"type": "arrived", "order_id": first, "where": "pickup", "id": "b2"},
                      {"type": "picked_up", "order_id": first, "id": "b3"},
                      {"type": "arrived", "order_id": first, "where": "dropoff", "id": "b4"},
                      {"type": "delivered", "order_id": first, "id": "b5", "proof": {"code": "1234"}}):
            await _acked(ben_ws, frame)
        await wait("(window.__ops.timeline || []).some(t => t.text.startsWith('payment.captured'))", timeout=WAIT)
        timeline = await page.evaluate("window.__ops.timeline")
        texts = [t["text"] for t in timeline]
        assert [t["at"] for t in timeline] == sorted(t["at"] for t in timeline), texts
        assert sum(t.startswith("courier.arrived_pickup") for t in texts) == 1, texts
        assert texts[0].startswith("payment.authorized €"), texts  # money as money, in time order
        assert not any("{" in t for t in texts), texts
        cancel = page.locator("#detail button[data-action=cancel]")
        assert await cancel.is_disabled() and "delivered" in (await cancel.get_attribute("title") or "")

        # Refund asks first; "Keep" sends nothing, "Yes" refunds.
        refund = page.locator("#detail button[data-action=refund]")
        await refund.click()
        assert "Refund" in await page.locator("#detail .confirm").inner_text()
        await page.locator("#detail button[data-action=keep]").click()
        await page.wait_for_timeout(300)
        assert not [url for url in posts if "refund" in url]
        await refund.click()
        await page.locator("#detail button[data-action=confirm]").click()
        await wait("(window.__ops.timeline || []).some(t => t.text.startsWith('payment.refunded €'))", timeout=WAIT)

        # The second order (placed) can be cancelled, after a confirmation; then it cannot.
        await page.locator(".tabs button[data-tab=orders]").click()
        await page.locator(f"#rows li[data-id='{second}']").click()
        await wait(f"window.__ops.detail && window.__ops.detail.id === {second!r} && !window.__ops.detail.busy",
                   timeout=WAIT)
        await page.locator("#detail button[data-action=cancel]").click()
        await page.locator("#detail button[data-action=confirm]").click()
        await wait("document.querySelector('#detail').textContent.includes('statuscancelled')", timeout=WAIT)
        assert await page.locator("#detail button[data-action=cancel]").is_disabled()

        # A paused store's panel shows the pause at once, and the reopening.
        await page.locator(".tabs button[data-tab=stores]").click()
        await page.locator(f"#rows li[data-id='{city['store']}']").click()
        await page.locator("#detail button[data-action=pause]").click()
        await wait("document.querySelector('#detail').textContent.includes('statuspaused until')", timeout=WAIT)
        await page.locator("#detail button[data-action=reopen]").click()
        await wait("document.querySelector('#detail').textContent.includes('statusonline')", timeout=WAIT)

        # A reload keeps the tab's token (it left the address bar).
        await page.reload()
        await wait("window.__ops.snapshots > 0", timeout=WAIT)
        assert not await page.locator("#signin").is_visible()

        # A refused token asks for another one instead of reconnecting for ever.
        stranger = await browser.new_page()
        sockets: list[str] = []
        stranger.on("websocket", lambda ws: sockets.append(ws.url))
        await stranger.goto(f"{base}/ops?token=not-a-token")
        await stranger.wait_for_selector("#signin:visible", timeout=WAIT)
        await stranger.wait_for_timeout(2500)
        assert await stranger.evaluate("window.__ops.connects") == 0 and sockets == []
        await browser.close()
    assert not errors, errors
