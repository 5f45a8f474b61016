"""A real browser on the ops console: headless Chromium (Debian's package, driven by Playwright)
opens /ops while a small demo runs, sees couriers drawn and the KPIs change, and saves a
screenshot to .ci/artifacts/ops.png. CI installs both (see .ci/run); on a developer machine
without them the test is skipped and says why."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
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
            browser = p.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM)
                                        else shutil.which("chromium"), args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            assert "token=" not in page.url  # the token left the address bar; the page keeps it in memory
            page.wait_for_function("window.__ops && window.__ops.couriersDrawn > 0", timeout=45_000)
            first = page.evaluate("JSON.stringify(window.__ops.snap.kpis)")
            page.wait_for_function(f"JSON.stringify(window.__ops.snap.kpis) !== {first!r}", timeout=30_000)
            page.wait_for_function("window.__ops.snap.kpis.open_orders + window.__ops.snap.kpis.delivered > 0",
                                   timeout=30_000)
            assert page.locator("#kpi-couriers").inner_text() != "–"
            page.locator(".tabs button[data-tab=couriers]").click()
            page.locator("#list li").first.click()
            page.wait_for_selector("#detail h2")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.locator(".tabs button[data-tab=orders]").click()
            page.screenshot(path=str(ARTIFACTS / "ops.png"))
            browser.close()
        assert not errors, errors
    finally:
        demo.terminate()
        demo.wait(30)
        log.close()
