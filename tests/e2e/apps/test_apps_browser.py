"""One order through the three apps at once, in headless Chromium (Debian's package, driven by Playwright):
the customer places it through the API and opens its tracking link; the restaurant tablet signs in, hears
it, accepts it and marks it ready; the courier app signs in, goes online with a scripted GPS path, takes
the offer, picks up (through a dropped connection whose fixes are resent in order) and delivers; the
tracking page shows the courier moving, then "delivered" and no position after. Screenshots of each page
go to .ci/artifacts/. A second test: an order an operator gives the courier by hand shows in the courier app
(and leaves it when given to another courier). Skipped, saying why, where Playwright or Chromium is missing."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from apps_helpers import DROPOFF, PASSWORD, STORE, World, build_world, eventually, ok, place_order

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


@dataclass
class Apps:
    """The three apps, each in its own browser context, and what the steps share."""

    client: Any
    db: Any
    world: World
    base: str
    courier_ctx: Any
    courier: Any
    tablet: Any
    track: Any
    order_id: str = ""
    token: str = ""
    route: list[tuple[float, float]] = field(default_factory=list)

    @property
    def card(self) -> str:
        return f".order[data-order-id='{self.order_id}']"

    async def courier_goes_online(self) -> None:
        """The courier signs in, goes online; the phone's position reaches the live index."""
        courier = self.courier
        await courier.goto(f"{self.base}/courier")
        await courier.fill("#email", self.world.courier_email)
        await courier.fill("#password", PASSWORD)
        await courier.click("#signin button[type=submit]")
        await until(courier, "window.__courier.connected")
        assert await courier.inner_text("#who") == "Grace Hopper"
        await courier.click("#toggle")
        await until(courier, "window.__courier.fixes > 0 && window.__courier.acked >= 1")

    async def tablet_listens(self) -> None:
        await self.tablet.goto(f"{self.base}/tablet")
        await self.tablet.fill("#email", self.world.staff_email)
        await self.tablet.fill("#password", PASSWORD)
        await self.tablet.click("#signin-button")
        await until(self.tablet, "window.__tablet.connected")

    async def customer_orders_and_opens_the_link(self) -> None:
        """While the tablet's connection is down: it catches up from the feed's hello when it is back."""
        await self.tablet.evaluate("window.__tablet.dropSocket()")
        order = await place_order(self.client, self.world)
        self.order_id = order["id"]
        link = await ok(await self.client.post(f"/v1/orders/{self.order_id}/tracking_links",
                                               headers=self.world.customer), 201)
        self.token = link["token"]
        await self.track.goto(f"{self.base}{link['url']}")
        await until(self.track, "window.__track.view && window.__track.socketOpen")
        assert await self.track.inner_text("#restaurant") == "Burger Bros Mitte"
        assert await self.track.inner_text("#note") == "Ring twice, 3rd floor"

    async def kitchen_accepts_and_readies(self) -> None:
        """The tablet hears it (a sound, a countdown, once), accepts, reports the fries missing, marks it ready."""
        tablet, card = self.tablet, self.card
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
        await until(self.track, "window.__track.status === 'ready'")

    async def courier_takes_the_offer_and_picks_up(self) -> None:
        """Dispatch offers it; the courier accepts; the tracking page starts showing the courier and
        comes back from a reload by its address alone."""
        courier, track = self.courier, self.track
        await courier.wait_for_selector("#offer:not(.hidden)", timeout=WAIT_MS)
        assert "s" in await courier.inner_text("#offer-countdown")
        await courier.click("#accept")
        await until(courier, "window.__courier.job && window.__courier.job.stage === 'pickup'")
        assert (await courier.get_attribute("#navigate", "href")).startswith(f"geo:{STORE[0]},{STORE[1]}")
        await until(track, "window.__track.positions > 0")
        await courier.click("#picked-up")
        await until(courier, "window.__courier.job && window.__courier.job.stage === 'dropoff'")
        await until(track, "window.__track.status === 'picked_up'")
        await track.reload()
        await until(track, "window.__track.view && window.__track.socketOpen && window.__track.status === 'picked_up'")
        await until(courier, "document.getElementById('job-text').textContent.includes('Ring twice')")
        await courier.screenshot(path=str(ARTIFACTS / "apps-courier-job.png"))

    async def shown_at(self, lat: float) -> None:
        shown = "window.__track.lastPosition"
        await until(self.track, f"{shown} && Math.abs({shown}[0] - {lat}) < 3e-4")

    async def courier_rides(self) -> None:
        """The tracking page's marker follows the courier; through a short network loss the phone queues its
        fixes and sends them again, in order, when it is back."""
        courier, route = self.courier, self.route
        seen = []
        for lat, lng in route[:3]:
            await move(self.courier_ctx, courier, lat, lng)
            await self.shown_at(lat)
            seen.append(await self.track.evaluate("window.__track.lastPosition"))
        assert len({tuple(s) for s in seen}) == 3  # it moved on the customer's map
        await courier.evaluate("window.__courier.dropSocket()")
        for lat, lng in route[3:6]:
            await self.courier_ctx.set_geolocation({"latitude": lat, "longitude": lng, "accuracy": 8})
            await until(courier, f"window.__courier.lastFix && window.__courier.lastFix.lat === {lat}")
        await until(courier, "window.__courier.connected && window.__courier.queue.length === 0")
        assert await courier.evaluate("window.__courier.resent") >= 1
        seqs = await eventually(lambda: _history_seqs(self.db, self.world.courier_id, min_rows=7))
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))  # each fix once, in order
        await self.shown_at(route[5][0])
        await self.track.screenshot(path=str(ARTIFACTS / "apps-tracking-on-the-way.png"))

    async def delivered_and_no_position_after(self) -> None:
        courier, track = self.courier, self.track
        await courier.click("#delivered")
        await until(courier, "window.__courier.job === null")
        await until(track, "window.__track.view && window.__track.view.status === 'delivered'")
        assert await track.inner_text("#headline") == "Delivered. Enjoy your meal!"
        assert await track.is_visible("#timeline li.done[data-status=delivered]")
        await until(track, "window.__track.lastPosition === null")
        positions = await track.evaluate("window.__track.positions")
        for lat, lng in self.route[6:8]:  # the courier rides on
            await move(self.courier_ctx, courier, lat, lng)
        view = await ok(await self.client.get(f"/v1/orders/{self.order_id}/tracking",
                                              headers={"X-Tracking-Token": self.token}))
        assert view["status"] == "delivered" and view["courier"] is None
        await track.wait_for_timeout(1000)  # a position sent after delivery would have arrived by now
        assert await track.evaluate("window.__track.positions") == positions
        assert await track.is_hidden("#courier-card")
        await until(courier, "window.__courier.earnings && window.__courier.earnings.length > 0")
        await self.tablet.wait_for_selector(self.card, state="detached", timeout=WAIT_MS)
        await track.screenshot(path=str(ARTIFACTS / "apps-tracking-delivered.png"))

    async def kitchen_sells_out_and_pauses(self) -> None:
        tablet = self.tablet
        await tablet.click("#menu-toggle")
        await tablet.click("#menu-items li[data-item-id=itm_fries] button.sold-out")
        await tablet.wait_for_selector("#menu-items li[data-item-id=itm_fries]:has-text('sold out')", timeout=WAIT_MS)
        await tablet.fill("#pause-minutes", "15")
        await tablet.click("#pause")
        await tablet.wait_for_selector("#store-status:has-text('paused until')", timeout=WAIT_MS)
        menu = await ok(await self.client.get(f"/v1/stores/{self.world.store_id}/menu"))
        fries = [i for c in menu["categories"] for i in c["items"] if i["id"] == "itm_fries"]
        assert fries[0]["sold_out"] is True
        await tablet.screenshot(path=str(ARTIFACTS / "apps-tablet.png"))

    async def courier_app_starts_offline(self) -> None:
        """Installed as an app, it starts without a network: its service worker keeps the shell."""
        await self.courier.screenshot(path=str(ARTIFACTS / "apps-courier.png"))
        await until(self.courier, "navigator.serviceWorker.controller !== null")
        await self.courier_ctx.set_offline(True)
        await self.courier.reload()
        await self.courier.wait_for_selector("#toggle", state="attached", timeout=WAIT_MS)
        await until(self.courier, "typeof window.__courier === 'object' && typeof L === 'object'")
        await self.courier_ctx.set_offline(False)


