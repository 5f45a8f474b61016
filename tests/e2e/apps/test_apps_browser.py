"""One order through the three apps at once, in headless Chromium (Debian's package, driven by Playwright):
the customer places it through the API and opens its tracking link; the restaurant tablet signs in, hears
it, accepts it and marks it ready; the courier app signs in, goes online with a scripted GPS path, takes
the offer, picks up (through a dropped connection whose fixes are resent in order) and delivers; the
tracking page shows the courier moving, then "delivered" and no position after. Screenshots of each page
go to .ci/artifacts/. Skipped, saying why, where Playwright or Chromium is missing."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from aiohttp import web
from apps_helpers import DROPOFF, PASSWORD, STORE, build_world, eventually, ok, place_order

from dispatch.service import DispatcherConfig
from fooddispatch.app import create_app
from fooddispatch.components.dispatch import DISPATCH_CONFIG
from fooddispatch.components.tracking import TRACKING_CONFIG
from fooddispatch.config import Settings
from tracking.service import TrackingConfig

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / ".ci" / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 30_000  # generous: the machine may be busy; every wait polls for a condition
WAIT_S = WAIT_MS / 1000
PHONE = {"width": 390, "height": 844}


def chromium() -> str:
    pytest.importorskip("playwright.async_api", reason="playwright is not installed (pip install -e '.[test]')")
    found = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not found:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    return found


@pytest.fixture
def app(settings: Settings) -> web.Application:
    app = create_app(settings)
    app[DISPATCH_CONFIG] = DispatcherConfig(region=settings.region, interval_s=0.3, offer_ttl_s=60.0,
                                            lease_ttl_ms=2000)
    app[TRACKING_CONFIG] = TrackingConfig(region=settings.region, history_interval=0.2)
    return app


async def until(page, expression: str, within: float = WAIT_S) -> None:
    """Poll a page until `expression` is true. Not `wait_for_function`: that evaluates the expression with
    the page's own script rules, and the apps' Content-Security-Policy (rightly) forbids eval."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await page.evaluate(expression):
        if loop.time() > deadline:
            raise AssertionError(f"{page.url}: {expression} was not true within {within} s")
        await asyncio.sleep(0.1)


def path(start: tuple[float, float], end: tuple[float, float], steps: int) -> list[tuple[float, float]]:
    return [(start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps)
            for i in range(1, steps + 1)]


async def move(context, page, lat: float, lng: float) -> None:
    """Put the phone somewhere and wait until the server has stored (acked) the fix it gives."""
    before = await page.evaluate("window.__courier.fixes")
    await context.set_geolocation({"latitude": lat, "longitude": lng, "accuracy": 8})
    await until(page, f"window.__courier.fixes > {before}")
    await until(page, "window.__courier.acked >= window.__courier.seq")


