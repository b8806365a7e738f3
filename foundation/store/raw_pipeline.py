"""Many Redis commands in one write, packed by hiredis, replies read in order.

redis-py's own pipeline packs each argument in Python and wraps every reply in timeouts and
retries; on the hottest paths (500 subscriber lookups per dispatch segment, batched intake
scripts) that costs more than Redis itself. It also retries a whole pipeline after a connection
error, which would run non-idempotent commands twice; here a failure is simply raised.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = tuple[str | bytes | int | float, ...]


async def execute_raw(redis: aioredis.Redis, commands: Sequence[Command]) -> list[Any]:
    """The replies of `commands`, in order; a command's error reply is returned as its exception."""
    if not commands:
        return []
    pool = redis.connection_pool
    connection = await pool.get_connection()
    try:
        return await _round_trip(connection, commands, connection.socket_timeout)
    finally:
        await pool.release(connection)


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
    # hiredis' stub types pack_command's argument as a 1-tuple; it takes a command of any length.
    packed = b"".join(map(hiredis.pack_command, commands))  # type: ignore[arg-type]
    try:
        # One deadline for the whole batch instead of one per reply.
        async with asyncio.timeout(seconds):
            await connection.send_packed_command(packed, check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response(timeout=math.inf))
                except ResponseError as exc:  # this command's own error; the connection is fine
                    replies.append(exc)
    except TimeoutError as exc:
        await connection.disconnect()
        raise RedisTimeoutError(f"Redis did not answer {len(commands)} commands in time") from exc
    except BaseException:
        await connection.disconnect()  # replies may be left unread: never reuse it
        raise
    return replies