async def test_one_order_through_the_tracking_page_the_tablet_and_the_courier_app(
        client, make_principal, db) -> None:
    from playwright.async_api import async_playwright

    executable = chromium()
    world = await build_world(client, make_principal)
    start = (STORE[0] + 0.0009, STORE[1])  # 100 m from the restaurant
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=ARGS)
        courier_ctx = await browser.new_context(viewport=PHONE, permissions=["geolocation"], geolocation={
            "latitude": start[0], "longitude": start[1], "accuracy": 8})
        pages = [await courier_ctx.new_page(),
                 await (await browser.new_context(viewport={"width": 1280, "height": 860})).new_page(),
                 await (await browser.new_context(viewport=PHONE)).new_page()]
        for page in pages:
            page.on("pageerror", lambda e: errors.append(str(e)))
        apps = Apps(client, db, world, str(client.make_url("/")).rstrip("/"), courier_ctx, *pages,
                    route=path(start, DROPOFF, 8))
        await apps.courier_goes_online()
        await apps.tablet_listens()
        await apps.customer_orders_and_opens_the_link()
        await apps.kitchen_accepts_and_readies()
        await apps.courier_takes_the_offer_and_picks_up()
        await apps.courier_rides()
        await apps.delivered_and_no_position_after()
        await apps.kitchen_sells_out_and_pauses()
        await apps.courier_app_starts_offline()
        await browser.close()
    assert not errors, errors


