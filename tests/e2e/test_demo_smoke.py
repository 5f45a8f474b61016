"""CI smoke test: `fooddispatch demo --headless --minutes 1 --speed 20 --seed 1` runs the city on
its own data folder and port, exits 0, delivers orders, keeps the server's log off the terminal
(in demo.log, with no errors) and sums up the city as it closed."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def data_dir(tmp_path: Path) -> str:
    """A fresh folder outside pytest's tmp tree: the embedded PostgreSQL runs as its own user,
    which cannot enter pytest's private base folder."""
    del tmp_path
    return tempfile.mkdtemp(prefix="fooddispatch-demo-")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def figure(summary: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}: (.*)$", summary, re.MULTILINE)
    assert match, f"{label!r} missing from the summary:\n{summary}"
    return match.group(1)


@pytest.mark.timeout(300)
def test_demo_city_runs_a_minute_delivers_orders_and_exits_cleanly(tmp_path: Path) -> None:
    folder = data_dir(tmp_path)
    env = {**os.environ, "FOODDISPATCH_DATA_DIR": folder, "FOODDISPATCH_LOG_JSON": "true"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    args = [sys.executable, "-m", "fooddispatch", "demo", "--headless", "--minutes", "1", "--speed", "20",
            "--seed", "1", "--port", str(free_port())]
    # About 100 s on an idle 2-core machine (seeding, 60 s of city, a wind-down, shutdown); the
    # margin is for a loaded CI box. On a hang, Ctrl-C it so the output says where it was.
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=270)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the demo did not finish in 270 s; its output:\n{exc.stdout!s:.3000}")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "== demo summary ==" in out and "/ops?token=" in out
    # The terminal holds the demo's own lines only: the server's request log goes to demo.log.
    assert done.stderr == "", done.stderr[-2000:]
    assert len(out.splitlines()) < 60, out[:3000]
    assert "then waits up to 15 s" in out  # --minutes says it is followed by a wind-down
    summary = out[out.index("== demo summary =="):]
    counts = figure(summary, "orders placed / delivered / cancelled").split(" / ")
    placed, delivered = int(counts[0]), int(counts[1])
    assert placed > 0 and delivered > 0, summary
    undelivered = figure(summary, "orders not delivered")
    assert int(undelivered.split()[0]) == placed - delivered, summary
    online = figure(summary, "couriers online / busy as the city closed")
    assert int(online.split(" / ")[0]) > 0, summary  # as the city closed, not after the couriers left
    assert figure(summary, "unexpected errors") == "none", summary
    assert "not simulated: nothing" in summary, summary
    log = Path(folder) / "demo.log"
    assert figure(summary, "server log").startswith(f"{log.resolve()} (0 errors, ")
    lines = log.read_text().splitlines()
    assert any('"event": "request"' in line for line in lines)
    bad = [line for line in lines if '"level": "error"' in line or '"level": "critical"' in line
           or line.startswith("Traceback")]
    assert not bad, "\n".join(bad[:10])
