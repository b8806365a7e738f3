"""Concurrent calls of one script share round trips, and each still gets its own reply or error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from foundation.store.batched_script import BatchedScript
from foundation.store.cluster import is_cluster
from foundation.store.raw_pipeline import execute_raw

COUNT = (
    "local n = redis.call('INCR', KEYS[1]) if ARGV[1] == 'fail' then return redis.error_reply('no ' .. n) end return n"
)


async def test_concurrent_calls_share_round_trips_and_keep_their_own_replies(services):
    script = BatchedScript(services.redis, COUNT)
    replies = await asyncio.gather(*(script(["t:count"], ["ok"]) for _ in range(50)))
    assert sorted(replies) == list(range(1, 51))  # every call ran once
    assert script.calls == 50 and script.round_trips < 10


async def test_one_failing_call_does_not_fail_its_batch(services):
    script = BatchedScript(services.redis, COUNT)
    outcomes = await asyncio.gather(
        *(script(["t:mixed"], ["fail" if i == 3 else "ok"]) for i in range(8)), return_exceptions=True
    )
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], ResponseError) and "no 4" in str(errors[0])
    assert await services.redis.get("t:mixed") == "8"
    assert await script(["t:mixed"], ["ok"]) == 9  # the connection is still good


async def test_scripts_lost_by_a_redis_restart_are_loaded_again(services):
    script = BatchedScript(services.redis, COUNT)
    assert await script(["t:flush"], ["ok"]) == 1
    await services.redis.script_flush()  # what a restarted redis-server has forgotten
    assert await asyncio.gather(script(["t:flush"], ["ok"]), script(["t:flush"], ["ok"])) == [2, 3]


async def test_an_unreachable_redis_fails_every_call_of_the_batch():
    client = aioredis.from_url("unix:///nonexistent/redis.sock", decode_responses=True)
    script = BatchedScript(client, COUNT)
    outcomes = await asyncio.gather(*(script(["t:x"], ["ok"]) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, RedisConnectionError) for o in outcomes)
    await client.aclose()


@contextlib.asynccontextmanager
async def silent_redis(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    """A client of a server that answers the client's handshake and never anything after it."""

    async def answers_handshake_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if b"GET" in data or b"EVALSHA" in data:
                    continue  # a batch: never answered
                writer.write(b"+OK\r\n" * (data.count(b"\r\n*") + data.startswith(b"*")))
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_unix_server(answers_handshake_only, path=str(tmp_path / "silent.sock"))
    client = aioredis.from_url(f"unix://{tmp_path}/silent.sock", socket_timeout=0.2)
    try:
        yield client
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


async def test_a_silent_redis_times_the_batch_out_once(tmp_path):
    async with silent_redis(tmp_path) as client:
        with pytest.raises(RedisTimeoutError):
            await execute_raw(client, [("GET", "a"), ("GET", "b")])


async def test_a_silent_redis_times_a_script_batch_out_and_frees_its_connection(tmp_path):
    async with silent_redis(tmp_path) as client:
        with pytest.raises(RedisTimeoutError):
            await BatchedScript(client, COUNT)(["t:x"], ["ok"])
        assert not client.connection_pool._in_use_connections  # given back, not leaked


def in_use(redis) -> int:
    """Connections taken out of the pool(s) and not given back."""
    if is_cluster(redis):
        return sum(len(n._connections) - len(n._free) for n in redis.get_nodes())
    return len(redis.connection_pool._in_use_connections)


async def test_a_dropped_connection_fails_its_batch_and_the_next_batch_connects_again(services):
    script = BatchedScript(services.redis, COUNT)
    assert await script(["t:drop"], ["ok"]) == 1
    before = in_use(services.redis)
    await services.redis.client_kill_filter(_type="normal", skipme=True)  # the script's own connection too
    try:
        await script(["t:drop"], ["ok"])  # the write may still go out before the close is seen
    except Exception as exc:  # noqa: BLE001 - whichever error redis-py raises for a closed socket
        assert "connection" in type(exc).__name__.lower() or "closed" in str(exc).lower(), exc
    assert await script(["t:drop"], ["ok"]) >= 2
    # Nothing leaked. On a cluster the background loops' connections were killed too, and the client
    # gives theirs back once it has learnt the cluster again: a moment, not never.
    for _ in range(100):
        if in_use(services.redis) <= before:
            break
        await asyncio.sleep(0.01)
    assert in_use(services.redis) <= before