async def _history_seqs(db, courier_id: str, min_rows: int) -> list[int] | None:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT seq FROM courier_locations WHERE courier_id = $1 ORDER BY received_at, seq",
                                courier_id)
    seqs = [r["seq"] for r in rows]
    return seqs if len(seqs) >= min_rows else None


async def test_an_order_an_operator_gives_the_courier_by_hand_shows_in_the_app_and_leaves_it_when_given_away(
        client, make_principal, db) -> None:
    """No offer to answer: the `assigned` frame makes the job, `unassigned` takes it away; the courier then picks
    up an order dispatch never offered (it left the pool when the operator gave it)."""
    from playwright.async_api import async_playwright

    executable = chromium()
    world = await build_world(client, make_principal)
    other, _ = await make_principal("courier", name="Ben L.")
    _, staff = await make_principal("staff", tenant_id=world.tenant_id)
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=ARGS)
        ctx = await browser.new_context(viewport=PHONE, permissions=["geolocation"], geolocation={
            "latitude": STORE[0] + 0.0009, "longitude": STORE[1], "accuracy": 8})
        page = await ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        apps = Apps(client, db, world, str(client.make_url("/")).rstrip("/"), ctx, page, None, None)
        await apps.courier_goes_online()
        order_id = (await place_order(client, world))["id"]

        async def give(courier_id: str) -> None:
            await ok(await client.post(f"/v1/orders/{order_id}/courier", json={"courier_id": courier_id},
                                       headers=world.operator))

        job = f"window.__courier.job && window.__courier.job.order_ids.includes({order_id!r})"
        await give(world.courier_id)
        await until(page, f"{job} && window.__courier.job.stage === 'pickup'")
        assert (await page.get_attribute("#navigate", "href")).startswith(f"geo:{STORE[0]},{STORE[1]}")
        await give(other.account_id)
        await until(page, "window.__courier.job === null")
        await give(world.courier_id)
        await until(page, job)
        for step in ("accept", "ready"):
            await ok(await client.post(f"/v1/orders/{order_id}/{step}", json={}, headers=staff))
        await page.wait_for_timeout(1000)  # several dispatch rounds (every 0.3 s), with the courier idle nearby
        assert await page.is_hidden("#offer")
        await page.click("#picked-up")
        await until(page, "window.__courier.job && window.__courier.job.stage === 'dropoff'")
        order = await ok(await client.get(f"/v1/orders/{order_id}", headers=world.operator))
        assert order["status"] == "picked_up" and order["courier_id"] == world.courier_id
        await browser.close()
    assert not errors, errors
