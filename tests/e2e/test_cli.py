"""The command line as a user runs it: help, token, serve's lifecycle, one-line failures."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

FOODDISPATCH = [sys.executable, "-m", "fooddispatch"]


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 60,
         cwd: Path | None = None) -> subprocess.CompletedProcess:
    unset = ("DATABASE_URL", "REDIS_URL", "FOODDISPATCH_DATA_DIR", "FOODDISPATCH_JWT_SECRET")
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    full_env.update(env or {})
    return subprocess.run([*FOODDISPATCH, *args], capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=cwd)


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


@pytest.fixture
def data_folder() -> Iterator[Path]:
    """A data folder outside pytest's tmp tree: a concurrent pytest run prunes old base folders, and
    the embedded PostgreSQL must not lose its folder under it."""
    path = Path(tempfile.mkdtemp(prefix="fooddispatch-cli-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_token_creates_an_account_once_reuses_it_and_says_which_data_folder(tmp_path: Path,
                                                                             data_folder: Path) -> None:
    env = {"FOODDISPATCH_DATA_DIR": str(data_folder)}
    assert _run(["migrate"], env).returncode == 0  # the data folder a server would run on
    first = _run(["token", "--role", "operator"], env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("\n") == 1  # the token alone on stdout; where it is valid on stderr
    where = data_folder.resolve()
    assert f"the database in {where}" in first.stderr and f"the secret in {where}" in first.stderr
    second = _run(["token", "--role", "operator"], env)
    assert _claims(first.stdout.strip())["sub"] == _claims(second.stdout.strip())["sub"]
    assert _claims(first.stdout.strip())["role"] == "operator"
    staff = _run(["token", "--role", "staff"], env)
    assert staff.returncode == 1 and "--tenant" in staff.stderr


def test_token_run_where_no_data_folder_is_refuses_and_creates_none(tmp_path: Path) -> None:
    # Run from another folder than the server's: a new data folder would sign tokens with a new
    # secret and hold a new account, which the running server would reject.
    out = _run(["token", "--role", "operator"], cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    assert str(tmp_path.resolve() / ".fooddispatch") in out.stderr and "FOODDISPATCH_DATA_DIR" in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


class _Stranger(BaseHTTPRequestHandler):
    """Another HTTP server on the port: answers everything with 200 and notes what it was asked."""

    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        body = b'{"status": "ready", "paths": {}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.slow
def test_demo_on_a_port_another_server_holds_stops_before_sending_it_anything(tmp_path: Path, servers) -> None:
    stranger = ThreadingHTTPServer(("127.0.0.1", 0), _Stranger)
    threading.Thread(target=stranger.serve_forever, daemon=True).start()
    port = stranger.server_address[1]
    try:
        env = {"FOODDISPATCH_DATA_DIR": str(tmp_path), "DATABASE_URL": servers[0], "REDIS_URL": servers[1]}
        out = _run(["demo", "--headless", "--minutes", "0.2", "--port", str(port)], env, timeout=90)
    finally:
        stranger.shutdown()
        stranger.server_close()
    assert out.returncode == 1, out.stdout[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr
    assert _Stranger.seen == []
    assert "seeding" not in out.stdout


async def test_demo_waits_only_for_its_own_server(aiohttp_server) -> None:
    from aiohttp import web

    from fooddispatch.cli import INSTANCE_HEADER, CliError
    from fooddispatch.demo import wait_ready

    answering = ["theirs"]

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"}, headers={INSTANCE_HEADER: answering[0]})

    app = web.Application()
    app.router.add_get("/readyz", ready)
    other = await aiohttp_server(app)
    base_url = str(other.make_url("")).rstrip("/")
    ours, listening = asyncio.create_task(asyncio.sleep(3600)), asyncio.Event()
    listening.set()  # our own server listens, elsewhere: this one answers at the address
    try:
        with pytest.raises(CliError, match="another server answers"):
            await wait_ready(base_url, ours, within=10, listening=listening, instance="ours")
        answering[0] = "ours"
        await wait_ready(base_url, ours, within=10, listening=listening, instance="ours")
    finally:
        ours.cancel()


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
