"""What differs between a Redis Cluster client and a single server's, for the few modules that care.

Everything else (single-key commands, transactions on one slot, streams, scans of one key) is the
same call on both: redis-py's cluster client routes a command to the node of its key's slot and
follows MOVED and ASK. What is not the same:

- a connection pool: a cluster client has one per node (`socket_timeout` reads the shared setting);
- raw pipelines and scripts run in bulk: grouped per node (`foundation.store.raw_pipeline`);
- WAIT counts one primary's replicas: `durable` waits on the node that holds the write;
- a scan of every key: one per primary (`primaries`).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster


def is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)


def as_cluster(redis: aioredis.Redis) -> RedisCluster:
    assert isinstance(redis, RedisCluster)
    return redis


def socket_timeout(redis: aioredis.Redis) -> float | None:
    """The client's reply timeout (WARNCAST_REDIS_TIMEOUT), on either kind of client."""
    if isinstance(redis, RedisCluster):
        return redis.nodes_manager.connection_kwargs.get("socket_timeout")
    return redis.connection_pool.connection_kwargs.get("socket_timeout")


async def primaries(redis: aioredis.Redis) -> list[ClusterNode] | None:
    """The cluster's primaries (for commands that need every node, like a scan of all keys), or None
    for a single server."""
    if not isinstance(redis, RedisCluster):
        return None
    await redis.initialize()  # a no-op once the client knows the cluster
    return redis.get_primaries()
