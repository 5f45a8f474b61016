"""The restaurant tablet opened with a store's key in the address (`/tablet#key=fdk_...`), in headless
Chromium: it signs in with that key (sent as X-Api-Key, never in a REST URL), keeps it for the tab, wipes
it from the address bar, hears the store's order and accepts it; a reload stays signed in. Skipped,
saying why, where Playwright or Chromium is missing."""

from __future__ import annotations

import pytest
from apps_helpers import build_world, ok, place_order
from test_apps_browser import ARGS, WAIT_MS, chromium, until

pytestmark = pytest.mark.slow


async def test_the_tablet_opens_with_a_store_key_in_the_fragment(client, make_principal) -> None:
    from playwright.async_api import async_playwright

    executable = chromium()
    world = await build_world(client, make_principal)
    key = (await ok(await client.post(f"/v1/tenants/{world.tenant_id}/api_keys", headers=world.operator,
                                      json={"name": "Mitte tablet", "store_id": world.store_id}), 201))["key"]
    order = await place_order(client, world)
    base = str(client.make_url("/")).rstrip("/")
    rest: list[tuple[str, dict]] = []
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=ARGS)
        page = await (await browser.new_context(viewport={"width": 1280, "height": 860})).new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: rest.append((r.url, r.headers)))
        await page.goto(f"{base}/tablet#key={key}")
        await until(page, "window.__tablet.connected")
        assert "key=" not in page.url and await page.evaluate("location.hash") == ""
        assert await page.evaluate("sessionStorage.getItem('tablet.token')") == key
        card = f".order[data-order-id='{order['id']}']"
        await page.wait_for_selector(f"#col-new {card}", timeout=WAIT_MS)
        await page.click(f"{card} button.accept")
        await page.wait_for_selector(f"#col-kitchen {card}", timeout=WAIT_MS)
        await page.reload()  # the tab keeps the key
        await until(page, "window.__tablet.connected && window.__tablet.hellos >= 1")
        await page.wait_for_selector(f"#col-kitchen {card}", timeout=WAIT_MS)
        await browser.close()
    assert not errors, errors
    assert rest and all(key not in url for url, _ in rest)  # the page, its files, the API: no URL holds it
    api = [(u, h) for u, h in rest if "/v1/" in u and "/v1/maps/" not in u]  # the map's settings are public
    assert api and [(u, sorted(h)) for u, h in api if h.get("x-api-key") != key or "authorization" in h] == []
    shown = await ok(await client.get(f"/v1/orders/{order['id']}", headers={"X-Api-Key": key}))
    assert shown["status"] == "accepted"
