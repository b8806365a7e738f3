"""Concurrent calls of one script share round trips, and each still gets its own reply or error."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError

from publisher.batched_script import BatchedScript
from publisher.raw_pipeline import execute_raw

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
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = aioredis.from_url("unix:///nonexistent/redis.sock", decode_responses=True)
    script = BatchedScript(client, COUNT)
    outcomes = await asyncio.gather(*(script(["t:x"], ["ok"]) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, RedisConnectionError) for o in outcomes)
    await client.aclose()


async def test_a_silent_redis_times_the_batch_out_once(tmp_path):
    import redis.asyncio as aioredis
    from redis.exceptions import TimeoutError as RedisTimeoutError

    async def answers_hello_then_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if b"GET" in data:
                    continue  # our batch: never answered
                commands = data.count(b"\r\n*") + data.startswith(b"*")
                writer.write(b"+OK\r\n" * commands)  # the client's handshake
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_unix_server(answers_hello_then_nothing, path=str(tmp_path / "silent.sock"))
    client = aioredis.from_url(f"unix://{tmp_path}/silent.sock", socket_timeout=0.2)
    try:
        with pytest.raises(RedisTimeoutError):
            await execute_raw(client, [("GET", "a"), ("GET", "b")])
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
