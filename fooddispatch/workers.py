"""`fooddispatch serve --workers N`: N server processes on one port, kept alive by this parent.

The parent (the `serve` process) starts the embedded servers when they are used (once, here), checks
the live store, applies migrations, then starts N workers: each a fresh Python process
(`python -m fooddispatch.workers`) running the whole app, bound to the same port with `SO_REUSEPORT`
so the kernel spreads connections across them. Any request or socket may land on any worker: every
piece of shared state is in PostgreSQL and Redis, and what must happen once (a region's dispatch
round, a sweeper, the relay's settling) is under a lease or partitioned (docs/SCALING.md).

While the workers run, the parent holds a bound, non-listening `SO_REUSEPORT` socket on the port: no
other program can take the port between a worker's death and its restart, and the kernel never hands
a connection to a socket that does not listen.

A worker that dies is logged and started again after a back-off (0.5 s doubling up to 30 s, reset by
a life of 60 s); one that dies before it ever served on the first start stops the whole start (its own
error line is on stderr). SIGTERM or SIGINT to the parent stops every worker gracefully (SIGTERM: each
closes its sockets with 1001, flushes what was acked, leaves its leases), then the embedded servers.
Workers die with the parent (PR_SET_PDEATHSIG: SIGTERM), so a killed parent leaves none behind.

Each worker stamps `X-Fooddispatch-Instance: w<index>.<pid>` on its responses, so an operator (and the
multi-process tests) can tell which worker answered.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger("fooddispatch.workers")

READY_FD_ENV = "FOODDISPATCH_WORKER_READY_FD"
WORKER_ENV = "FOODDISPATCH_WORKER"
RESTART_FIRST = 0.5
RESTART_CAP = 30.0
HEALTHY_AFTER = 60.0
STOP_GRACE = 20.0  # a worker's graceful stop: sockets closed, history flushed, pools closed


class WorkerStartError(RuntimeError):
    """A worker died before it served on the first start (one line for the CLI)."""


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (without listening) a `SO_REUSEPORT` socket on host:port; the port it got is the one the
    workers bind. Raises OSError when another program holds the port."""
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(info[4])
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class Worker:
    index: int
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    served: bool = False  # said it listens, at least once
    deaths: int = 0  # in a row, for the back-off
    restart_at: float | None = None


@dataclass
class WorkerPool:
    """The parent's loop. `env` is the environment every worker gets (the resolved settings)."""

    count: int
    env: Mapping[str, str]
    on_ready: Callable[[], None] | None = None
    workers: list[Worker] = field(default_factory=list)
    stopping: bool = False
    restarts: int = 0

    def _spawn(self, worker: Worker) -> None:
        read_fd, write_fd = os.pipe()
        env = {**self.env, WORKER_ENV: str(worker.index), READY_FD_ENV: str(write_fd)}
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "fooddispatch.workers"], env=env, stdin=subprocess.DEVNULL,
            pass_fds=(write_fd,), preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        os.close(write_fd)
        worker.started_at = time.monotonic()
        worker.restart_at = None
        self._ready_pipes[read_fd] = worker

    def run(self) -> int:
        """Start the workers and keep them alive until SIGTERM/SIGINT; returns the exit code."""
        self._ready_pipes: dict[int, Worker] = {}
        previous = {sig: signal.signal(sig, self._stop_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        announced = False
        try:
            self.workers = [Worker(i + 1) for i in range(self.count)]
            for worker in self.workers:
                self._spawn(worker)
            while not self.stopping:
                self._read_ready(0.2)
                if not announced and all(w.served for w in self.workers):
                    announced = True
                    if self.on_ready is not None:
                        self.on_ready()
                self._reap(first_start=not announced)
            return 0
        finally:
            self._stop_all()
            for fd in list(self._ready_pipes):
                os.close(fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _read_ready(self, timeout: float) -> None:
        if not self._ready_pipes:
            time.sleep(timeout)
            return
        try:
            readable, _, _ = select.select(list(self._ready_pipes), [], [], timeout)
        except InterruptedError:
            return
        for fd in readable:
            data = os.read(fd, 64)
            worker = self._ready_pipes.pop(fd)
            os.close(fd)
            if data:
                worker.served = True
                log.info("worker %d (pid %d) is serving", worker.index, _pid(worker))

    def _reap(self, *, first_start: bool) -> None:
        now = time.monotonic()
        for worker in self.workers:
            process = worker.process
            if process is not None and process.poll() is not None:
                code = process.returncode
                worker.process = None
                if first_start and not worker.served:
                    raise WorkerStartError(f"worker {worker.index} exited before it served (exit code {code})")
                lived = now - worker.started_at
                worker.deaths = 1 if lived >= HEALTHY_AFTER else worker.deaths + 1
                delay = min(RESTART_CAP, RESTART_FIRST * 2 ** (worker.deaths - 1))
                worker.restart_at = now + delay
                self.restarts += 1
                log.warning("worker %d (pid %d) died (%s) after %.1f s; restarting it in %.1f s",
                            worker.index, process.pid, _exit_reason(code), lived, delay)
            if worker.process is None and worker.restart_at is not None and now >= worker.restart_at:
                self._spawn(worker)
                log.info("worker %d restarted (pid %d)", worker.index, _pid(worker))

    def _stop_all(self) -> None:
        live = [w.process for w in self.workers if w.process is not None and w.process.poll() is None]
        for process in live:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in live:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop within %.0f s; killing it", process.pid, STOP_GRACE)
                process.kill()
                process.wait(5)


def _pid(worker: Worker) -> int:
    return worker.process.pid if worker.process is not None else 0


def _signal(process: subprocess.Popen, sig: int) -> None:
    try:
        process.send_signal(sig)
    except ProcessLookupError:
        pass


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _die_with_parent() -> None:
    """In the worker before exec: when the parent dies, the kernel sends us SIGTERM (a graceful stop)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def worker_main() -> int:
    """One worker: the whole app on the shared port, until SIGTERM/SIGINT."""
    import asyncio

    from fooddispatch.cli import CliError, _logging, run_until_signalled, serve_app
    from fooddispatch.config import ConfigError, Settings

    index = os.environ.get(WORKER_ENV, "0")
    ready_fd = int(os.environ.get(READY_FD_ENV, "-1"))
    try:
        settings = Settings.from_env()
        _logging(settings)
        listening = asyncio.Event()

        async def main(stop: asyncio.Event) -> None:
            async def tell_parent() -> None:
                await listening.wait()
                if ready_fd >= 0:
                    os.write(ready_fd, b"1")
                    os.close(ready_fd)

            told = asyncio.create_task(tell_parent())
            try:
                await serve_app(settings, stop, announce=False, listening=listening, reuse_port=True,
                                instance=f"w{index}.{os.getpid()}")
            finally:
                told.cancel()

        asyncio.run(run_until_signalled(main))
    except (CliError, ConfigError) as exc:
        print(f"fooddispatch: worker {index}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
