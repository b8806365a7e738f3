"""Consumer-group plumbing shared by the planner, the dispatch workers and the notifier, and typed
views of our Redis client's replies and field arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT, StreamRangeResponse, XReadGroupResponse, XReadResponse

Entry = tuple[str, dict[str, str]]

# redis-py annotates replies for every client configuration at once (bytes or str, RESP2 or RESP3).
# Ours (foundation.store.connection) decodes responses and speaks RESP2, so names and values are
# always `str` and XREAD replies are lists of [stream, entries] pairs. These views narrow the
# annotations to that; they cost nothing at run time.


def decoded(reply: bytes | str | list[bytes | str]) -> str:
    """A string reply (GET, HGET, XADD's id, ...; RPOP without a count, whose annotation also has
    the list that RPOP with a count returns)."""
    return cast(str, reply)


def decoded_list(reply: list[Any]) -> list[str]:
    """A list of names (ZRANGE without scores, GEOSEARCH without extras, LRANGE, ...)."""
    return cast(list[str], reply)


def decoded_hash(reply: dict[bytes | str, bytes | str]) -> dict[str, str]:
    """An HGETALL reply."""
    return cast(dict[str, str], reply)


def entries(reply: StreamRangeResponse | list[bytes | str] | None) -> list[Entry]:
    """An XRANGE, XREVRANGE, XCLAIM or XAUTOCLAIM list of (id, fields) entries (XCLAIM is annotated
    with its JUSTID form too)."""
    return cast(list[Entry], reply or [])


def read_entries(reply: XReadResponse | XReadGroupResponse) -> list[Entry]:
    """The entries of an XREAD or XREADGROUP reply, all its streams' in order. (Re-reading pending
    entries, one trimmed meanwhile comes back with None for fields: callers test `if fields`.)"""
    return [entry for _stream, batch in cast(list[tuple[str, list[Entry]]], reply) for entry in batch]


def as_fields(fields: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """`fields` as XADD (and HSET's `mapping`) take them: redis-py asks for a `dict` of its widest key
    and value types, which (`dict` being invariant) a `dict[str, str]` is not, so this copies them."""
    return dict(fields.items())


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def next_entries(
    redis: aioredis.Redis,
    stream: str,
    group: str,
    consumer: str,
    *,
    reclaim_after: float,
    count: int,
    block_ms: int | None,
    own_pending: bool = False,
) -> list[Entry]:
    """Entries a dead consumer left (idle longer than `reclaim_after` s), then, with `own_pending`,
    our own unacknowledged ones (after a restart under the same name), and only then new ones."""
    _, reclaimed, *_ = await redis.xautoclaim(
        stream, group, consumer, min_idle_time=int(reclaim_after * 1000), start_id="0-0", count=count
    )
    found = entries(reclaimed)
    if own_pending:
        found += read_entries(await redis.xreadgroup(group, consumer, {stream: "0"}, count=count))
    if not found:
        found = read_entries(await redis.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms))
    return found
