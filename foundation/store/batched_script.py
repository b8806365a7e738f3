"""One Lua script called by many concurrent requests, sent to Redis in shared round trips.

Calls made while a batch is on its way go together in the next write (group commit): under a
burst of citizen reports one write and one read carry dozens of intake scripts instead of one
each, and a lone call still goes at once. Every call gets its own reply or error, and only after
Redis has run it, so an acknowledgement means exactly what it meant for a single call.

With `replicas`, each batch ends with the mark and WAIT of `foundation.store.durable`, on the
batch's own connection: every call of the batch is answered only once that many replicas have its
writes (or fails with `Unavailable`), and a burst pays one wait per batch instead of one per call.

    INTAKE = script("report_intake")  # foundation/store/scripts.py
    batched = BatchedScript(redis, INTAKE, replicas=1, near=keys.REPORTS_INDEX)
    reply = await batched(keys=[...], args=[...])
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from foundation.store.cluster import is_cluster
from foundation.store.durable import check_acknowledged, wait_commands
from foundation.store.raw_pipeline import Command, OwnConnection, execute_raw
from foundation.store.scripts import Script

Call = tuple[Sequence[str], Sequence[Any], asyncio.Future[Any]]


class BatchedScript:
    def __init__(
        self, redis: aioredis.Redis, script: Script | str, *, replicas: int | None = 0, near: str | None = None
    ) -> None:
        """`replicas`: how many replicas each batch waits for (`durable`); `near`: a key in the hash
        slot of every call's keys, where the wait goes on a cluster (needed with `replicas`)."""
        if replicas and near is None:
            raise ValueError("a batch that waits for replicas needs `near`, the slot of its keys")
        self.redis = redis
        self.wait = wait_commands(redis, replicas, near) if replicas and near is not None else []
        self.near = near
        # One batch at a time, so one connection; on a cluster, one batch per node of the batch's keys.
        # (Two batches in flight, each on its own connection, made smaller batches and no more reports
        # a second: 98 % of one, benchmarks/intake.py with fsync always, 2026-12-03.)
        self.connection = None if is_cluster(redis) else OwnConnection(redis)
        # A script of foundation/store/lua (or, in tests, the source of one): sent as its raw EVALSHA.
        self.script = script if isinstance(script, Script) else Script("inline", script)
        self.source = self.script.source
        self.sha = self.script.sha
        self._waiting: list[Call] = []
        self._sender: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # a script serves the loop it was first called on
        self.calls = self.round_trips = 0  # how well batching works, for tests, benchmarks and operators

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        self.calls += 1
        if self._loop is None:  # asking for the running loop costs a system call (getpid) on 3.11
            self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = self._loop.create_future()
        self._waiting.append((keys, args, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_waiting())
        # A caller that gives up cancels only its own future; the batch skips it.
        return await future

    async def _send_waiting(self) -> None:
        while self._waiting:
            batch = [call for call in self._waiting if not call[2].done()]  # callers gone: not run
            self._waiting = []
            if not batch:
                continue
            try:
                replies = await self._run(batch)
            except Exception as exc:  # the connection failed, or too few replicas: nobody in it is acknowledged
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), reply in zip(batch, replies, strict=True):
                if future.done():
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    async def _run(self, batch: list[Call]) -> list[Any]:
        replies = await self._pipeline(batch)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:  # Redis restarted and forgot its scripts; those calls did not run
            await self.redis.script_load(self.source)
            for i, reply in zip(missing, await self._pipeline([batch[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, batch: list[Call]) -> list[Any]:
        self.round_trips += 1
        commands: list[Command] = [("EVALSHA", self.sha, len(k), *k, *a) for k, a, _ in batch]
        commands += self.wait
        if self.connection is None:  # a cluster: with a wait, the whole batch to the node of `near`
            replies = await execute_raw(self.redis, commands, near=self.near if self.wait else None)
        else:
            replies = await self.connection.execute(commands)
        if self.wait:  # the batch ran; its calls are answered once the replicas have it
            check_acknowledged(replies[-1], self.wait)
            del replies[-len(self.wait) :]
        return replies
