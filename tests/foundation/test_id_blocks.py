"""Ids reserved a block at a time: unique across holders, rising within one, and the next block
reserved before the current one runs out (so no caller waits for it)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from foundation.store.id_blocks import IdBlocks
from tests.conftest import RedisStore

COUNTER = "t:ids"


@pytest.fixture
async def redis(redis_store: RedisStore, redis_socket: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_store.async_client()
    yield client
    await client.aclose()


async def test_ids_are_unique_across_holders_and_rise_within_each(redis):
    holders = [IdBlocks(redis, COUNTER, block=10), IdBlocks(redis, COUNTER, block=10)]
    taken: list[list[int]] = [[], []]

    async def caller(n: int) -> None:
        for _ in range(20):
            holder = n % 2
            taken[holder].append(await holders[holder].next())

    await asyncio.gather(*(caller(n) for n in range(16)))
    every = taken[0] + taken[1]
    assert len(set(every)) == len(every) == 320
    for ids in taken:
        assert ids == sorted(ids)


async def test_the_next_block_is_reserved_while_half_of_the_current_one_is_left(redis):
    ids = IdBlocks(redis, COUNTER, block=10)
    first = [await ids.next() for _ in range(5)]
    assert first == [1, 2, 3, 4, 5]
    assert await redis.get(COUNTER) == "10"  # half left: nothing reserved yet
    await ids.next()  # fewer than half left: the next block is asked for meanwhile
    for _ in range(100):
        if await redis.get(COUNTER) == "20":
            break
        await asyncio.sleep(0.01)
    assert await redis.get(COUNTER) == "20"
    assert [await ids.next() for _ in range(14)] == list(range(7, 21))


async def test_a_reservation_that_failed_ahead_is_asked_again_when_the_block_is_needed(redis):
    ids = IdBlocks(redis, COUNTER, block=10)
    assert [await ids.next() for _ in range(5)] == [1, 2, 3, 4, 5]
    with socket.socket() as unused:  # a port nothing listens on: the reservation ahead fails
        unused.bind(("127.0.0.1", 0))
        away = aioredis.Redis(port=unused.getsockname()[1], retry=Retry(NoBackoff(), 0))  # fails at once
    ids.redis = away
    assert await ids.next() == 6  # the current block still serves
    await asyncio.sleep(0.1)
    ids.redis = redis  # Redis is back before the block runs out: nobody sees the old failure
    await away.aclose()
    assert [await ids.next() for _ in range(14)] == list(range(7, 21))
