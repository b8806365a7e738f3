"""Acknowledged only when durable: after a write the service confirms (a report's 201, a published
warning, a confirmed subscription, an audit entry), wait until enough replicas have it.

`WAIT` counts the replicas that acknowledged the writes *of its own connection*, and a write may have
gone out on any connection of the pool (or a batched script's own). So `durable` makes, on one
connection, a small write of its own and then WAITs: replication is one ordered stream per primary,
so a replica that has that write has every write that finished on that primary before it. On a
cluster each primary has its own stream, so the write goes to the slot of the data (`near`, a key
that was written), and WAIT to the same node. The mark is a key with a short expiry, one per hash
tag (a PUBLISH stores nothing, but a cluster does not put it in the replication stream).

The embedded server has no replicas: there the guarantee is its own `appendfsync always`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import redis.asyncio as aioredis

from foundation.errors import Unavailable
from foundation.settings import Settings
from foundation.store import keys
from foundation.store.cluster import as_cluster, is_cluster, primaries, socket_timeout
from foundation.store.raw_pipeline import Command, execute_raw

log = logging.getLogger(__name__)

WAIT_MS = 1000  # at most this long for the replicas, and at most half the client's socket timeout
MARK_TTL_MS = 60_000  # the mark only has to reach the replicas


async def durable(redis: aioredis.Redis, min_replicas: int | None, near: str, *, timeout_ms: int | None = None) -> None:
    """Return once `min_replicas` replicas have every write finished so far on the primary of the
    key `near`; raise `Unavailable` (503, retry) when fewer acknowledge in time. Nothing to wait for
    when `min_replicas` is 0."""
    if not min_replicas:
        return
    commands = wait_commands(redis, min_replicas, near, timeout_ms=timeout_ms)
    _, acknowledged = await execute_raw(redis, commands, near=near)
    check_acknowledged(acknowledged, commands)


def wait_commands(
    redis: aioredis.Redis, min_replicas: int, near: str, *, timeout_ms: int | None = None
) -> list[Command]:
    """The mark and the WAIT that `durable` sends, for a sender of raw batches to end a batch with
    (`BatchedScript`): one wait then covers every write of the batch. Sent to the node of `near`."""
    if timeout_ms is None:
        timeout_ms = min(WAIT_MS, int((socket_timeout(redis) or 2.0) * 500))
    return [("SET", keys.durable_mark(near), "", "PX", MARK_TTL_MS), ("WAIT", min_replicas, timeout_ms)]


def check_acknowledged(acknowledged: object, commands: list[Command]) -> None:
    """Raise unless the WAIT of `commands` (`wait_commands`) answered with enough replicas."""
    if isinstance(acknowledged, Exception):
        raise acknowledged
    min_replicas, timeout_ms = int(commands[-1][1]), int(commands[-1][2])
    if int(str(acknowledged)) < min_replicas:
        log.warning(
            "a write reached %s of the %d replicas it needs within %d ms: answering 503",
            acknowledged,
            min_replicas,
            timeout_ms,
        )
        raise Unavailable()


async def durable_all(redis: aioredis.Redis, min_replicas: int | None, written: Iterable[str]) -> None:
    """`durable` for writes to several keys: one wait on a single server, one per primary holding any
    of them on a cluster (at once)."""
    if not min_replicas:
        return
    near = list(written)
    if not near:
        return
    if not is_cluster(redis):
        await durable(redis, min_replicas, near[0])
        return
    cluster = as_cluster(redis)
    by_node = {cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key)).name: key for key in near}
    await asyncio.gather(*(durable(redis, min_replicas, key) for key in by_node.values()))


async def required_replicas(redis: aioredis.Redis, settings: Settings) -> int:
    """WARNCAST_REDIS_MIN_REPLICAS, or by default 1 when the primary has a replica at start (0 for
    the embedded server, and for a primary without replicas)."""
    if settings.embedded_redis:
        return 0
    connected = await _fewest_replicas(redis)
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


async def _fewest_replicas(redis: aioredis.Redis) -> int:
    """The primary's replicas; on a cluster, those of the primary that has fewest."""
    nodes = await primaries(redis)
    if not is_cluster(redis) or not nodes:
        return int((await redis.info("replication")).get("connected_slaves", 0))
    found = await redis.info("replication", target_nodes=nodes)  # target_nodes: a cluster's
    return min(int(info.get("connected_slaves", 0)) for info in found.values())
