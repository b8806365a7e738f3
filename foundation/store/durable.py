"""Acknowledged only when durable: after a write the service confirms (a report's 201, a published
warning, a confirmed subscription, an audit entry), wait until enough replicas have it.

`WAIT` counts the replicas that acknowledged the writes *of its own connection*, and a write may have
gone out on any connection of the pool (or a batched script's own). So `durable` sends, on one
connection, a PUBLISH to a channel nobody listens to (replicated like a write, storing nothing) and
then WAIT: replication is one ordered stream, so a replica that has the PUBLISH has every write
that finished before it. (Redis Cluster replicates PUBLISH differently; cluster mode is refused.)

The embedded server has no replicas: there the guarantee is its own `appendfsync always`.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from foundation.errors import Unavailable
from foundation.settings import Settings
from foundation.store import keys
from foundation.store.raw_pipeline import execute_raw

log = logging.getLogger(__name__)

WAIT_MS = 1000  # at most this long for the replicas, and at most half the client's socket timeout


async def durable(redis: aioredis.Redis, min_replicas: int | None, *, timeout_ms: int | None = None) -> None:
    """Return once `min_replicas` replicas have every write finished so far; raise `Unavailable`
    (503, retry) when fewer acknowledge in time. Nothing to wait for when `min_replicas` is 0."""
    if not min_replicas:
        return
    if timeout_ms is None:
        socket_timeout = redis.connection_pool.connection_kwargs.get("socket_timeout") or 2.0
        timeout_ms = min(WAIT_MS, int(socket_timeout * 500))
    _, acknowledged = await execute_raw(redis, [("PUBLISH", keys.DURABLE_MARK, ""), ("WAIT", min_replicas, timeout_ms)])
    if isinstance(acknowledged, Exception):
        raise acknowledged
    if int(acknowledged) < min_replicas:
        log.warning(
            "a write reached %d of the %d replicas it needs within %d ms: answering 503",
            acknowledged,
            min_replicas,
            timeout_ms,
        )
        raise Unavailable()


async def required_replicas(redis: aioredis.Redis, settings: Settings) -> int:
    """WARNCAST_REDIS_MIN_REPLICAS, or by default 1 when the primary has a replica at start (0 for
    the embedded server, and for a primary without replicas)."""
    if settings.embedded_redis:
        return 0
    connected = int((await redis.info("replication")).get("connected_slaves", 0))
    wanted = settings.redis_min_replicas
    if wanted is None:
        wanted = 1 if connected >= 1 else 0
    elif wanted > connected:
        log.warning(
            "WARNCAST_REDIS_MIN_REPLICAS=%d but the primary has %d replicas now: durable writes answer 503 "
            "until enough replicas connect",
            wanted,
            connected,
        )
    log.info("durable writes wait for %d replica(s) (the primary has %d)", wanted, connected)
    return wanted
