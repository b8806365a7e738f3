"""Many Redis commands in one write, packed by hiredis, replies read in order.

redis-py's own pipeline packs each argument in Python and wraps every reply in timeouts and
retries; on the hottest paths (500 subscriber lookups per dispatch segment, batched intake
scripts) that costs more than Redis itself. It also retries a whole pipeline after a connection
error, which would run non-idempotent commands twice; here a failure is simply raised.

On a Redis Cluster the commands are grouped by the node that serves each one's key (its first key,
or an EVAL's first declared key) and sent to the nodes at once, one write each; a command answered
MOVED or ASK (slots moving between nodes) is sent again where the cluster says, so neither ever
reaches a caller. `near` sends every command to the node of one key (keyless ones like WAIT).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import AsyncBaseParser
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import AskError, ClusterDownError, MovedError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from foundation.store.modes import closed_under_us, note_hung, refuse_if_hung

Command = tuple[str | bytes | int | float, ...]
_REROUTES = 3  # MOVED/ASK/TRYAGAIN answers followed per command before giving up (a resharding)


async def execute_raw(redis: aioredis.Redis, commands: Sequence[Command], *, near: str | None = None) -> list[Any]:
    """The replies of `commands`, in order; a command's error reply is returned as its exception."""
    if not commands:
        return []
    if isinstance(redis, RedisCluster):
        return await _per_node(redis, commands, near)
    pool = redis.connection_pool
    connection = await pool.get_connection()
    try:
        return await _round_trip(connection, commands, connection.socket_timeout)
    finally:
        await pool.release(connection)


async def _per_node(cluster: RedisCluster, commands: Sequence[Command], near: str | None) -> list[Any]:
    await cluster.initialize()  # a no-op once the client knows the cluster
    replies: list[Any] = [None] * len(commands)
    pending = list(range(len(commands)))
    asked: dict[int, ClusterNode] = {}  # command -> the node an ASK sent it to
    for attempt in range(_REROUTES + 1):
        by_node: dict[tuple[ClusterNode, bool], list[int]] = defaultdict(list)
        for i in pending:
            if i in asked:
                by_node[asked[i], True].append(i)
            else:
                by_node[_node_of(cluster, near if near is not None else _routing_key(commands[i])), False].append(i)
        results = await _on_nodes(commands, by_node)
        pending, moved = [], False
        for group, found in zip(by_node.values(), results, strict=True):
            for i, reply in zip(group, found, strict=True):
                if isinstance(reply, AskError) and not isinstance(reply, MovedError) and attempt < _REROUTES:
                    target = cluster.nodes_manager.get_node(reply.host, reply.port)
                    if target is None:  # a node the client has not met: learn the cluster again
                        moved = True
                    else:
                        asked[i] = target
                    pending.append(i)
                elif isinstance(reply, (MovedError, TryAgainError)) and attempt < _REROUTES:
                    asked.pop(i, None)
                    moved = moved or isinstance(reply, MovedError)
                    pending.append(i)
                else:
                    replies[i] = reply
        if not pending:
            return replies
        if moved:  # slots moved: learn where they are now
            await cluster.nodes_manager.initialize()
        else:
            await asyncio.sleep(0.05 * (attempt + 1))  # TRYAGAIN: a migration is under way
    raise ClusterDownError("the cluster kept moving the slots of a batch")  # pragma: no cover - not reached


async def _on_nodes(commands: Sequence[Command], by_node: dict[tuple[ClusterNode, bool], list[int]]) -> list[list[Any]]:
    """Each node's commands sent at once; the usual batch (one slot, like the intake script's, or
    `near`) goes to one node, awaited here without a task to gather."""
    if len(by_node) == 1:
        [((node, asking), group)] = by_node.items()
        return [await _on_node(node, [commands[i] for i in group], asking=asking)]
    return await asyncio.gather(
        *(_on_node(node, [commands[i] for i in group], asking=asking) for (node, asking), group in by_node.items())
    )


def _routing_key(command: Command) -> str:
    name = str(command[0]).upper()
    if name in ("EVALSHA", "EVAL"):
        if int(command[2]) == 0:
            raise ValueError(f"a {name} without keys has no node on a cluster: give `near`")
        return str(command[3])
    return str(command[1])


def _node_of(cluster: RedisCluster, key: str) -> ClusterNode:
    return cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key))


async def _on_node(node: ClusterNode, commands: list[Command], *, asking: bool) -> list[Any]:
    connection = node.acquire_connection()
    # ASK: the node takes a command only right after ASKING, each time.
    sent = [part for command in commands for part in (("ASKING",), command)] if asking else commands
    try:
        replies = await _round_trip(connection, sent, connection.socket_timeout)
    except AttributeError as exc:
        raise closed_under_us(exc) from exc
    finally:
        node.release(connection)
    return replies[1::2] if asking else replies


class OwnConnection:
    """A connection taken out of the client's pool for good, for one sender of raw batches that sends
    one batch at a time (a `BatchedScript`).

    Skipping the pool saves its lock and checks on every batch, and this connection has no socket
    timeout of its own: redis-py would time each write in a task of its own, while the batch is
    timed here as a whole (by the client's socket timeout). The client's `aclose()` closes it with
    the pool's other connections; a failed batch gives it back, and the next batch takes another.
    """

    def __init__(self, redis: aioredis.Redis) -> None:
        self.pool = redis.connection_pool
        self.timeout = self.pool.connection_kwargs.get("socket_timeout")
        self._connection: aioredis.connection.AbstractConnection | None = None

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        if not commands:
            return []
        if self._connection is None:
            self._connection = await self.pool.get_connection()
            self._connection.socket_timeout = None  # ours alone until it fails
        try:
            return await _round_trip(self._connection, commands, self.timeout)
        except BaseException:
            # _round_trip disconnected it: back to the pool as it came, and the next batch takes another.
            connection, self._connection = self._connection, None
            connection.socket_timeout = self.timeout
            await self.pool.release(connection)
            raise


async def _round_trip(
    connection: aioredis.connection.AbstractConnection, commands: Sequence[Command], seconds: float | None
) -> list[Any]:
    refuse_if_hung(connection)
    # hiredis' stub types pack_command's argument as a 1-tuple; it takes a command of any length.
    packed = b"".join(map(hiredis.pack_command, commands))  # type: ignore[arg-type]
    # One deadline for the whole batch instead of one per write and reply: with a socket timeout of
    # its own, redis-py sends each write from a task of its own (asyncio.wait_for), a loop turn later
    # (a pooled or cluster node's connection; an `OwnConnection` has none).
    own_timeout, connection.socket_timeout = connection.socket_timeout, None
    try:
        async with asyncio.timeout(seconds):
            await connection.send_packed_command(packed, check_health=False)  # connects if need be
            parser = connection._parser
            assert isinstance(parser, AsyncBaseParser)  # every asyncio connection's
            # Straight from the connection's parser: the connection's read_response wraps each reply
            # in a timeout and checks of its own (three times the parser's cost per reply) and raises
            # a command's error reply, which the parser hands back as its exception, as we want it.
            replies: list[Any] = [await parser.read_response() for _ in commands]
    except TimeoutError as exc:
        note_hung(connection)
        await connection.disconnect()
        raise RedisTimeoutError(f"Redis did not answer {len(commands)} commands in time") from exc
    except OSError as exc:  # a reset socket: what the connection's own read would have called it
        await connection.disconnect()
        raise RedisConnectionError(f"Redis connection lost: {exc}") from exc
    except BaseException:
        await connection.disconnect()  # replies may be left unread: never reuse it
        raise
    finally:
        connection.socket_timeout = own_timeout
    return replies
