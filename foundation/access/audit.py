"""Tamper-evident audit log: an append-only hash chain in Redis.

Every entry carries the hash of the one before it, and its own hash is an HMAC (keyed with the
service's secret key) over its canonical JSON. Editing an entry breaks its hash, removing one breaks
the chain, and removing the newest ones no longer matches the stored head, so `verify` finds all
three; without the key, a forger cannot recompute the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from foundation.store import keys
from foundation.store.durable import durable
from foundation.store.streams import decoded_hash

GENESIS = "0" * 64


def _digest(secret: str, entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


class AuditLog:
    def __init__(self, redis: aioredis.Redis, secret: str, min_replicas: int | None = 0) -> None:
        self.redis = redis
        self.secret = secret
        self.min_replicas = min_replicas  # replicas each entry waits for (durable)

    async def append(self, actor: str, action: str, target: str = "", **details: Any) -> dict[str, Any]:
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(keys.AUDIT_HEAD)
                    head = await pipe.hgetall(keys.AUDIT_HEAD)
                    entry: dict[str, Any] = {
                        "seq": int(head.get("seq", 0)) + 1,
                        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        "actor": actor,
                        "action": action,
                        "target": target,
                        "details": details,
                        "prev": head.get("hash", GENESIS),
                    }
                    entry["hash"] = _digest(self.secret, entry)
                    pipe.multi()
                    pipe.rpush(keys.AUDIT_LOG, json.dumps(entry, ensure_ascii=False))
                    pipe.hset(keys.AUDIT_HEAD, mapping={"seq": entry["seq"], "hash": entry["hash"]})
                    if target:
                        pipe.rpush(keys.audit_by_target(target), entry["seq"])
                    await pipe.execute()
                    break
                except WatchError:
                    continue  # another writer appended first; chain onto its entry
        await durable(self.redis, self.min_replicas, near=keys.AUDIT_LOG)
        return entry

    async def entries(self, start: int = 0, stop: int = -1) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in await self.redis.lrange(keys.AUDIT_LOG, start, stop)]

    async def about(self, targets: list[str]) -> list[dict[str, Any]]:
        """The entries about any of `targets`, oldest first, through the per-target index (entry n
        sits at position n - 1 of the append-only log)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for target in targets:
                pipe.lrange(keys.audit_by_target(target), 0, -1)
            found = await pipe.execute()
        seqs = sorted({int(seq) for seqs in found for seq in seqs})
        if not seqs:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for seq in seqs:
                pipe.lindex(keys.AUDIT_LOG, seq - 1)
            raws = await pipe.execute()
        return [json.loads(raw) for raw in raws if raw]

    async def count(self) -> int:
        return int(await self.redis.llen(keys.AUDIT_LOG))

    async def verify(self) -> list[str]:
        """Every problem found in the chain; an empty list means it is intact."""
        problems: list[str] = []
        prev, expected_seq = GENESIS, 1
        total = await self.count()
        for offset in range(0, total, 1000):
            for raw in await self.redis.lrange(keys.AUDIT_LOG, offset, offset + 999):
                try:
                    entry = json.loads(raw)
                    seq = entry["seq"]
                except (ValueError, KeyError, TypeError):
                    problems.append(f"entry at position {offset + 1} is not readable")
                    continue
                if seq != expected_seq:
                    problems.append(f"entry {seq}: expected sequence {expected_seq} (entries removed?)")
                if entry.get("prev") != prev:
                    problems.append(f"entry {seq}: does not chain onto the entry before it")
                if not hmac.compare_digest(str(entry.get("hash", "")), _digest(self.secret, entry)):
                    problems.append(f"entry {seq}: contents do not match its hash (edited?)")
                prev, expected_seq = str(entry.get("hash")), seq + 1
        head = decoded_hash(await self.redis.hgetall(keys.AUDIT_HEAD))
        if head and (head.get("hash") != prev or int(head.get("seq", 0)) != expected_seq - 1):
            problems.append(
                f"the log ends at entry {expected_seq - 1} but the head records entry "
                f"{head.get('seq')} (newest entries removed?)"
            )
        return problems


@dataclass(frozen=True)
class Actor:
    """Who did something: a user name or a machine token name, with their roles."""

    name: str
    roles: frozenset[str]
    kind: str = "user"  # user | token | system
    unit: str = ""  # issuing unit (foundation.access.units); "": the release centre

    @property
    def label(self) -> str:
        return self.name if self.kind == "user" else f"{self.kind}:{self.name}"


SYSTEM = Actor("warncast", frozenset(), "system")
