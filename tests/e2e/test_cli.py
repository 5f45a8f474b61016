"""The command line as a user runs it: help, token, serve's lifecycle, one-line failures."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

FOODDISPATCH = [sys.executable, "-m", "fooddispatch"]


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    full_env.update(env or {})
    return subprocess.run([*FOODDISPATCH, *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_lists_every_command_and_each_has_help() -> None:
    out = _run(["--help"])
    assert out.returncode == 0
    for command in ("serve", "migrate", "demo", "simulate", "token"):
        assert command in out.stdout
        assert _run([command, "--help"]).returncode == 0


def test_bad_setting_is_one_line_and_exit_1(tmp_path: Path) -> None:
    out = _run(["migrate"], {"FOODDISPATCH_DATA_DIR": str(tmp_path), "FOODDISPATCH_PORT": "nope"})
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0
    assert "FOODDISPATCH_PORT" in out.stderr and "Traceback" not in out.stderr


def test_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = {"FOODDISPATCH_DATA_DIR": str(tmp_path), "DATABASE_URL": f"postgresql://u@127.0.0.1:{_free_port()}/x"}
    out = _run(["migrate"], env)
    assert out.returncode == 1
    assert "cannot reach the database" in out.stderr
    assert "Traceback" not in out.stderr


def test_port_in_use_is_one_line_and_exit_1(tmp_path: Path, servers) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"FOODDISPATCH_DATA_DIR": str(tmp_path), "DATABASE_URL": servers[0], "REDIS_URL": servers[1]}
        out = _run(["serve", "--port", str(port)], env)
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr


def test_token_creates_an_account_once_and_reuses_it(tmp_path: Path) -> None:
    env = {"FOODDISPATCH_DATA_DIR": str(tmp_path)}
    first = _run(["token", "--role", "operator"], env)
    assert first.returncode == 0, first.stderr
    second = _run(["token", "--role", "operator"], env)
    assert _claims(first.stdout.strip())["sub"] == _claims(second.stdout.strip())["sub"]
    assert _claims(first.stdout.strip())["role"] == "operator"
    staff = _run(["token", "--role", "staff"], env)
    assert staff.returncode == 1 and "--tenant" in staff.stderr


def _postgres_processes(data_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(data_dir) in line and "grep" not in line]


@pytest.mark.slow
def test_serve_on_embedded_servers_is_ready_fast_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["FOODDISPATCH_DATA_DIR"] = str(tmp_path)
    started = time.monotonic()
    log = tmp_path / "serve.log"
    with log.open("w") as log_file:
        proc = subprocess.Popen([*FOODDISPATCH, "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        ready_after = None
        while time.monotonic() - started < 30:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        ready_after = time.monotonic() - started
                        break
            except OSError:
                time.sleep(0.1)
        assert ready_after is not None, log.read_text()[-2000:]
        assert ready_after < 15
        # A token issued beside the running server is accepted by it.
        token = _run(["token", "--role", "courier"], {"FOODDISPATCH_DATA_DIR": str(tmp_path)}).stdout.strip()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/me", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read())["role"] == "courier"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0
    deadline = time.monotonic() + 10
    while _postgres_processes(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _postgres_processes(tmp_path) == []
