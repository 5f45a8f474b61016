"""English and German, chosen by Accept-Language: errors from the API (code unchanged, message German),
the pages served with `<html lang>`, the tracking view carrying the restaurant's time zone, and the
tracking page and the tablet in German in headless Chromium, with times in the restaurant's zone even
when the phone is in another one."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from apps_helpers import build_world, ok, place_order
from test_apps_browser import ARGS, WAIT_MS, chromium, until

from fooddispatch.app import create_app
from fooddispatch.config import Settings
from fooddispatch.messages_de import ERRORS_DE

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings, components=("catalog", "payments", "tracking", "orders", "apps"))


async def test_errors_speak_the_clients_language_and_keep_their_code(client, make_principal) -> None:
    world = await build_world(client, make_principal)
    missing = f"/v1/orders/ord_{'0' * 20}"
    english = await client.get(missing, headers=world.customer)
    german = await client.get(missing, headers={**world.customer, **GERMAN})
    body_en, body_de = await english.json(), await german.json()
    assert english.status == german.status == 404 and body_en["error"]["code"] == body_de["error"]["code"]
    assert body_de["error"]["message"] == ERRORS_DE[body_de["error"]["code"]] != body_en["error"]["message"]
    assert german.headers["Content-Language"] == "de" and "Accept-Language" in german.headers["Vary"]
    assert "Content-Language" not in english.headers

    bad = await client.post("/v1/quotes", json={"store_id": world.store_id, "lines": "many"},
                            headers={**world.customer, **GERMAN, "Idempotency-Key": "q-bad-de"})
    error = (await bad.json())["error"]
    assert bad.status == 422 and error["code"] == "validation_error" and error["param"]
    assert error["message"] == ERRORS_DE["validation_error"]
    again = await client.post("/v1/quotes", json={"store_id": world.store_id, "lines": "many"},
                              headers={**world.customer, "Idempotency-Key": "q-bad-de"})
    assert (await again.json())["error"]["code"] == "validation_error"  # the same key in English: English
    assert (await again.json())["error"]["message"] != ERRORS_DE["validation_error"]


async def test_pages_are_served_in_the_browsers_language(client) -> None:
    for path in ("/tablet", "/courier", "/t/some.token"):
        german = await client.get(path, headers={"Accept-Language": "de-CH, en;q=0.3"})
        english = await client.get(path, headers={"Accept-Language": "fr, en-GB;q=0.8"})
        assert german.status == english.status == 200
        assert '<html lang="de">' in await german.text() and german.headers["Content-Language"] == "de"
        assert '<html lang="en">' in await english.text() and english.headers["Content-Language"] == "en"
        assert german.headers["Vary"] == "Accept-Language"


async def test_the_tracking_page_and_the_tablet_in_german_with_the_restaurants_time(client, make_principal) -> None:
    from playwright.async_api import async_playwright

    executable = chromium()
    world = await build_world(client, make_principal)
    order = await place_order(client, world)
    link = await ok(await client.post(f"/v1/orders/{order['id']}/tracking_links", headers=world.customer), 201)
    view = await ok(await client.get(f"/v1/orders/{order['id']}/tracking", headers={"X-Tracking-Token": link["token"]}))
    assert view["restaurant"]["time_zone"] == "Europe/Berlin"
    placed = datetime.fromisoformat(view["timeline"][0]["at"]).astimezone(ZoneInfo("Europe/Berlin"))
    base = str(client.make_url("/")).rstrip("/")
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=ARGS)
        # A phone set to German, in New York: the times are still Berlin's, where the food is.
        context = await browser.new_context(locale="de-DE", timezone_id="America/New_York")
        track = await context.new_page()
        track.on("pageerror", lambda e: errors.append(str(e)))
        await track.goto(f"{base}{link['url']}")
        await until(track, "window.__track.view !== null")
        assert await track.inner_text("#headline") == "Warten auf das Restaurant"
        assert await track.inner_text("h2[data-t='track.progress']") == "Fortschritt"
        first_step = await track.inner_text("#timeline li[data-status=placed]")
        assert first_step.startswith("Bestellt") and placed.strftime("%H:%M") in first_step
        tablet = await context.new_page()
        tablet.on("pageerror", lambda e: errors.append(str(e)))
        await tablet.goto(f"{base}/tablet")
        await tablet.wait_for_selector("#signin-button", timeout=WAIT_MS)
        assert await tablet.inner_text("#signin-button") == "Anmelden"
        assert await tablet.get_attribute("#email", "placeholder") == "E-Mail"
        await browser.close()
    assert not errors, errors
