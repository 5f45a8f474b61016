"""The app under benchmark in a process of its own, driven line by line over stdin/stdout.

A bench script starts itself again with `--serve ARGS...`; that child serves the app
and answers each command line with one JSON line. Keeping the server out of the load
generator's process means the generator's CPU never counts against the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any


class Server:
    def __init__(self, script: str, serve_args: list[str], pg_url: str, redis_url: str, folder: Path, port: int,
                 extra_env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "BENCH_DIR": str(folder),
               **(extra_env or {})}
        self.proc = subprocess.Popen([sys.executable, script, "--serve", *serve_args], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base = f"http://127.0.0.1:{port}"

    def ask(self, command: str | None = None) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the server process exited")
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_server(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """The child's entry point: run `main`, under cProfile when BENCH_PROFILE names a stats file.
    The profiler counts CPU time, so time spent waiting on other processes does not show."""
    profile = os.environ.get("BENCH_PROFILE")
    if not profile:
        asyncio.run(main())
        return
    import cProfile

    profiler = cProfile.Profile(time.process_time)
    profiler.runctx("asyncio.run(main())", {"asyncio": asyncio}, {"main": main})
    profiler.dump_stats(profile)
