"""The service's Lua scripts: one file each in foundation/store/lua/, loaded and called one way.

    CLAIM = script("delivery_claim")  # at import: the file is read once, its SHA1 known
    flags = await CLAIM(redis, keys=[state_key], args=[mark, *addresses])
    await CLAIM(pipe, keys=[...], args=[...])  # queued in a pipeline, its reply in pipe.execute()

A call is an EVALSHA; a server that does not know the script (NOSCRIPT: restarted, or SCRIPT
FLUSH) is sent it with SCRIPT LOAD and the call is made again, and a pipeline loads the scripts it
carries before it is sent. That is redis-py's own `AsyncScript` (what `register_script` returns).
Concurrent calls that share round trips (`BatchedScript`) use `source` and `sha` directly.

Each file starts with a comment that says what its KEYS and ARGV are and what it returns, and a
script touches only the keys it is given in KEYS (the one exception, the report key made inside
report_intake.lua, says why in its header). tests/foundation/test_scripts.py holds every module of
the service to this: no Lua inline in Python.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

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

    async def __call__(
        self,
        redis: aioredis.Redis | Pipeline,
        keys: Sequence[str] = (),
        args: Iterable[Any] = (),
    ) -> Any:
        """The script's reply (EVALSHA, loading the script on NOSCRIPT); on a pipeline, the pipeline."""
        return await self._runner(keys=keys, args=args, client=redis)

    def __repr__(self) -> str:
        return f"<Script {self.name} {self.sha[:10]}>"


@functools.cache
def script(name: str) -> Script:
    """The script in lua/<name>.lua, read once per process."""
    return Script(name, (_FOLDER / f"{name}.lua").read_text(encoding="utf-8"))


def names() -> list[str]:
    """The names of every script there is, sorted."""
    return sorted(entry.name.removesuffix(".lua") for entry in _FOLDER.iterdir() if entry.name.endswith(".lua"))
