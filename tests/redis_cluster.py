"""A real Redis Cluster on 127.0.0.1 from the bundled redis-server: the test suite's second store
(tests/conftest.py) and the benchmarks' `--cluster`.

Each node is its own redis-server process with `cluster-enabled yes`; `redis-cli --cluster create`
(the bundled one) assigns the 16,384 slots and introduces the nodes, and the cluster is ready when
every node says `cluster_state:ok`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis as sync_redis

from foundation.store.connection import redis_server_binary

PORT_CEILING = 55_000  # a node's cluster bus listens on its port + 10,000, which must stay under 65,536


def free_port(below: int = PORT_CEILING) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < below:
            return port


@dataclass
class ClusterNode:
    directory: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def args(self, appendonly: bool) -> list[str]:
        return [
            str(redis_server_binary()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
            "--appendonly",
            "yes" if appendonly else "no",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.directory / "redis.log"),
        ]

    def client(self) -> sync_redis.Redis:
        return sync_redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, decode_responses=True)


@dataclass
class LocalCluster:
    """`masters` primaries (and `replicas` replicas each) on free ports under one directory."""

    masters: int = 3
    replicas: int = 0
    appendonly: bool = False  # with it, fsynced on every write: a node SIGKILLed comes back whole
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wc-cluster-")))
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """One node's address: the service finds the others (and that it is a cluster) from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self, timeout: float = 30.0) -> LocalCluster:
        for _ in range(self.masters * (1 + self.replicas)):
            port = free_port()
            node = ClusterNode(self.directory / str(port), port)
            node.directory.mkdir(parents=True)
            self.nodes.append(node)
            self.run(node)
        for node in self.nodes:
            _wait(f"node {node.port} answers", lambda n=node: _answers(n), timeout)  # type: ignore[misc]
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        cli = redis_server_binary().with_name("redis-cli")
        subprocess.run(
            [str(cli), "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=timeout,
        )
        _wait("every node sees the cluster ok", self.settled, timeout)
        return self

    def run(self, node: ClusterNode) -> None:
        """Start (or start again, on its own files) one node's redis-server."""
        node.proc = subprocess.Popen(node.args(self.appendonly), stdin=subprocess.DEVNULL)

    def node_of(self, key: str) -> ClusterNode:
        """The primary that serves `key`'s slot, as the first node that answers sees it."""
        for asked in self.nodes:
            client = asked.client()
            try:
                slot = int(client.cluster("keyslot", key))
                for start, end, primary, *_ in client.cluster("slots"):
                    if start <= slot <= end:
                        return next(n for n in self.nodes if n.port == int(primary[1]))
            except sync_redis.RedisError:
                continue  # down or hung: ask another
            finally:
                client.close()
        raise LookupError(f"no node serves the slot of {key}")

    def wait_state(self, state: str, nodes: list[ClusterNode], timeout: float = 30.0) -> None:
        """Until every one of `nodes` says `cluster_state:<state>` (`fail` once a primary is gone)."""
        _wait(f"cluster_state:{state}", lambda: all(_state(node) == state for node in nodes), timeout)

    def settled(self) -> bool:
        return all(_state(node) == "ok" for node in self.nodes)

    def primaries(self) -> list[ClusterNode]:
        found = []
        for node in self.nodes:
            client = node.client()
            try:
                if client.info("replication").get("role") == "master":
                    found.append(node)
            finally:
                client.close()
        return found

    def flush(self) -> None:
        for node in self.primaries():
            client = node.client()
            try:
                client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _state(node: ClusterNode) -> str | None:
    """What the node says of the cluster (`ok`, `fail`), or None when it does not answer."""
    client = node.client()
    try:
        return str(client.cluster("info").get("cluster_state"))
    except sync_redis.RedisError:
        return None
    finally:
        client.close()


def _answers(node: ClusterNode) -> bool:
    client = node.client()
    try:
        return bool(client.ping())
    except sync_redis.RedisError:
        return False
    finally:
        client.close()


def _wait(what: str, condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting until {what}")
        time.sleep(0.05)
