"""`serve` killed with SIGKILL leaves its embedded PostgreSQL running (a daemon): the next `serve`
on the same data folder takes it over, and a graceful stop then leaves no server behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

FOODDISPATCH = [sys.executable, "-m", "fooddispatch"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _servers_of(data_dir: Path, name: str) -> list[psutil.Process]:
    """Live postgres postmasters / redis-servers started for this data folder."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "cwd"]):
        try:
            if process.info["name"] != name:
                continue
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(data_dir) in cmdline or str(data_dir) in (process.info["cwd"] or ""):
                if name != "postgres" or " -D " in f" {cmdline} ":  # the postmaster, not its backends
                    found.append(process)
        except psutil.Error:
            continue
    return found


def _serve(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["FOODDISPATCH_DATA_DIR"] = str(data_dir)
    with log.open("a") as log_file:
        return subprocess.Popen([*FOODDISPATCH, "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=log_file)


def _wait_ready(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("serve did not become ready: " + log.read_text()[-2000:])


def _eventually(check, seconds: float = 20) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture
def data_dir():  # type: ignore[no-untyped-def]
    # Not under pytest's tmp_path: a concurrent pytest run resets its base folder to 0700, which locks
    # out the user the embedded PostgreSQL runs as when we are root (see tests/conftest.py).
    folder = Path(tempfile.mkdtemp(prefix="fooddispatch-orphan-"))
    yield folder / "data"
    for process in _servers_of(folder, "postgres"):  # a failed run must not leave one behind
        process.kill()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_serve_after_sigkill_takes_over_the_orphan_and_stops_it_on_a_graceful_exit(data_dir: Path) -> None:
    log = data_dir.parent / "serve.log"
    port = _free_port()
    first = _serve(data_dir, port, log)
    try:
        _wait_ready(port, first, log)
        [orphan] = _servers_of(data_dir, "postgres")
    finally:
        first.kill()  # SIGKILL: no cleanup of any kind
        first.wait(30)
    assert orphan.is_running()  # PostgreSQL outlives its killed user...
    assert _eventually(lambda: _servers_of(data_dir, "redis-server") == [])  # ...Redis does not (our child)
    assert first.pid in json.loads((data_dir / "pg" / ".handle_pids.json").read_text())

    second = _serve(data_dir, port, log)
    try:
        _wait_ready(port, second, log)
        assert [p.pid for p in _servers_of(data_dir, "postgres")] == [orphan.pid]  # reused, no second server
        assert json.loads((data_dir / "pg" / ".handle_pids.json").read_text()) == [second.pid]
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    assert second.returncode == 0, log.read_text()[-2000:]
    assert _eventually(lambda: _servers_of(data_dir, "postgres") == []), "PostgreSQL left running after a graceful exit"
    assert _servers_of(data_dir, "redis-server") == []