async def test_one_order_through_the_tracking_page_the_tablet_and_the_courier_app(
        client, make_principal, db) -> None:
    from playwright.async_api import async_playwright

    executable = chromium()
    world = await build_world(client, make_principal)
    base = str(client.make_url("/")).rstrip("/")
    start = (STORE[0] + 0.0009, STORE[1])  # 100 m from the restaurant
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=ARGS)
        errors: list[str] = []
        courier_ctx = await browser.new_context(viewport=PHONE, permissions=["geolocation"],
                                                geolocation={"latitude": start[0], "longitude": start[1],
                                                             "accuracy": 8})
        tablet_ctx = await browser.new_context(viewport={"width": 1280, "height": 860})
        customer_ctx = await browser.new_context(viewport=PHONE)
        courier, tablet, track = (await courier_ctx.new_page(), await tablet_ctx.new_page(),
                                  await customer_ctx.new_page())
        for page in (courier, tablet, track):
            page.on("pageerror", lambda e: errors.append(str(e)))

        # The courier signs in, goes online; the phone's position reaches the live index.
        await courier.goto(f"{base}/courier")
        await courier.fill("#email", world.courier_email)
        await courier.fill("#password", PASSWORD)
        await courier.click("#signin button[type=submit]")
        await until(courier, "window.__courier.connected")
        assert await courier.inner_text("#who") == "Grace Hopper"
        await courier.click("#toggle")
        await until(courier, "window.__courier.fixes > 0 && window.__courier.acked >= 1")

        # The restaurant's tablet signs in and listens to its store.
        await tablet.goto(f"{base}/tablet")
        await tablet.fill("#email", world.staff_email)
        await tablet.fill("#password", PASSWORD)
        await tablet.click("#signin-button")
        await until(tablet, "window.__tablet.connected")

        # The customer orders through the API (while the tablet's connection is down: it catches up from the
        # feed's hello when it is back, once) and opens the tracking link.
        await tablet.evaluate("window.__tablet.dropSocket()")
        order = await place_order(client, world)
        oid = order["id"]
        link = await ok(await client.post(f"/v1/orders/{oid}/tracking_links", headers=world.customer), 201)
        await track.goto(f"{base}{link['url']}")
        await until(track, "window.__track.view && window.__track.socketOpen")
        assert await track.inner_text("#restaurant") == "Burger Bros Mitte"
        assert await track.inner_text("#note") == "Ring twice, 3rd floor"

        # The tablet hears it (a sound, a countdown), accepts it and marks it ready.
        card = f".order[data-order-id='{oid}']"
        await tablet.wait_for_selector(f"#col-new {card}", timeout=WAIT_MS)
        assert await tablet.evaluate("window.__tablet.hellos") >= 2  # it came with the hello of the reconnect
        assert await tablet.locator(card).count() == 1
        assert await tablet.evaluate("window.__tablet.beeps") >= 1
        assert "to accept" in await tablet.inner_text(f"{card} .countdown")
        await tablet.select_option(f"{card} select.prep", "300")
        await tablet.click(f"{card} button.accept")
        await tablet.wait_for_selector(f"#col-kitchen {card}", timeout=WAIT_MS)
        await tablet.select_option(f"{card} .actions select:not(.prep)", "2")  # the fries ran out
        await tablet.click(f"{card} button.missing")
        await tablet.wait_for_selector(f"{card} li:has-text('1 missing')", timeout=WAIT_MS)
        await tablet.screenshot(path=str(ARTIFACTS / "apps-tablet-order.png"))
        await tablet.click(f"{card} button.ready")
        await tablet.wait_for_selector(f"#col-ready {card}", timeout=WAIT_MS)
        await until(track, "window.__track.status === 'ready'")

        # Dispatch offers it to the courier, who accepts; the tracking page starts showing the courier.
        await courier.wait_for_selector("#offer:not(.hidden)", timeout=WAIT_MS)
        assert "s" in await courier.inner_text("#offer-countdown")
        await courier.click("#accept")
        await until(courier, "window.__courier.job && window.__courier.job.stage === 'pickup'")
        assert (await courier.get_attribute("#navigate", "href")).startswith(f"geo:{STORE[0]},{STORE[1]}")
        await until(track, "window.__track.positions > 0")
        await courier.click("#picked-up")
        await until(courier, "window.__courier.job && window.__courier.job.stage === 'dropoff'")
        await until(track, "window.__track.status === 'picked_up'")
        await track.reload()  # the page comes back from its address alone
        await until(track, "window.__track.view && window.__track.socketOpen && window.__track.status === 'picked_up'")
        await until(courier, "document.getElementById('job-text').textContent.includes('Ring twice')")
        await courier.screenshot(path=str(ARTIFACTS / "apps-courier-job.png"))

        # The courier rides toward the customer; the tracking page's marker follows.
        route = path(start, DROPOFF, 8)
        seen = []
        for lat, lng in route[:3]:
            await move(courier_ctx, courier, lat, lng)
            await until(track,
                f"window.__track.lastPosition && Math.abs(window.__track.lastPosition[0] - {lat}) < 0.0003")
            seen.append(await track.evaluate("window.__track.lastPosition"))
        assert len({tuple(s) for s in seen}) == 3  # it moved on the customer's map

        # A short network loss: fixes queue on the phone and go out again, in order, when it is back.
        await courier.evaluate("window.__courier.dropSocket()")
        for lat, lng in route[3:6]:
            await courier_ctx.set_geolocation({"latitude": lat, "longitude": lng, "accuracy": 8})
            await until(courier, f"window.__courier.lastFix && window.__courier.lastFix.lat === {lat}")
        await until(courier, "window.__courier.connected && window.__courier.queue.length === 0")
        assert await courier.evaluate("window.__courier.resent") >= 1
        seqs = await eventually(lambda: _history_seqs(db, world.courier_id, min_rows=7))
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))  # each fix once, in order
        await until(track,
            f"window.__track.lastPosition && Math.abs(window.__track.lastPosition[0] - {route[5][0]}) < 0.0003")
        await track.screenshot(path=str(ARTIFACTS / "apps-tracking-on-the-way.png"))

        # Delivered: the tracking page says so and shows no courier any more, even when it moves on.
        await courier.click("#delivered")
        await until(courier, "window.__courier.job === null")
        await until(track, "window.__track.view && window.__track.view.status === 'delivered'")
        assert await track.inner_text("#headline") == "Delivered. Enjoy your meal!"
        assert await track.is_visible("#timeline li.done[data-status=delivered]")
        await until(track, "window.__track.lastPosition === null")
        positions = await track.evaluate("window.__track.positions")
        await move(courier_ctx, courier, *route[6])
        await move(courier_ctx, courier, *route[7])
        view = await ok(await client.get(f"/v1/orders/{oid}/tracking", headers={"X-Tracking-Token": link["token"]}))
        assert view["status"] == "delivered" and view["courier"] is None
        await track.wait_for_timeout(1000)  # a position sent after delivery would have arrived by now
        assert await track.evaluate("window.__track.positions") == positions
        assert await track.is_hidden("#courier-card")
        await until(courier, "window.__courier.earnings && window.__courier.earnings.length > 0")
        await tablet.wait_for_selector(f"{card}", state="detached", timeout=WAIT_MS)

        await track.screenshot(path=str(ARTIFACTS / "apps-tracking-delivered.png"))
        # The kitchen marks the fries sold out for today and pauses the store for 15 minutes.
        await tablet.click("#menu-toggle")
        await tablet.click("#menu-items li[data-item-id=itm_fries] button.sold-out")
        await tablet.wait_for_selector("#menu-items li[data-item-id=itm_fries]:has-text('sold out')", timeout=WAIT_MS)
        await tablet.fill("#pause-minutes", "15")
        await tablet.click("#pause")
        await tablet.wait_for_selector("#store-status:has-text('paused until')", timeout=WAIT_MS)
        store = await ok(await client.get(f"/v1/stores/{world.store_id}/menu"))
        fries = [i for c in store["categories"] for i in c["items"] if i["id"] == "itm_fries"]
        assert fries[0]["sold_out"] is True
        await tablet.screenshot(path=str(ARTIFACTS / "apps-tablet.png"))
        await courier.screenshot(path=str(ARTIFACTS / "apps-courier.png"))
        # Installed as an app, it starts without a network: its service worker keeps the shell.
        await until(courier, "navigator.serviceWorker.controller !== null")
        await courier_ctx.set_offline(True)
        await courier.reload()
        await courier.wait_for_selector("#toggle", state="attached", timeout=WAIT_MS)
        await until(courier, "typeof window.__courier === 'object' && typeof L === 'object'")
        await courier_ctx.set_offline(False)
        await browser.close()
    assert not errors, errors


async def _history_seqs(db, courier_id: str, min_rows: int) -> list[int] | None:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT seq FROM courier_locations WHERE courier_id = $1 ORDER BY received_at, seq",
                                courier_id)
    seqs = [r["seq"] for r in rows]
    return seqs if len(seqs) >= min_rows else None
