"""The service's Lua scripts: one file each in foundation/store/lua/, loaded and called one way.

    CLAIM = script("delivery_claim")  # at import: the file is read once, its SHA1 known
    flags = await CLAIM(redis, keys=[state_key], args=[mark, *addresses])
    replies = await CLAIM.many(redis, [([key], [mark, *group]) for key, group in ...])  # one round trip

A call is an EVALSHA; a server that does not know the script (NOSCRIPT: restarted, or SCRIPT
FLUSH) is sent it with SCRIPT LOAD and the call is made again. That is redis-py's own `AsyncScript`
(what `register_script` returns). Many calls at once (`many`) go as one raw pipeline, one per node
on a cluster, where redis-py refuses scripts in a pipeline; concurrent calls that share round trips
(`BatchedScript`) use `source` and `sha` directly.

Each file starts with a comment that says what its KEYS and ARGV are and what it returns, and a
script touches only the keys it is given in KEYS, all in one hash slot (a cluster runs a script on
one node). tests/foundation/test_scripts.py holds every module of the service to this: no Lua inline
in Python.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from foundation.store.raw_pipeline import execute_raw

# The folder of the scripts, next to this module (shipped as package data: see pyproject.toml).
_FOLDER = resources.files("foundation.store") / "lua"


class Script:
    """One Lua script: its name (the file's), its source, its SHA1; calling it runs it."""

    __slots__ = ("name", "source", "sha", "_runner")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        encoded = source.encode()
        self.sha = hashlib.sha1(encoded).hexdigest()
        # Bytes, so redis-py needs no client to encode the source: one runner serves every client and
        # pipeline it is called with (it is always given one).
        self._runner = AsyncScript(None, encoded)  # type: ignore[arg-type]  # no client: see the comment above

    async def __call__(self, redis: aioredis.Redis, keys: Sequence[str] = (), args: Iterable[Any] = ()) -> Any:
        """The script's reply (EVALSHA, loading the script on NOSCRIPT)."""
        return await self._runner(keys=keys, args=args, client=redis)

    async def many(self, redis: aioredis.Redis, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """The replies of many calls (keys, args), in order, in one round trip (per node); raises the
        first error a call answered, as a pipeline would."""
        commands = [("EVALSHA", self.sha, len(k), *k, *a) for k, a in calls]
        replies = await execute_raw(redis, commands)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:  # Redis restarted and forgot its scripts; those calls did not run
            await redis.script_load(self.source)
            for i, reply in zip(missing, await execute_raw(redis, [commands[i] for i in missing]), strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def __repr__(self) -> str:
        return f"<Script {self.name} {self.sha[:10]}>"


@functools.cache
def script(name: str) -> Script:
    """The script in lua/<name>.lua, read once per process."""
    return Script(name, (_FOLDER / f"{name}.lua").read_text(encoding="utf-8"))


def names() -> list[str]:
    """The names of every script there is, sorted."""
    return sorted(entry.name.removesuffix(".lua") for entry in _FOLDER.iterdir() if entry.name.endswith(".lua"))
