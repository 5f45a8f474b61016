"""`serve` refuses, in one line and before starting anything, a live store it cannot use as configured:
a cluster URL that does not answer, a cluster with slots no node serves, a cluster setting that does not
match the server, and workers whose PostgreSQL connections would not fit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fooddispatch.embedded import EmbeddedError
from fooddispatch.valkey_cluster import ClusterNode, EmbeddedCluster, valkey_server_binary

FOODDISPATCH = [sys.executable, "-m", "fooddispatch"]


def _serve(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("FOODDISPATCH_", "DATABASE_URL", "REDIS_URL"))}
    full.update({"FOODDISPATCH_DATA_DIR": str(tmp_path), **env})
    return subprocess.run([*FOODDISPATCH, "serve", *args], capture_output=True, text=True, env=full, timeout=60)


def _one_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fooddispatch: error: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_cluster_url_that_does_not_answer_stops_the_start(database_url: str, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    line = _one_line(_serve(["--workers", "2"], {"DATABASE_URL": database_url, "REDIS_URL": url,
                                                  "FOODDISPATCH_REDIS_CLUSTER": "true"}, tmp_path))
    assert f"cannot reach Redis at {url}" in line


def test_a_cluster_with_unassigned_slots_stops_the_start(database_url: str, tmp_path: Path) -> None:
    ports = [_free_port(), _free_port()]
    try:
        binary = valkey_server_binary()
    except EmbeddedError as exc:
        pytest.skip(str(exc))
    node = ClusterNode(ports[0], ports[1], tmp_path / "node", binary)  # cluster mode, no slots
    node.start()
    try:
        node.wait_ready(time.monotonic() + 10)
        line = _one_line(_serve([], {"DATABASE_URL": database_url, "REDIS_URL": f"redis://127.0.0.1:{ports[0]}/0",
                                     "FOODDISPATCH_REDIS_CLUSTER": "true"}, tmp_path))
        assert "16384 of 16384 slots assigned to no node" in line
    finally:
        node.stop()


def test_the_cluster_setting_must_match_the_server(database_url: str, redis_url: str, live_cluster: EmbeddedCluster,
                                                   tmp_path: Path) -> None:
    on_single = _one_line(_serve([], {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                                      "FOODDISPATCH_REDIS_CLUSTER": "true"}, tmp_path))
    assert "is not a cluster node" in on_single
    on_cluster = _one_line(_serve([], {"DATABASE_URL": database_url, "REDIS_URL": live_cluster.url}, tmp_path))
    assert "is a Redis Cluster node: set FOODDISPATCH_REDIS_CLUSTER=true" in on_cluster


def test_live_cluster_with_an_external_redis_is_refused(tmp_path: Path) -> None:
    line = _one_line(_serve(["--live-cluster", "3"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, tmp_path))
    assert "--live-cluster starts a local Valkey Cluster: unset REDIS_URL" in line


def test_workers_whose_connections_do_not_fit_postgres_stop_the_start(database_url: str, redis_url: str,
                                                                       tmp_path: Path) -> None:
    line = _one_line(_serve(["--workers", "64"], {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                                                  "FOODDISPATCH_DB_POOL_MAX": "20"}, tmp_path))
    assert "64 worker(s) × 25 PostgreSQL connections each" in line and "max_connections" in line


@pytest.mark.parametrize("workers", ["0", "65", "two"])
def test_a_bad_worker_count_is_a_usage_error(workers: str, tmp_path: Path) -> None:
    out = _serve(["--workers", workers], {}, tmp_path)
    assert out.returncode == 2 and "--workers" in out.stderr


